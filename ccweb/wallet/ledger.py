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

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ccweb import pg
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


@dataclass(frozen=True)
class Entry:
    """One ledger row of a :func:`settle` call."""

    delta: int
    source_type: str
    idempotency_key: str
    source_id: str | int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A data-modifying CTE that runs in the same statement, only when the balance moved.

    ``sql`` may read ``upd`` (columns ``gold_balance``, ``experience_points``, ``level``,
    ``old_level``) and must not touch ``users``. ``returning`` is an optional SQL
    expression list added to the final SELECT (e.g. ``(SELECT id FROM rnd) AS round_id``).
    Parameter names must be unique across attachments. The statement runs as a prepared
    statement (:mod:`ccweb.pg`): declare in ``types`` the SQL type of any parameter that
    may be ``None`` or is JSON.
    """

    name: str
    sql: str
    params: dict[str, Any]
    returning: str | None = None
    types: dict[str, str] = field(default_factory=dict)  # SQL types of nullable/JSON params


@dataclass(frozen=True)
class Settlement:
    balance: int
    experience_points: int
    level: int
    old_level: int
    entry_ids: tuple[int, ...]
    extra: dict[str, Any]


class GuardRejected(Exception):
    """The ``guard`` of a :func:`settle` call matched no row: nothing was written."""


def settle(
    session: Session | Connection,
    *,
    user_id: int,
    entries: list[Entry],
    xp: int = 0,
    attachments: tuple[Attachment, ...] = (),
    guard: Attachment | None = None,
) -> Settlement:
    """Apply several ledger rows (e.g. a bet and its payout), an XP gain and the caller's
    attached inserts in ONE statement. The balance must stay >= 0 after every entry in
    order (a bet must be covered before its payout is added). Zero deltas are skipped.

    ``guard`` is an optional data-modifying CTE that runs first; the balance moves only if
    it returns a row (games use it to advance the fairness nonce optimistically). Being
    one statement, a settle on an autocommit connection is a whole transaction by itself.

    Raises :class:`InsufficientGold` / :class:`NotFound` / :class:`GuardRejected`; the
    money, the ledger and the attachments are then unchanged. A duplicate idempotency key
    raises :class:`RetryTransaction` (see :func:`apply`).
    """
    rows = [e for e in entries if e.delta != 0]
    if any(not isinstance(e.delta, int) or abs(e.delta) > MAX_ABS_DELTA for e in rows):
        raise ValueError("bad delta")
    if xp < 0:
        raise ValueError("xp must be >= 0")
    net = sum(e.delta for e in rows)
    running, min_prefix = 0, 0
    for e in rows:
        running += e.delta
        min_prefix = min(min_prefix, running)
    params: dict[str, Any] = {"uid": user_id, "net": net, "min_prefix": min_prefix, "xp": xp}
    guard_clause = "AND EXISTS (SELECT 1 FROM guard)" if guard is not None else ""
    ctes = [
        f"""upd AS (
            UPDATE users u SET gold_balance = u.gold_balance + :net,
                experience_points = u.experience_points + :xp,
                level = (u.experience_points + :xp) / 500 + 1,
                updated_at = now()
            FROM (SELECT id, level AS old_level FROM users WHERE id = :uid) prev
            WHERE u.id = prev.id AND u.gold_balance + :min_prefix >= 0 {guard_clause}
            RETURNING u.gold_balance, u.experience_points, u.level, prev.old_level
        )"""
    ]
    tail = net
    selects = []
    for i, e in enumerate(rows):
        tail -= e.delta  # sum of the deltas after this one
        ctes.append(
            f"""e{i} AS (
            INSERT INTO wallet_ledger (user_id, delta_gold, balance_after, source_type,
                                       source_id, reason, idempotency_key)
            SELECT :uid, :d{i}, upd.gold_balance - :t{i}, :st{i}, :sid{i}, :r{i}, :k{i}
            FROM upd RETURNING id
        )"""
        )
        params.update(
            {
                f"d{i}": e.delta,
                f"t{i}": tail,
                f"st{i}": e.source_type,
                f"sid{i}": None if e.source_id is None else str(e.source_id),
                f"r{i}": e.reason,
                f"k{i}": e.idempotency_key,
            }
        )
        selects.append(f"(SELECT id FROM e{i}) AS e{i}")
    types: dict[str, str] = {f"sid{i}": "text" for i in range(len(rows))}
    if guard is not None:
        ctes.insert(0, f"guard AS ({guard.sql})")
        params.update(guard.params)
        types.update(guard.types)
        if guard.returning:
            selects.append(guard.returning)
    types.update({f"r{i}": "text" for i in range(len(rows))})
    for a in attachments:
        ctes.append(f"{a.name} AS ({a.sql})")
        params.update(a.params)
        types.update(a.types)
        if a.returning:
            selects.append(a.returning)
    sql = (
        "WITH " + ",\n".join(ctes) + "\nSELECT upd.gold_balance, upd.experience_points,"
        " upd.level, upd.old_level, (SELECT gold_balance FROM users WHERE id = :uid)"
        " AS balance_before"
        + "".join(f", {s}" for s in selects)
        + " FROM (SELECT 1) AS one LEFT JOIN upd ON true"
    )
    try:
        found = pg.execute(session, sql, params, types)
    except IntegrityError as exc:
        if "uq_wallet_ledger_idempotency_key" in str(exc.orig):
            raise RetryTransaction("duplicate ledger key") from exc
        raise
    row = found[0]
    if row["gold_balance"] is None:
        balance = row["balance_before"]
        if balance is None:
            raise NotFound("user not found", details={"user_id": user_id})
        if guard is not None and balance + min_prefix >= 0:
            raise GuardRejected(guard.name)
        raise InsufficientGold(details={"balance": int(balance), "required": -min_prefix})
    fixed = {"gold_balance", "experience_points", "level", "old_level", "balance_before"}
    entry_cols = {f"e{i}" for i in range(len(rows))}
    return Settlement(
        balance=int(row["gold_balance"]),
        experience_points=int(row["experience_points"]),
        level=int(row["level"]),
        old_level=int(row["old_level"]),
        entry_ids=tuple(int(row[f"e{i}"]) for i in range(len(rows))),
        extra={k: v for k, v in row.items() if k not in fixed and k not in entry_cols},
    )
