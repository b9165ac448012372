"""Build real state through the real services (no fixtures that bypass the ledger)."""

from __future__ import annotations

import itertools
from typing import Any

from flask.testing import FlaskClient

from ccweb.auth.passwords import hash_password
from ccweb.db import in_transaction
from ccweb.wallet import ledger

_seq = itertools.count(1)
PASSWORD = "password-1234"


def create_user(
    *,
    gold: int = 1000,
    is_admin: bool = False,
    tier: str = "STANDARD",
    site_id: str | None = None,
    password: str = PASSWORD,
) -> dict[str, Any]:
    """A user whose balance is explained by the ledger (a 'seed' credit row)."""
    from sqlalchemy import text

    n = next(_seq)
    site_id = site_id or f"user{n}"

    def tx(s):  # type: ignore[no-untyped-def]
        uid = s.execute(
            text(
                "INSERT INTO users (site_id, nickname, password_hash, is_admin, tier)"
                " VALUES (:s, :n, :p, :a, :t) RETURNING id"
            ),
            {"s": site_id, "n": f"nick{n}", "p": hash_password(password), "a": is_admin, "t": tier},
        ).scalar_one()
        if gold:
            ledger.apply(
                s, user_id=uid, delta=gold, source_type="test", idempotency_key=f"test-grant:{uid}"
            )
        return uid

    uid = in_transaction(tx)
    return {"id": uid, "site_id": site_id, "password": password}


def login(client: FlaskClient, user: dict[str, Any], admin: bool = False) -> dict[str, Any]:
    path = "/api/auth/admin/login" if admin else "/api/auth/login"
    resp = client.post(path, json={"site_id": user["site_id"], "password": user["password"]})
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def auth_headers(client: FlaskClient, user: dict[str, Any], admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {login(client, user, admin)['access_token']}"}


def ledger_sum(user_id: int) -> int:
    from sqlalchemy import text

    return int(
        in_transaction(
            lambda s: s.execute(
                text("SELECT coalesce(sum(delta_gold), 0) FROM wallet_ledger WHERE user_id = :u"),
                {"u": user_id},
            ).scalar()
        )
    )


def balance(user_id: int) -> int:
    return in_transaction(lambda s: ledger.balance_of(s, user_id))
