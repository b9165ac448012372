"""THE ONLY code that changes a gold balance.

Every gold change (signup grant, streak, game bet and win, claims, purchases, admin
adjustments) calls :func:`apply`. One SQL statement (data-modifying CTEs) does the
whole job atomically, as PERFORMANCE.md recommends for hot paths:

* a guarded ``UPDATE users SET gold_balance = gold_balance + :delta WHERE
  gold_balance + :delta >= 0`` (plus the ``CHECK (gold_balance >= 0)`` in the schema),
* an append-only ledger row with ``balance_after`` and a UNIQUE idempotency key,
* a replay check: if the key is already in the ledger nothing changes and the original
  row is reported.

Two concurrent calls with the same key both pass the replay check, but the second one
trips the UNIQUE constraint and its transaction rolls back (its balance update with
it); :func:`ccweb.db.in_transaction` retries it and the retry sees the first row.
So a key is applied at most once, and the ledger sum always equals the balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ccweb.db import RetryTransaction
from ccweb.errors import InsufficientGold, NotFound

MAX_ABS_DELTA = 10**12

_APPLY = text(
    """
    WITH prior AS (
        SELECT id, balance_after, delta_gold FROM wallet_ledger WHERE idempotency_key = :key
    ), upd AS (
        UPDATE users SET gold_balance = gold_balance + :delta, updated_at = now()
        WHERE id = :uid AND gold_balance + :delta >= 0 AND NOT EXISTS (SELECT 1 FROM prior)
        RETURNING gold_balance
    ), ins AS (
        INSERT INTO wallet_ledger
            (user_id, delta_gold, balance_after, source_type, source_id, reason,
             idempotency_key, meta)
        SELECT :uid, :delta, upd.gold_balance, :source_type, :source_id, :reason, :key, :meta
        FROM upd
        RETURNING id, balance_after
    )
    SELECT (SELECT id FROM ins) AS new_id,
           (SELECT balance_after FROM ins) AS new_balance,
           (SELECT id FROM prior) AS prior_id,
           (SELECT balance_after FROM prior) AS prior_balance,
           (SELECT gold_balance FROM users WHERE id = :uid) AS balance_before
    """
).bindparams(bindparam("meta", type_=JSONB))


@dataclass(frozen=True)
class LedgerResult:
    entry_id: int
    balance: int  # balance right after this entry (the original one on a replay)
    replayed: bool  # True when the idempotency key had already been applied


def apply(
    session: Session,
    *,
    user_id: int,
    delta: int,
    source_type: str,
    idempotency_key: str,
    source_id: str | int | None = None,
    reason: str | None = None,
    meta: dict[str, Any] | None = None,
) -> LedgerResult:
    """Change ``user_id``'s gold by ``delta`` exactly once per ``idempotency_key``.

    Raises :class:`InsufficientGold` (409) for a debit larger than the balance and
    :class:`NotFound` for an unknown user; in both cases nothing is written.
    """
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise ValueError("delta must be a non-zero int")
    if abs(delta) > MAX_ABS_DELTA:
        raise ValueError("delta out of range")
    if not idempotency_key:
        raise ValueError("idempotency_key is required")
    params = {
        "uid": user_id,
        "delta": delta,
        "key": idempotency_key,
        "source_type": source_type,
        "source_id": None if source_id is None else str(source_id),
        "reason": reason,
        "meta": meta,
    }
    try:
        row = session.execute(_APPLY, params).one()
    except IntegrityError as exc:
        if "uq_wallet_ledger_idempotency_key" in str(exc.orig):
            # A concurrent call with the same key won the race: retry the whole unit
            # of work, which will then see the row and replay it.
            raise RetryTransaction(idempotency_key) from exc
        raise
    if row.new_id is not None:
        return LedgerResult(entry_id=row.new_id, balance=row.new_balance, replayed=False)
    if row.prior_id is not None:
        return LedgerResult(entry_id=row.prior_id, balance=row.prior_balance, replayed=True)
    if row.balance_before is None:
        raise NotFound("user not found", details={"user_id": user_id})
    raise InsufficientGold(
        details={"balance": int(row.balance_before), "required": -delta},
    )


def balance_of(session: Session, user_id: int) -> int:
    value = session.execute(
        text("SELECT gold_balance FROM users WHERE id = :uid"), {"uid": user_id}
    ).scalar()
    if value is None:
        raise NotFound("user not found", details={"user_id": user_id})
    return int(value)


def history(
    session: Session, user_id: int, limit: int = 50, before_id: int | None = None
) -> list[dict[str, Any]]:
    """The ledger as the player sees it, newest first."""
    rows = session.execute(
        text(
            """
            SELECT id, source_type, source_id, delta_gold, balance_after, reason, created_at
            FROM wallet_ledger
            WHERE user_id = :uid AND (CAST(:before AS bigint) IS NULL OR id < :before)
            ORDER BY id DESC LIMIT :limit
            """
        ),
        {"uid": user_id, "limit": limit, "before": before_id},
    ).mappings()
    return [dict(r) for r in rows]
