"""The player's provably-fair seeds in the database: show the commitment, rotate
(reveal the old server seed, commit a new one), list revealed seeds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb import effects
from ccweb.events import iso
from ccweb.games import fairness, seed_cache

_ENSURE = text(
    """
    INSERT INTO fairness_seeds (user_id, server_seed, server_seed_hash, client_seed, nonce)
    VALUES (:uid, :seed, :hash, :client, 0)
    ON CONFLICT (user_id) DO NOTHING
    """
)


def current(session: Session, user_id: int, *, lock: bool = False) -> Any:
    fresh = fairness.SeedPair.fresh()
    session.execute(
        _ENSURE,
        {
            "uid": user_id,
            "seed": fresh.server_seed,
            "hash": fresh.server_seed_hash,
            "client": fresh.client_seed,
        },
    )
    return session.execute(
        text(
            "SELECT server_seed, server_seed_hash, client_seed, nonce, created_at"
            " FROM fairness_seeds WHERE user_id = :uid" + (" FOR UPDATE" if lock else "")
        ),
        {"uid": user_id},
    ).one()


def public_view(user_id: int, session: Session) -> dict[str, Any]:
    row = current(session, user_id)
    return {
        "server_seed_hash": row.server_seed_hash,
        "client_seed": row.client_seed,
        "nonce": int(row.nonce),
    }


def rotate(session: Session, user_id: int, client_seed: str | None) -> dict[str, Any]:
    """Reveal the current server seed and commit a new one; the nonce restarts at 0.
    The client seed carries over unless a new one is given."""
    if client_seed is not None:
        client_seed = fairness.validate_client_seed(client_seed)
    old = current(session, user_id, lock=True)
    session.execute(
        text(
            "INSERT INTO fairness_revealed_seeds (user_id, server_seed, server_seed_hash,"
            " client_seed, rounds, created_at) VALUES (:uid, :seed, :hash, :client, :n, :at)"
        ),
        {
            "uid": user_id,
            "seed": old.server_seed,
            "hash": old.server_seed_hash,
            "client": old.client_seed,
            "n": old.nonce,
            "at": old.created_at,
        },
    )
    new = fairness.SeedPair.fresh(client_seed or old.client_seed)
    session.execute(
        text(
            "UPDATE fairness_seeds SET server_seed = :seed, server_seed_hash = :hash,"
            " client_seed = :client, nonce = 0, created_at = now() WHERE user_id = :uid"
        ),
        {
            "uid": user_id,
            "seed": new.server_seed,
            "hash": new.server_seed_hash,
            "client": new.client_seed,
        },
    )
    effects.of(session).after(lambda: seed_cache.forget(user_id))
    return {
        "previous_server_seed": old.server_seed,
        "previous_server_seed_hash": old.server_seed_hash,
        "previous_client_seed": old.client_seed,
        "previous_rounds": int(old.nonce),
        "server_seed_hash": new.server_seed_hash,
        "client_seed": new.client_seed,
        "nonce": 0,
    }


def revealed(session: Session | Connection, user_id: int, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT server_seed, server_seed_hash, client_seed, rounds, created_at,"
            " revealed_at FROM fairness_revealed_seeds WHERE user_id = :uid"
            " ORDER BY id DESC LIMIT :limit"
        ),
        {"uid": user_id, "limit": limit},
    ).mappings()
    return [
        {**r, "created_at": iso(r["created_at"]), "revealed_at": iso(r["revealed_at"])}
        for r in rows
    ]
