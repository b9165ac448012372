"""The ledger sum kept bounded for admin stats: rows summed once are folded into a total
kept in Redis, and each computation reads only the rows after the fold point.

Rows are folded only when no transaction that could still add a row below the fold
point is running: the fold point is the ledger sequence's last value read just before an
earlier snapshot, and it becomes foldable once PostgreSQL's oldest running transaction
(``xmin``) has reached that snapshot's ``xmax``. This holds because a ledger id is
allocated only after its transaction holds an xid (``ledger.settle`` inserts the rows
FROM the balance UPDATE). With more than MAX_TAIL ids unfolded (Redis lost the fold, the
sequence went back after a truncate or restore, nobody asked for hours), a computation
folds FOLD_CHUNK of them and reports no sum until caught up. The sequence must hand out
ids one at a time (``CACHE 1``, the default; a test pins it): a session caching ids would
use them after the fold passed. PostgreSQL's ``xmin`` is the whole server's, so a
transaction left open anywhere holds the fold back (as it holds VACUUM back): the sum
stays exact, only the tail grows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.engine import Row

from ccweb.config import Settings
from ccweb.redis_client import key

FOLD_CHUNK = 2_000_000  # ledger ids folded per computation while catching up
MAX_TAIL = 2_000_000  # unfolded ledger ids one computation sums (0.2–0.3 s here)

Run = Callable[[Any, dict[str, Any]], "Row[Any] | None"]

LEDGER_LAST_ID = text(
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('wallet_ledger', 'id')), 0)"
)
SNAPSHOT = text(
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,"
    " pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax"
)
_LEDGER_TAIL = text(
    """
    SELECT coalesce(sum(delta_gold) FILTER (WHERE id <= :fold_to), 0) AS folded,
           coalesce(sum(delta_gold), 0) AS tail
    FROM wallet_ledger WHERE id > :upto AND id <= :scan_to
    """
)
_NO_END = 2**63 - 1


@dataclass(frozen=True)
class LedgerFold:
    """Ledger rows with ``id <= upto`` sum to ``total``; ids up to ``next_id`` were all
    allocated by transactions with an xid below ``next_xmax`` (foldable once PostgreSQL's
    ``xmin`` reaches it)."""

    upto: int = 0
    total: int = 0
    next_id: int = 0
    next_xmax: int = 0

    @classmethod
    def load(cls, client: redis.Redis, settings: Settings) -> LedgerFold:
        raw = client.hgetall(fold_key(settings))
        return cls(**{f.name: int(raw[f.name]) for f in fields(cls)}) if raw else cls()

    def save(self, client: redis.Redis, settings: Settings) -> None:
        pairs = [x for f in fields(self) for x in (f.name, getattr(self, f.name))]
        client.hset(fold_key(settings), items=pairs)

    def advance(
        self, run: Run, last_id: int, xmin: int, xmax: int
    ) -> tuple[int | None, LedgerFold]:
        """The ledger sum in the snapshot ``run`` executes in (None while catching up)
        and the fold after it. ``run(statement, params)`` returns the row, or None when
        the statement ran over its budget (→ :class:`OverBudget`). ``last_id`` was read
        before the snapshot; ``xmin``/``xmax`` are the snapshot's."""
        fold = self if last_id >= self.upto else LedgerFold()  # the sequence went back
        safe = fold.next_id if xmin >= fold.next_xmax else fold.upto
        fold_to = max(fold.upto, min(safe, fold.upto + FOLD_CHUNK))
        whole = last_id - fold.upto <= MAX_TAIL
        row = run(
            _LEDGER_TAIL,
            {"upto": fold.upto, "fold_to": fold_to, "scan_to": _NO_END if whole else fold_to},
        )
        if row is None:
            raise OverBudget
        caught_up = fold_to >= fold.next_id
        after = LedgerFold(
            upto=fold_to,
            total=fold.total + int(row.folded),
            next_id=last_id if caught_up else fold.next_id,
            next_xmax=xmax if caught_up else fold.next_xmax,
        )
        return (fold.total + int(row.tail) if whole else None), after


class OverBudget(Exception):
    """The tail sum ran over the stats statement budget."""


def fold_key(settings: Settings) -> str:
    return key("admin", "stats", "ledger", settings=settings)
