"""Versioned HMAC keys with rotation (table ``signing_keys``), one ring per purpose.

Purposes: ``receipt`` (purchase receipts, :mod:`ccweb.shop.receipts`) and ``settlement``
(the payment provider's callbacks, :mod:`ccweb.shop.settlement`). Exactly one key per
purpose is ``current`` and signs; the ``current`` and the ``previous`` key verify, so
signatures made just before a rotation (or by a process that has not noticed it yet)
stay valid; a second rotation retires the old key for good. ``python -m ccweb.manage
rotate-key --purpose receipt`` rotates.

Secrets are random 32-byte values stored in PostgreSQL (an operator who needs them in
a KMS replaces this module behind the same three functions). Signing uses a copy cached
in the process for ``CACHE_S`` seconds — a process that missed a rotation signs with the
now ``previous`` key, which still verifies; verification always reads the table, so a
retired key stops verifying at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb import db

PURPOSES = ("receipt", "settlement")
CACHE_S = 5.0

_cache: dict[str, tuple[float, SigningKey]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class SigningKey:
    purpose: str
    version: int
    secret: bytes
    state: str


def _check(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")


_ENSURE = text(
    """
    INSERT INTO signing_keys (purpose, version, secret, state)
    SELECT :purpose, 1, :secret, 'current'
    WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE purpose = :purpose)
    ON CONFLICT DO NOTHING
    """
)
_CURRENT = text(
    "SELECT version, secret, state FROM signing_keys WHERE purpose = :purpose AND state = 'current'"
)


def _load_current(conn: Connection | Session, purpose: str) -> SigningKey:
    row = conn.execute(_CURRENT, {"purpose": purpose}).first()
    if row is None:
        conn.execute(_ENSURE, {"purpose": purpose, "secret": secrets.token_bytes(32)})
        row = conn.execute(_CURRENT, {"purpose": purpose}).one()
    return SigningKey(purpose, int(row.version), bytes(row.secret), row.state)


def current(purpose: str, conn: Connection | Session | None = None) -> SigningKey:
    """The key that signs now (created as version 1 on first use)."""
    _check(purpose)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(purpose)
        if hit is not None and hit[0] > now:
            return hit[1]
    if conn is None:
        with db.autocommit() as c:
            key = _load_current(c, purpose)
    else:
        key = _load_current(conn, purpose)
    with _lock:
        _cache[purpose] = (now + CACHE_S, key)
    return key


def verifying(purpose: str, version: int) -> SigningKey | None:
    """The key of ``version`` if it may still verify (``current`` or ``previous``)."""
    _check(purpose)
    with db.autocommit() as conn:
        row = conn.execute(
            text(
                "SELECT version, secret, state FROM signing_keys WHERE purpose = :purpose"
                " AND version = :version AND state IN ('current', 'previous')"
            ),
            {"purpose": purpose, "version": version},
        ).first()
    if row is None:
        return None
    return SigningKey(purpose, int(row.version), bytes(row.secret), row.state)


def rotate(session: Session, purpose: str) -> SigningKey:
    """Make a new ``current`` key: the old current becomes ``previous``, the old previous
    is ``retired``. Runs in the caller's transaction; two concurrent rotations serialise
    (the second makes the next version after the first's)."""
    _check(purpose)
    # Serialise rotations of one ring with a transaction-level advisory lock taken before
    # anything is read: locking the existing rows alone is not enough, because a second
    # rotation waiting on them would then compute max(version) from its statement's
    # snapshot, miss the version the first one inserted and fail on the primary key.
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('signing_keys:' || :p))"), {"p": purpose}
    )
    _load_current(session, purpose)  # a ring exists to rotate
    top = session.execute(
        text("SELECT max(version) FROM signing_keys WHERE purpose = :p"), {"p": purpose}
    ).scalar_one()
    session.execute(
        text(
            "UPDATE signing_keys SET state = 'retired', retired_at = now()"
            " WHERE purpose = :p AND state = 'previous'"
        ),
        {"p": purpose},
    )
    session.execute(
        text("UPDATE signing_keys SET state = 'previous' WHERE purpose = :p AND state = 'current'"),
        {"p": purpose},
    )
    secret = secrets.token_bytes(32)
    session.execute(
        text(
            "INSERT INTO signing_keys (purpose, version, secret, state)"
            " VALUES (:p, :v, :s, 'current')"
        ),
        {"p": purpose, "v": int(top) + 1, "s": secret},
    )
    forget()
    return SigningKey(purpose, int(top) + 1, secret, "current")


def forget() -> None:
    """Drop the cached signing keys (after a rotation in this process; tests)."""
    with _lock:
        _cache.clear()
