"""Request and response models of the auth API (also the OpenAPI schemas)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from ccweb.http.validation import Schema


class SignupIn(Schema):
    site_id: str = Field(pattern=r"^[A-Za-z0-9_]{3,32}$", description="3–32 of [A-Za-z0-9_]")
    nickname: str = Field(min_length=2, max_length=20)
    password: str = Field(min_length=8, max_length=128)
    invite_code: str | None = Field(default=None, max_length=32)

    @field_validator("nickname")
    @classmethod
    def _printable(cls, v: str) -> str:
        v = v.strip()
        if len(v) < 2 or not v.isprintable():
            raise ValueError("nickname must be 2–20 printable characters")
        return v


class LoginIn(Schema):
    site_id: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class RefreshIn(Schema):
    refresh_token: str = Field(min_length=10, max_length=2048)


class UserOut(BaseModel):
    id: int
    site_id: str
    nickname: str
    is_admin: bool
    tier: str
    level: int
    experience_points: int
    gold_balance: int
    created_at: str


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserOut
