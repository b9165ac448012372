"""After the run, ask the database whether anything was lost, paid twice or overdrawn.

The checks are the system's own — :func:`ccweb.ops.reconcile.reconcile` (the operator's
consistency report) and :func:`ccweb.quality.checks.run` (the worker's data-quality
checks) — plus three counts over what this run wrote (rows since ``since``). Each must be
zero:

* **event loss** — first wait until the worker has drained (at most ``drain_timeout_s``),
  then count (a) outbox rows the relay has not passed yet (behind its cursor nothing is
  left unpublished: the fast path published it or the relay did), (b) committed events
  a consumer group never processed (reconcile's ``lost_events`` with no grace: every
  group records each event id it handles in ``processed_events``), and (c) game rounds of
  this run without their ``game.round`` outbox row (a round committed without its event);
* **double payout** — a claim paid twice (quality's ``duplicate_claim``; reconcile's
  ``claims_without_money`` / ``reward_money_without_claim``), a round whose money differs
  from the round (reconcile's ``rounds_with_wrong_money`` / ``game_money_without_round``),
  a purchase of this run whose ledger rows differ from its ``gold_delta``, and duplicate
  ledger idempotency keys (the UNIQUE index forbids them; counted anyway);
* **negative balance** — reconcile's ``negative_balances`` (balances and ledger rows);
* **ledger = balance** — reconcile's ``ledger_mismatches`` + ``ledger_chain_breaks``.

Read-only. Its own engine without the application's statement timeout (the scans may
take longer than a request may).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ccweb.config import Settings
from ccweb.ops.reconcile import reconcile
from ccweb.outbox.relay import CURSOR
from ccweb.quality import checks as quality

_RELAY_BEHIND = text(
    """
    SELECT count(*) FROM outbox o
    LEFT JOIN outbox_relay_cursor c ON c.name = :name
    WHERE c.name IS NULL OR (o.txid, o.id) > (c.txid, c.last_id)
    """
)
_ROUNDS_WITHOUT_EVENT = text(
    """
    SELECT count(*) FROM game_rounds r
    LEFT JOIN (SELECT DISTINCT (envelope -> 'payload' ->> 'round_id')::bigint AS round_id
               FROM outbox WHERE event_type = 'game.round' AND created_at >= :since) o
           ON o.round_id = r.id
    WHERE r.created_at >= :since AND o.round_id IS NULL
    """
)
_PURCHASE_MONEY = text(
    """
    SELECT count(*) FROM shop_purchases p
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(delta_gold), 0) AS total FROM wallet_ledger
        WHERE idempotency_key IN ('purchase:' || p.id || ':' || 'debit',
                                  'purchase:' || p.id || ':' || 'grant')
    ) m
    WHERE p.created_at >= :since AND p.status = 'success' AND p.category <> 'conversion'
      AND m.total <> p.gold_delta
    """
)
_DUPLICATE_KEYS = text(
    "SELECT count(*) FROM (SELECT 1 FROM wallet_ledger WHERE created_at >= :since"
    " GROUP BY idempotency_key HAVING count(*) > 1) d"
)


@contextmanager
def _connection(database_url: str) -> Iterator[Connection]:
    engine = create_engine(Settings(database_url=database_url).sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _scalar(conn: Connection, stmt: Any, **params: Any) -> int:
    value = conn.execute(stmt, params).scalar()
    conn.rollback()
    return int(value or 0)


def _pending(conn: Connection) -> tuple[int, dict[str, int]]:
    behind = _scalar(conn, _RELAY_BEHIND, name=CURSOR)
    lost = reconcile(conn, grace_s=0.0)["lost_events"]
    conn.rollback()
    return behind, lost


def run(database_url: str, since: datetime, drain_timeout_s: float = 30.0) -> dict[str, Any]:
    """Every check (module docstring); ``{check: {"count": n, "detail": {...}}, ...}``
    plus ``drained_after_s`` (None when the worker did not drain in time)."""
    with _connection(database_url) as conn:
        started = time.monotonic()
        drained: float | None = None
        while True:
            behind, lost = _pending(conn)
            if behind == 0 and not any(lost.values()):
                drained = round(time.monotonic() - started, 1)
                break
            if time.monotonic() - started > drain_timeout_s:
                break
            time.sleep(0.5)
        rounds_without_event = _scalar(conn, _ROUNDS_WITHOUT_EVENT, since=since)
        purchase_money = _scalar(conn, _PURCHASE_MONEY, since=since)
        duplicate_keys = _scalar(conn, _DUPLICATE_KEYS, since=since)
        rec = reconcile(conn, grace_s=0.0)
        conn.rollback()
        window = max(60.0, (datetime.now(since.tzinfo) - since).total_seconds() + 60.0)
        dq = quality.run(conn, quality.DqConfig.from_env(window_s=window)).counts()

    money_twice = {
        "duplicate_claim": dq["duplicate_claim"],
        "claims_without_money": rec["claims_without_money"],
        "reward_money_without_claim": rec["reward_money_without_claim"],
        "rounds_with_wrong_money": rec["rounds_with_wrong_money"],
        "game_money_without_round": rec["game_money_without_round"],
        "purchases_with_wrong_money": purchase_money,
        "duplicate_ledger_keys": duplicate_keys,
    }
    loss = {
        "outbox_rows_behind_relay": behind,
        **{f"unprocessed_by_{group}": n for group, n in lost.items()},
        "rounds_without_event": rounds_without_event,
    }
    ledger = {
        "ledger_mismatches": rec["ledger_mismatches"],
        "ledger_chain_breaks": rec["ledger_chain_breaks"],
        "dq_ledger_mismatch": dq["ledger_mismatch"],
    }
    return {
        "event_loss": {"count": sum(loss.values()), "detail": loss},
        "double_payout": {"count": sum(money_twice.values()), "detail": money_twice},
        "negative_balance": {
            "count": rec["negative_balances"] + dq["negative_balance"],
            "detail": {
                "reconcile_negative_balances": rec["negative_balances"],
                "dq_negative_balance": dq["negative_balance"],
            },
        },
        "ledger_balance": {"count": sum(ledger.values()), "detail": ledger},
        "drained_after_s": drained,
        "players": rec["players"],
        "ledger_rows": rec["ledger_rows"],
    }
