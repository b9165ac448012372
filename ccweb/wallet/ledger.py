"""THE ONLY code that changes a gold balance.

Every gold change (signup grant, streak, game bet and win, claims, purchases, admin
adjustments) goes through :func:`settle` (:func:`apply` is its one-entry form). One SQL
statement (data-modifying CTEs) does the whole job atomically, as PERFORMANCE.md
recommends for hot paths:

* an optional ``guard`` CTE that must return a row for anything to happen (games advance
  the fairness nonce with it, claims flip their row to ``claimed``);
* a guarded ``UPDATE users SET gold_balance = gold_balance + :net … WHERE
  gold_balance + :min_prefix >= 0`` (plus ``CHECK (gold_balance >= 0)`` in the schema),
  which also adds the XP and recomputes the level (:mod:`ccweb.users.levels`);
* one append-only ledger row per entry with ``balance_after`` and a UNIQUE idempotency
  key;
* the caller's attached rows (:class:`ccweb.cte.Attachment`): round, outbox, response…;
* with ``replay=True``, a check of the first entry's key: if it is already in the ledger
  nothing changes and the original row is reported (``replayed``).

Two concurrent calls with the same key both pass the replay check, but the second one
trips the UNIQUE constraint (named by the driver's diagnostics, not found in the error
text) and its statement rolls back; :func:`ccweb.db.in_transaction` retries it and the
retry sees the first row. So a key is applied at most once, and the ledger sum always
equals the balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ccweb import pg
from ccweb.cte import Attachment
from ccweb.db import RetryTransaction
from ccweb.errors import InsufficientGold, NotFound
from ccweb.users.levels import level_sql

__all__ = [
    "BALANCE_FIELDS",
    "Attachment",
    "Entry",
    "GuardRejected",
    "Settlement",
    "apply",
    "balance_of",
    "history",
    "settle",
]

MAX_ABS_DELTA = 10**12
# ``from_upd`` of an outbox attachment: the player's state after the statement, for
# events whose readers (pushes) show it
BALANCE_FIELDS = {
    "gold_balance": "upd.gold_balance",
    "experience_points": "upd.experience_points",
    "level": "upd.level",
}
LEDGER_KEY_CONSTRAINT = "uq_wallet_ledger_idempotency_key"


@dataclass(frozen=True)
class Entry:
    """One ledger row of a :func:`settle` call."""

    delta: int
    source_type: str
    idempotency_key: str
    source_id: int | None = None
    reason: str | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Settlement:
    balance: int  # right after the statement (the original entry's on a replay)
    experience_points: int
    level: int
    old_level: int
    entry_ids: tuple[int, ...]
    extra: dict[str, Any] = field(default_factory=dict)  # the attachments' ``returning``
    replayed: bool = False  # the first entry's key had been applied already: nothing moved

    @property
    def entry_id(self) -> int:
        return self.entry_ids[0]

    def state(self) -> dict[str, int]:
        """The player after the statement, keyed like :data:`BALANCE_FIELDS` (so a Python
        copy of an event matches the row the statement wrote)."""
        return {
            "gold_balance": self.balance,
            "experience_points": self.experience_points,
            "level": self.level,
        }


class GuardRejected(Exception):
    """The ``guard`` of a :func:`settle` call matched no row: nothing was written."""


def duplicate_ledger_key(exc: IntegrityError) -> bool:
    """Whether ``exc`` is the ledger's UNIQUE idempotency key (from the driver's
    diagnostics, so a reworded message or another locale cannot fool it)."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == LEDGER_KEY_CONSTRAINT


def _check(rows: list[Entry], xp: int) -> None:
    for e in rows:
        if not isinstance(e.delta, int) or isinstance(e.delta, bool):
            raise ValueError("delta must be an int")
        if abs(e.delta) > MAX_ABS_DELTA:
            raise ValueError("delta out of range")
        if not e.idempotency_key:
            raise ValueError("idempotency_key is required")
    if xp < 0:
        raise ValueError("xp must be >= 0")


def settle(
    session: Session | Connection,
    *,
    user_id: int,
    entries: list[Entry],
    xp: int = 0,
    attachments: tuple[Attachment, ...] = (),
    guard: Attachment | None = None,
    replay: bool = False,
) -> Settlement:
    """Apply ledger rows (e.g. a bet and its payout), an XP gain and the caller's attached
    rows in ONE statement. The balance must stay >= 0 after every entry in order (a bet
    must be covered before its payout is added). Zero deltas are skipped.

    ``guard`` is an optional data-modifying CTE that runs first; the balance moves only if
    it returns a row. Being one statement, a settle on an autocommit connection is a whole
    transaction by itself. ``replay=True`` turns a repeated key of the first entry into a
    no-op that reports the original entry (callers whose keys can legitimately repeat:
    grants, admin adjustments); without it a repeated key raises
    :class:`RetryTransaction`, as does a concurrent duplicate in either mode.

    Raises :class:`InsufficientGold` / :class:`NotFound` / :class:`GuardRejected`; the
    money, the ledger and the attachments are then unchanged.
    """
    if replay and guard is not None:
        # a guard is data-modifying and would run even when the replay check stops the rest
        raise ValueError("replay and guard cannot be combined")
    rows = [e for e in entries if e.delta != 0]
    _check(rows, xp)
    net = sum(e.delta for e in rows)
    running, min_prefix = 0, 0
    for e in rows:
        running += e.delta
        min_prefix = min(min_prefix, running)
    params: dict[str, Any] = {"uid": user_id, "net": net, "min_prefix": min_prefix, "xp": xp}
    types: dict[str, str] = {}
    conditions = []
    ctes = []
    selects = []
    if guard is not None:
        ctes.append(f"guard AS ({guard.sql})")
        params.update(guard.params)
        types.update(guard.types)
        conditions.append("AND EXISTS (SELECT 1 FROM guard)")
        if guard.returning:
            selects.append(guard.returning)
    if replay and rows:
        ctes.append(
            "prior AS (SELECT id, balance_after FROM wallet_ledger WHERE idempotency_key = :k0)"
        )
        conditions.append("AND NOT EXISTS (SELECT 1 FROM prior)")
        selects += [
            "(SELECT id FROM prior) AS prior_id",
            "(SELECT balance_after FROM prior) AS prior_balance",
        ]
    ctes.append(
        f"""upd AS (
            UPDATE users u SET gold_balance = u.gold_balance + :net,
                experience_points = u.experience_points + :xp,
                level = {level_sql("u.experience_points + :xp")},
                updated_at = now()
            FROM (SELECT id, level AS old_level FROM users WHERE id = :uid) prev
            WHERE u.id = prev.id AND u.gold_balance + :min_prefix >= 0 {" ".join(conditions)}
            RETURNING u.gold_balance, u.experience_points, u.level, prev.old_level
        )"""
    )
    tail = net
    for i, e in enumerate(rows):
        tail -= e.delta  # sum of the deltas after this one
        ctes.append(
            f"""e{i} AS (
            INSERT INTO wallet_ledger (user_id, delta_gold, balance_after, source_type,
                                       source_id, reason, idempotency_key, meta)
            SELECT :uid, :d{i}, upd.gold_balance - :t{i}, :st{i}, :sid{i}, :r{i}, :k{i}, :m{i}
            FROM upd RETURNING id
        )"""
        )
        params.update(
            {
                f"d{i}": e.delta,
                f"t{i}": tail,
                f"st{i}": e.source_type,
                f"sid{i}": e.source_id,
                f"r{i}": e.reason,
                f"k{i}": e.idempotency_key,
                f"m{i}": e.meta,
            }
        )
        types.update({f"sid{i}": "bigint", f"r{i}": "text", f"m{i}": "jsonb"})
        selects.append(f"(SELECT id FROM e{i}) AS e{i}")
    for a in attachments:
        ctes.append(f"{a.name} AS ({a.sql})")
        params.update(a.params)
        types.update(a.types)
        if a.returning:
            selects.append(a.returning)
    sql = (
        "WITH " + ",\n".join(ctes) + "\nSELECT upd.gold_balance, upd.experience_points,"
        " upd.level, upd.old_level, cur.gold_balance AS balance_before,"
        " cur.experience_points AS xp_before, cur.level AS level_before"
        + "".join(f", {s}" for s in selects)
        + " FROM (SELECT 1) AS one LEFT JOIN upd ON true"
        " LEFT JOIN users cur ON cur.id = :uid"
    )
    try:
        found = pg.execute(session, sql, params, types)
    except IntegrityError as exc:
        if duplicate_ledger_key(exc):
            # A concurrent call with the same key won the race: the caller's unit of work
            # runs again (ccweb.db.in_transaction) and then sees the row.
            raise RetryTransaction("duplicate ledger key") from exc
        raise
    return _result(found[0], user_id, len(rows), min_prefix, guard)


_FIXED = frozenset(
    {
        "gold_balance",
        "experience_points",
        "level",
        "old_level",
        "balance_before",
        "xp_before",
        "level_before",
        "prior_id",
        "prior_balance",
    }
)


def _result(
    row: dict[str, Any], user_id: int, n_entries: int, min_prefix: int, guard: Attachment | None
) -> Settlement:
    entry_cols = {f"e{i}" for i in range(n_entries)}
    extra = {k: v for k, v in row.items() if k not in _FIXED and k not in entry_cols}
    if row["gold_balance"] is not None:
        return Settlement(
            balance=int(row["gold_balance"]),
            experience_points=int(row["experience_points"]),
            level=int(row["level"]),
            old_level=int(row["old_level"]),
            entry_ids=tuple(int(row[f"e{i}"]) for i in range(n_entries)),
            extra=extra,
        )
    balance = row["balance_before"]
    if balance is None:
        raise NotFound("user not found", details={"user_id": user_id})
    if row.get("prior_id") is not None:
        return Settlement(
            balance=int(row["prior_balance"]),
            experience_points=int(row["xp_before"]),
            level=int(row["level_before"]),
            old_level=int(row["level_before"]),
            entry_ids=(int(row["prior_id"]),),
            extra=extra,
            replayed=True,
        )
    if guard is not None and balance + min_prefix >= 0:
        raise GuardRejected(guard.name)
    raise InsufficientGold(details={"balance": int(balance), "required": -min_prefix})


def apply(
    session: Session | Connection,
    *,
    user_id: int,
    delta: int,
    source_type: str,
    idempotency_key: str,
    source_id: int | None = None,
    reason: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Settlement:
    """Change ``user_id``'s gold by ``delta`` exactly once per ``idempotency_key``: a
    :func:`settle` with one entry and ``replay=True``.

    Raises :class:`InsufficientGold` (409) for a debit larger than the balance and
    :class:`NotFound` for an unknown user; in both cases nothing is written.
    """
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise ValueError("delta must be a non-zero int")
    entry = Entry(delta, source_type, idempotency_key, source_id, reason, meta)
    return settle(session, user_id=user_id, entries=[entry], replay=True)


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
