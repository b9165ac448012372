"""Feature flag reads and writes.

Reads go through a per-process cache that lives one second, so a change made by any
process is visible everywhere within 1 s (SPEC §3) without a query per request.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

# Flags with a default; the seed stores them, but code never depends on the seed.
DEFAULTS: dict[str, Any] = {"signup.invite_required": True}

_CACHE_TTL_S = 1.0
_cache: dict[str, Any] = {"at": 0.0, "flags": {}}


def _load_all(session: Session) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT key, value, client_visible, description, rollout_percent, target_tiers,"
            " updated_at FROM feature_flags"
        )
    ).mappings()
    return {r["key"]: dict(r) for r in rows}


def all_flags(session: Session) -> dict[str, dict[str, Any]]:
    now = time.monotonic()
    if now - _cache["at"] > _CACHE_TTL_S:
        _cache["flags"] = _load_all(session)
        _cache["at"] = now
    flags: dict[str, dict[str, Any]] = _cache["flags"]
    return flags


def invalidate_cache() -> None:
    _cache["at"] = 0.0


def get_flag(session: Session, key: str, default: Any = None) -> Any:
    row = all_flags(session).get(key)
    if row is None:
        return DEFAULTS.get(key, default)
    return row["value"]


def applies_to(row: dict[str, Any], user_id: int, tier: str) -> bool:
    """Tier targeting and a stable percentage rollout (same user, same answer)."""
    tiers = row.get("target_tiers")
    if tiers and tier not in tiers:
        return False
    pct = int(row.get("rollout_percent") or 0)
    if pct >= 100:
        return True
    bucket = int(hashlib.sha256(f"{row['key']}:{user_id}".encode()).hexdigest()[:8], 16) % 100
    return bucket < pct


def client_flags(session: Session, user_id: int, tier: str) -> dict[str, Any]:
    return {
        key: row["value"]
        for key, row in all_flags(session).items()
        if row["client_visible"] and applies_to(row, user_id, tier)
    }


def upsert_flag(session: Session, key: str, **fields: Any) -> dict[str, Any]:
    from sqlalchemy import bindparam
    from sqlalchemy.dialects.postgresql import ARRAY, JSONB
    from sqlalchemy.types import String

    stmt = text(
        """
        INSERT INTO feature_flags (key, value, client_visible, description, rollout_percent,
                                   target_tiers, updated_at)
        VALUES (:key, :value, :client_visible, :description, :rollout_percent, :target_tiers,
                now())
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
            client_visible = EXCLUDED.client_visible, description = EXCLUDED.description,
            rollout_percent = EXCLUDED.rollout_percent, target_tiers = EXCLUDED.target_tiers,
            updated_at = now()
        RETURNING key, value, client_visible, description, rollout_percent, target_tiers,
                  updated_at
        """
    ).bindparams(bindparam("value", type_=JSONB), bindparam("target_tiers", type_=ARRAY(String())))
    row = session.execute(stmt, {"key": key, **fields}).mappings().one()
    invalidate_cache()
    return dict(row)
