"""The data-quality checks the worker runs every minute, and their report.

Integrity (each must find nothing):

* ``negative_balance`` — ``users.gold_balance < 0``, or a ledger row of the window with
  ``balance_after < 0`` (the schema forbids both; checked anyway, a check must not trust
  what it checks);
* ``ledger_mismatch`` — for every player with ledger rows in the window: a row whose
  ``balance_after`` is not the previous row's plus its delta (a lost or doubled write),
  or a last ``balance_after`` that is not ``users.gold_balance``; plus, for a slice of
  ``sweep_users`` players per run (rotating, so all of them are covered every
  ``players / sweep_users`` runs), the last ``balance_after`` against the balance. An
  unbroken chain ending at the balance is the ledger sum, inductively: the full
  Σ delta = balance scan is the replay's job (:mod:`.replay`), too slow for every minute;
* ``duplicate_claim`` — a claim paid twice: more than one ledger row for one event or
  achievement reward of a player (``source_type``, ``source_id``, user), or for one
  mission in one period. ``event_participations`` is UNIQUE (user, event), so a row
  cannot be claimed twice; a double payment can only show in the ledger.

Anomaly rules: :mod:`.anomalies`.

Bounds, so that a run stays cheap on a big database: ledger checks read rows with ``id``
≥ the first id of the window (``window_s``, default 15 min, so a missed run or a
restart leaves no gap), found by ``created_at``; rounds are read by ``created_at``.
Both columns want a BRIN index (append-only tables: a BRIN index costs almost nothing
and finds the recent blocks) — without one, these are sequential scans. Everything runs
in one REPEATABLE READ READ ONLY snapshot, so concurrent play cannot cause a false alarm
between two reads, under its own ``statement_timeout``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ccweb.events import iso
from ccweb.quality import anomalies
from ccweb.quality.anomalies import finding

INTEGRITY = ("negative_balance", "ledger_mismatch", "duplicate_claim")
ANOMALY = ("gold_per_minute", "rapid_claims", "win_rate")
CHECKS = INTEGRITY + ANOMALY


@dataclass(frozen=True)
class DqConfig:
    """Knobs of the checks, from ``CC_DQ_*`` environment variables (documented defaults)."""

    interval_s: float = 60.0  # CC_DQ_INTERVAL_S: the worker runs the checks this often
    window_s: float = 900.0  # CC_DQ_WINDOW_S: ledger rows this recent are checked
    gold_per_min: int = 200_000  # CC_DQ_GOLD_PER_MIN (see anomalies)
    claim_burst: int = 10  # CC_DQ_CLAIM_BURST: more claims than this ...
    claim_burst_s: float = 60.0  # CC_DQ_CLAIM_BURST_S: ... within this many seconds
    winrate_window_s: float = 3600.0  # CC_DQ_WINRATE_WINDOW_S
    winrate_min_rounds: int = 200  # CC_DQ_WINRATE_MIN_ROUNDS
    winrate_sigma: float = 5.0  # CC_DQ_WINRATE_SIGMA
    sweep_users: int | None = 50_000  # CC_DQ_SWEEP_USERS (0 = every player every run)
    samples: int = 20  # CC_DQ_SAMPLES: findings per check kept in the report
    statement_timeout_s: float = 30.0  # CC_DQ_STATEMENT_TIMEOUT_S

    @classmethod
    def from_env(cls, **overrides: Any) -> DqConfig:
        def num(name: str, default: float) -> float:
            raw = os.environ.get(name, "").strip()
            return float(raw) if raw else default

        d = cls()
        sweep = int(num("CC_DQ_SWEEP_USERS", float(d.sweep_users or 0)))
        cfg = cls(
            interval_s=num("CC_DQ_INTERVAL_S", d.interval_s),
            window_s=num("CC_DQ_WINDOW_S", d.window_s),
            gold_per_min=int(num("CC_DQ_GOLD_PER_MIN", d.gold_per_min)),
            claim_burst=int(num("CC_DQ_CLAIM_BURST", d.claim_burst)),
            claim_burst_s=num("CC_DQ_CLAIM_BURST_S", d.claim_burst_s),
            winrate_window_s=num("CC_DQ_WINRATE_WINDOW_S", d.winrate_window_s),
            winrate_min_rounds=int(num("CC_DQ_WINRATE_MIN_ROUNDS", d.winrate_min_rounds)),
            winrate_sigma=num("CC_DQ_WINRATE_SIGMA", d.winrate_sigma),
            sweep_users=sweep or None,
            samples=int(num("CC_DQ_SAMPLES", d.samples)),
            statement_timeout_s=num("CC_DQ_STATEMENT_TIMEOUT_S", d.statement_timeout_s),
        )
        return replace(cfg, **overrides)


@dataclass
class Sweep:
    """Where the rotating balance sweep goes on (kept by the caller between runs)."""

    after: int = 0


@dataclass
class Report:
    generated_at: str
    findings: dict[str, list[dict[str, Any]]]
    duration_s: float
    samples: int = 20
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.findings.values())

    def counts(self) -> dict[str, int]:
        return {name: len(items) for name, items in self.findings.items()}

    def to_dict(self) -> dict[str, Any]:
        """The admin report's shape: ``{generated_at, checks: {name: {count, samples}},
        ok}`` (+ ``duration_s`` and whatever the run adds, e.g. the sweep position)."""
        return {
            "generated_at": self.generated_at,
            "checks": {
                name: {"count": len(items), "samples": items[: self.samples]}
                for name, items in self.findings.items()
            },
            "ok": self.ok,
            "duration_s": round(self.duration_s, 3),
            **self.extra,
        }


_NOW = text("SELECT now()")
_LEDGER_FLOOR = text("SELECT min(id) FROM wallet_ledger WHERE created_at >= :since")

_NEGATIVE = text(
    """
    SELECT id AS user_id, gold_balance AS balance, NULL::bigint AS ledger_id
    FROM users WHERE gold_balance < 0
    UNION ALL
    SELECT user_id, balance_after, id FROM wallet_ledger
    WHERE id >= :floor AND balance_after < 0
    ORDER BY 1, 3 NULLS FIRST
    """
)

# Chain within the window; the first window row of a player is compared with the row
# before it (one (user_id, id) index probe, only when lag() has nothing).
_WINDOW_CHAIN = text(
    """
    WITH w AS (
        SELECT id, user_id, delta_gold, balance_after,
               lag(balance_after) OVER (PARTITION BY user_id ORDER BY id) AS prev,
               row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS from_end
        FROM wallet_ledger WHERE id >= :floor
    ), c AS (
        SELECT w.*, coalesce(w.prev, (SELECT p.balance_after FROM wallet_ledger p
                                      WHERE p.user_id = w.user_id AND p.id < w.id
                                      ORDER BY p.id DESC LIMIT 1), 0) AS before
        FROM w
    )
    SELECT c.user_id, u.gold_balance AS balance,
           max(c.balance_after) FILTER (WHERE c.from_end = 1) AS last_balance_after,
           count(*) FILTER (WHERE c.balance_after <> c.before + c.delta_gold) AS chain_breaks,
           min(c.id) FILTER (WHERE c.balance_after <> c.before + c.delta_gold) AS first_break_id
    FROM c JOIN users u ON u.id = c.user_id
    GROUP BY c.user_id, u.gold_balance
    HAVING count(*) FILTER (WHERE c.balance_after <> c.before + c.delta_gold) > 0
        OR max(c.balance_after) FILTER (WHERE c.from_end = 1) <> u.gold_balance
    """
)

_SWEEP_END = text(
    "SELECT max(id), count(*) FROM (SELECT id FROM users WHERE id > :after ORDER BY id LIMIT :n) s"
)
_SWEEP = text(
    """
    SELECT u.id AS user_id, u.gold_balance AS balance, l.balance_after AS last_balance_after
    FROM users u
    LEFT JOIN LATERAL (SELECT balance_after FROM wallet_ledger
                       WHERE user_id = u.id ORDER BY id DESC LIMIT 1) l ON true
    WHERE u.id > :after AND (CAST(:upto AS bigint) IS NULL OR u.id <= :upto)
      AND u.gold_balance <> coalesce(l.balance_after, 0)
    ORDER BY u.id
    """
)

# A mission pays once per period (its ledger key names the per-period row), events and
# achievements once ever.
_DUPLICATE_CLAIMS = text(
    """
    WITH recent AS (
        SELECT id, user_id, source_type, source_id, created_at FROM wallet_ledger
        WHERE id >= :floor AND source_type IN ('event', 'mission', 'achievement')
    ), pairs AS (
        SELECT r.user_id, r.source_type, r.source_id, d.id,
               CASE WHEN r.source_type = 'mission' THEN
                   CASE m.period WHEN 'daily' THEN (r.created_at AT TIME ZONE 'UTC')::date
                        ELSE date_trunc('week', r.created_at AT TIME ZONE 'UTC')::date END
               END AS period_start
        FROM recent r
        JOIN wallet_ledger d ON d.user_id = r.user_id AND d.source_type = r.source_type
             AND d.source_id = r.source_id AND d.id <> r.id
        LEFT JOIN missions m ON r.source_type = 'mission' AND m.id = r.source_id
        WHERE r.source_type <> 'mission' OR (
            CASE m.period WHEN 'daily' THEN (d.created_at AT TIME ZONE 'UTC')::date
                 ELSE date_trunc('week', d.created_at AT TIME ZONE 'UTC')::date END
            = CASE m.period WHEN 'daily' THEN (r.created_at AT TIME ZONE 'UTC')::date
                   ELSE date_trunc('week', r.created_at AT TIME ZONE 'UTC')::date END)
    )
    SELECT user_id, source_type, source_id, period_start,
           array_agg(DISTINCT id ORDER BY id) AS ledger_ids
    FROM pairs GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3
    """
)


def negative_balances(conn: Connection, floor: int | None) -> list[dict[str, Any]]:
    rows = conn.execute(_NEGATIVE, {"floor": floor if floor is not None else 2**62})
    return [
        finding(
            "negative_balance",
            r.user_id,
            **(
                {"ledger_id": r.ledger_id, "balance_after": int(r.balance)}
                if r.ledger_id
                else {"balance": int(r.balance)}
            ),
        )
        for r in rows
    ]


def ledger_mismatches(
    conn: Connection, floor: int | None, sweep: Sweep | None, sweep_users: int | None
) -> list[dict[str, Any]]:
    """Window chain + last row, then the sweep slice (``sweep`` None = every player)."""
    found: dict[int, dict[str, Any]] = {}
    if floor is not None:
        for r in conn.execute(_WINDOW_CHAIN, {"floor": floor}):
            found[r.user_id] = finding(
                "ledger_mismatch",
                r.user_id,
                balance=int(r.balance),
                last_balance_after=int(r.last_balance_after),
                chain_breaks=int(r.chain_breaks),
                first_break_id=r.first_break_id,
            )
    after, upto = 0, None
    if sweep is not None and sweep_users:
        after = sweep.after
        end, n = conn.execute(_SWEEP_END, {"after": after, "n": sweep_users}).one()
        upto = end
        sweep.after = 0 if end is None or n < sweep_users else int(end)
        if end is None:
            return list(found.values())
    for r in conn.execute(_SWEEP, {"after": after, "upto": upto}):
        if r.user_id not in found:
            last = r.last_balance_after
            found[r.user_id] = finding(
                "ledger_mismatch",
                r.user_id,
                balance=int(r.balance),
                last_balance_after=None if last is None else int(last),
                chain_breaks=None,  # not examined outside the window
                first_break_id=None,
            )
    return sorted(found.values(), key=lambda f: f["user_id"])


def duplicate_claims(conn: Connection, floor: int | None) -> list[dict[str, Any]]:
    if floor is None:
        return []
    return [
        finding(
            "duplicate_claim",
            r.user_id,
            source_type=r.source_type,
            source_id=r.source_id,
            **({"period_start": r.period_start.isoformat()} if r.period_start else {}),
            ledger_ids=list(r.ledger_ids),
        )
        for r in conn.execute(_DUPLICATE_CLAIMS, {"floor": floor})
    ]


def run(conn: Connection, cfg: DqConfig | None = None, sweep: Sweep | None = None) -> Report:
    """Every check on ``conn`` (a fresh connection: the snapshot is set here).
    ``sweep`` None checks every player's balance against their last ledger row."""
    cfg = cfg or DqConfig.from_env()
    started = time.perf_counter()
    conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    conn.execute(
        text("SELECT set_config('statement_timeout', :t, true)"),
        {"t": str(int(cfg.statement_timeout_s * 1000))},
    )
    now: datetime = conn.execute(_NOW).scalar_one()
    floor = conn.execute(_LEDGER_FLOOR, {"since": now - timedelta(seconds=cfg.window_s)}).scalar()
    steps: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "negative_balance": lambda: negative_balances(conn, floor),
        "ledger_mismatch": lambda: ledger_mismatches(conn, floor, sweep, cfg.sweep_users),
        "duplicate_claim": lambda: duplicate_claims(conn, floor),
        "gold_per_minute": lambda: anomalies.gold_per_minute(conn, floor, cfg.gold_per_min),
        "rapid_claims": lambda: anomalies.rapid_claims(
            conn, floor, cfg.claim_burst, cfg.claim_burst_s
        ),
        "win_rate": lambda: anomalies.win_rate(
            conn,
            now - timedelta(seconds=cfg.winrate_window_s),
            cfg.winrate_min_rounds,
            cfg.winrate_sigma,
        ),
    }
    findings = {name: steps[name]() for name in CHECKS}
    conn.rollback()
    return Report(
        generated_at=iso(now) or "",
        findings=findings,
        duration_s=time.perf_counter() - started,
        samples=cfg.samples,
        extra={"window_s": cfg.window_s},
    )
