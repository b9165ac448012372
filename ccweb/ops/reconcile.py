"""Reconciliation: does the data still tell one consistent story about every player's gold
and every event? (``python -m ccweb.manage reconcile``; exits 1 when something is off.)

Run it after an incident, a restore, or a load test with faults injected. Every check is
a count that must be zero:

* ``negative_balances`` — balances or ledger rows below zero (the schema forbids both;
  counted anyway, the check must not trust what it checks);
* ``ledger_mismatches`` — players whose balance is not the sum of their ledger;
* ``ledger_chain_breaks`` — ledger rows whose ``balance_after`` is not the previous row's
  plus the delta (a lost or doubled write in the middle of the history);
* ``rounds_with_wrong_money`` / ``game_money_without_round`` — a round's bet and payout
  rows missing, doubled or different from the round, or game money with no round;
* ``claims_without_money`` / ``reward_money_without_claim`` — a claimed event, mission or
  achievement row and its one ledger payment disagree;
* ``lost_events`` per consumer group — committed events (outbox rows) older than
  ``grace_s`` that the group never processed (the groups record every event id they
  handle in ``processed_events``).

Read-only, in one REPEATABLE READ snapshot so that concurrent play cannot produce a false
alarm between two checks. Costs a few sequential scans: an operator command, not a
request path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ccweb.events import GAME_ROUND, NOT_PLAYER_ACTIVITY, SHOP_PURCHASE, STREAK_CLAIM

# The events each consumer group records as processed (see worker/handlers).
GROUP_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "activity": ("NOT IN", tuple(sorted(NOT_PLAYER_ACTIVITY))),
    "progress": ("IN", (GAME_ROUND, STREAK_CLAIM, SHOP_PURCHASE)),
}

_CHECKS = {
    "players": "SELECT count(*) FROM users",
    "ledger_rows": "SELECT count(*) FROM wallet_ledger",
    "negative_balances": """
        SELECT (SELECT count(*) FROM users WHERE gold_balance < 0)
             + (SELECT count(*) FROM wallet_ledger WHERE balance_after < 0)""",
    "ledger_mismatches": """
        SELECT count(*) FROM users u
        LEFT JOIN (SELECT user_id, sum(delta_gold) AS total FROM wallet_ledger
                   GROUP BY user_id) l ON l.user_id = u.id
        WHERE u.gold_balance <> coalesce(l.total, 0)""",
    "ledger_chain_breaks": """
        SELECT count(*) FROM (
            SELECT balance_after, delta_gold,
                   lag(balance_after) OVER (PARTITION BY user_id ORDER BY id) AS prev
            FROM wallet_ledger) c
        WHERE balance_after <> coalesce(prev, 0) + delta_gold""",
    "rounds_with_wrong_money": """
        SELECT count(*) FROM game_rounds r
        LEFT JOIN LATERAL (
            SELECT count(*) AS n, coalesce(sum(delta_gold), 0) AS total FROM wallet_ledger
            WHERE idempotency_key IN ('round:' || r.id || ':' || 'bet',
                                      'round:' || r.id || ':' || 'win')
        ) m ON true
        WHERE m.total <> r.payout - r.bet
           OR m.n <> (r.bet > 0)::int + (r.payout > 0)::int""",
    "game_money_without_round": """
        SELECT count(*) FROM wallet_ledger l
        WHERE l.source_type IN ('game_bet', 'game_win')
          AND NOT EXISTS (SELECT 1 FROM game_rounds r WHERE r.id = l.source_id)""",
    "claims_without_money": """
        SELECT (SELECT count(*) FROM event_participations p
                JOIN live_events e ON e.id = p.event_id
                WHERE p.status = 'claimed' AND EXISTS (
                    SELECT 1 FROM jsonb_array_elements(e.reward_items) i
                    WHERE i ->> 'type' = 'gold')
                  AND NOT EXISTS (SELECT 1 FROM wallet_ledger l WHERE l.idempotency_key
                                  = 'event:' || p.event_id || ':' || p.user_id))
             + (SELECT count(*) FROM user_missions um
                JOIN missions m ON m.id = um.mission_id
                WHERE um.status = 'claimed' AND EXISTS (
                    SELECT 1 FROM jsonb_array_elements(m.reward_items) i
                    WHERE i ->> 'type' = 'gold')
                  AND NOT EXISTS (SELECT 1 FROM wallet_ledger l WHERE l.idempotency_key
                                  = 'mission:' || um.id || ':' || um.user_id))""",
    "reward_money_without_claim": """
        SELECT (SELECT count(*) FROM wallet_ledger l WHERE l.source_type = 'event'
                AND NOT EXISTS (SELECT 1 FROM event_participations p
                    WHERE p.event_id = l.source_id AND p.user_id = l.user_id
                      AND p.status = 'claimed'))
             + (SELECT count(*) FROM wallet_ledger l WHERE l.source_type = 'achievement'
                AND NOT EXISTS (SELECT 1 FROM user_achievements a
                    WHERE a.achievement_id = l.source_id AND a.user_id = l.user_id
                      AND a.claimed_at IS NOT NULL))""",
    "open_idempotency_claims": (
        "SELECT count(*) FROM idempotency_keys WHERE status_code IS NULL"
    ),  # informational: requests that died before committing (taken over when retried)
}

MUST_BE_ZERO = (
    "negative_balances",
    "ledger_mismatches",
    "ledger_chain_breaks",
    "rounds_with_wrong_money",
    "game_money_without_round",
    "claims_without_money",
    "reward_money_without_claim",
)


def _lost_events_sql(group: str) -> str:
    op, types = GROUP_EVENTS[group]
    listed = ", ".join(f"'{t}'" for t in types)
    return f"""
        SELECT count(*) FROM outbox o
        WHERE o.event_type {op} ({listed}) AND o.user_id IS NOT NULL
          AND o.created_at < now() - make_interval(secs => :grace)
          AND NOT EXISTS (SELECT 1 FROM processed_events p
                          WHERE p.consumer = '{group}' AND p.event_id = o.event_id)"""


def reconcile(conn: Connection, grace_s: float = 60.0) -> dict[str, Any]:
    """Every count (see the module docstring) and ``ok``: all that must be zero is."""
    conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    report: dict[str, Any] = {
        name: int(conn.execute(text(sql)).scalar() or 0) for name, sql in _CHECKS.items()
    }
    report["lost_events"] = {
        group: int(conn.execute(text(_lost_events_sql(group)), {"grace": grace_s}).scalar() or 0)
        for group in GROUP_EVENTS
    }
    report["ok"] = all(report[k] == 0 for k in MUST_BE_ZERO) and not any(
        report["lost_events"].values()
    )
    return report
