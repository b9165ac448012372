"""A data-modifying CTE that rides along in one money statement.

Hot writes are ONE SQL statement (PERFORMANCE.md: 325 vs 1 545 spins/s): the ledger's
:func:`ccweb.wallet.ledger.settle` builds it, and callers attach their own rows (a game
round, an outbox row, an idempotent response) as CTEs. This type sits below both the
ledger and the writers of those rows, so neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Attachment:
    """A CTE named ``name`` with body ``sql``, run in the same statement as the balance
    change, normally only when the balance moved.

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
