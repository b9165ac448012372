"""Build real state through the real services (no fixtures that bypass the ledger)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient

from ccweb import clock as app_clock
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


def _insert_returning_id(sql: str, params: dict[str, Any]) -> int:
    from sqlalchemy import bindparam, text
    from sqlalchemy.dialects.postgresql import JSONB

    stmt = text(sql).bindparams(bindparam("req", type_=JSONB), bindparam("rew", type_=JSONB))
    return int(in_transaction(lambda s: s.execute(stmt, params).scalar_one()))


def create_event(
    requirements: list[dict[str, Any]],
    reward_items: list[dict[str, Any]] | None = None,
    *,
    starts_in_s: float = -3600,
    ends_in_s: float = 86400,
    type: str = "limited",
    tier_required: str | None = None,
    title: str = "Test event",
) -> int:
    """A live event whose window is relative to the application's clock (the ``clock``
    fixture's "now" when a test uses it; negative = in the past)."""
    now = app_clock.utcnow()
    return _insert_returning_id(
        "INSERT INTO live_events (title, type, starts_at, ends_at, requirements, reward_items,"
        " tier_required) VALUES (:t, :ty, :s, :e, :req, :rew, :tier) RETURNING id",
        {
            "t": title,
            "ty": type,
            "s": now + timedelta(seconds=starts_in_s),
            "e": now + timedelta(seconds=ends_in_s),
            "req": requirements,
            "rew": reward_items or [{"type": "gold", "amount": 500}],
            "tier": tier_required,
        },
    )


def create_mission(
    period: str,
    requirements: list[dict[str, Any]],
    reward_items: list[dict[str, Any]] | None = None,
    title: str = "Test mission",
) -> int:
    return _insert_returning_id(
        "INSERT INTO missions (title, period, requirements, reward_items)"
        " VALUES (:t, :p, :req, :rew) RETURNING id",
        {
            "t": title,
            "p": period,
            "req": requirements,
            "rew": reward_items or [{"type": "gold", "amount": 100}],
        },
    )


def create_achievement(
    code: str,
    requirements: list[dict[str, Any]],
    reward_items: list[dict[str, Any]] | None = None,
) -> int:
    from ccweb.liveops.achievements import forget_catalog

    forget_catalog()
    return _insert_returning_id(
        "INSERT INTO achievements (code, title, requirements, reward_items)"
        " VALUES (:c, :c, :req, :rew) RETURNING id",
        {"c": code, "req": requirements, "rew": reward_items or [{"type": "gold", "amount": 50}]},
    )


_PRODUCT_DEFAULTS: dict[str, Any] = {
    "name": "Test product",
    "category": "item",
    "price_gold": 100,
    "points_price": 0,
    "gold_amount": 0,
    "items": [],
    "limit_once": False,
    "stock": None,
    "starts_at": None,
    "ends_at": None,
    "tier_required": "STANDARD",
    "is_active": True,
}


def create_product(**fields: Any) -> dict[str, Any]:
    """A shop product row (content, not money: inserted directly). ``stock`` sets both
    stock columns (None = unlimited)."""
    import json

    from sqlalchemy import text

    n = next(_seq)
    f = {**_PRODUCT_DEFAULTS, "sku": f"sku_{n}", **fields}
    stock = f.pop("stock")
    f["stock_total"] = f["stock_remaining"] = stock
    f["items"] = json.dumps(f["items"])
    cols = list(f)
    sql = (
        f"INSERT INTO shop_products ({', '.join(cols)}) VALUES"
        f" ({', '.join(('CAST(:items AS jsonb)' if c == 'items' else ':' + c) for c in cols)})"
        " RETURNING id"
    )
    pid = in_transaction(lambda s: s.execute(text(sql), f).scalar_one())
    return {**fields, "id": pid, "sku": f["sku"]}
