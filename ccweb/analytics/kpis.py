"""Daily KPIs and whales from ClickHouse (``GET /api/admin/analytics/kpis``).

Definitions (every day is a UTC calendar day, ``event_date`` of the event's ``ts``):

- ``dau``: distinct players with at least one event of their own that day. Events the
  system derives from a player's events (``event.progress``, ``mission.progress``,
  ``achievement.unlocked``) and ``shop.settlement`` (a payment provider acting, not the
  player) do not count — ``ccweb.events.NOT_PLAYER_ACTIVITY``, the same rule as the
  worker's ``activity`` group.
- ``arpdau``: gold spent in the shop that day (``price_gold`` of successful
  ``shop.purchase`` events) divided by ``dau``; 0 when ``dau`` is 0. The game's revenue
  is gold (SPEC: one soft currency), so "revenue" is gold that players gave the shop.
- ``event_claims``: ``event.claim`` events that day.
- ``claim_conversion``: players who claimed a live event that day / players who had
  ``event.progress`` that day; 0 when nobody progressed. It can exceed 1 on a day when
  players claim rewards they completed earlier — that is the operator's signal that
  claims lag completion, and capping it would hide it.
- ``purchases``: successful ``shop.purchase`` events that day.
- ``purchase_success_rate``: successful / all ``shop.purchase`` events that day (business
  refusals are emitted as ``status: failed``); 0 when there was no attempt.
- ``whales``: players whose successful purchases (``price_gold``) in the 30 days ending
  ``to`` (``to`` − 29 … ``to``, inclusive) sum to at least 50 000 gold (seed 002 §9),
  sorted by id.

Ratios are rounded to 4 decimals. Every day of the range is present, with zeros when
nothing happened.

Everything is read from materialized views, never from the raw events:
``mv_daily_kpis`` (one row per day: DAU, purchases, spend), ``mv_event_completion``
(claims and conversion, one row per day and live event) and ``mv_user_spend`` (whales,
one row per buyer-day). ``mv_user_daily`` holds the same per-player numbers but reading
one state per active player-day made a 30-day answer cost ~0.8 s at 1 000 000 events
(migration 0004). Every state is replay-proof (migration 0002), so a batch ingested
twice changes no number here.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from clickhouse_driver import Client

WHALE_THRESHOLD_GOLD = 50_000  # seed 002 §9
WHALE_WINDOW_DAYS = 30
MAX_RANGE_DAYS = 400  # seed 002 §10: raw data is kept 400 days
QUERY_SETTINGS = {"max_execution_time": 5}

_DAILY = """
SELECT event_date,
       uniqExactIfMerge(active) AS dau,
       uniqExactIfMerge(purchases_all) AS attempts,
       uniqExactIfMerge(purchases_ok) AS purchases,
       arraySum(arrayMap(t -> tupleElement(t, 2), groupUniqArrayIfMerge(spent_gold))) AS spent
FROM mv_daily_kpis
WHERE event_date >= %(from)s AND event_date <= %(to)s
GROUP BY event_date
"""

_EVENT_COMPLETION = """
SELECT event_date,
       uniqExactIfMerge(claims) AS claims,
       uniqExactIfMerge(claimers) AS claimers,
       uniqExactIfMerge(progress_players) AS progressed
FROM mv_event_completion
WHERE event_date >= %(from)s AND event_date <= %(to)s
GROUP BY event_date
"""

_WHALES = """
SELECT user_id
FROM mv_user_spend
WHERE event_date >= %(from)s AND event_date <= %(to)s
GROUP BY user_id
HAVING arraySum(arrayMap(t -> tupleElement(t, 2), groupUniqArrayMerge(spent_gold)))
       >= %(threshold)s
ORDER BY user_id
"""


def _ratio(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


def whales(client: Client, to: date) -> list[int]:
    rows = client.execute(
        _WHALES,
        {
            "from": to - timedelta(days=WHALE_WINDOW_DAYS - 1),
            "to": to,
            "threshold": WHALE_THRESHOLD_GOLD,
        },
        settings=QUERY_SETTINGS,
    )
    return [int(r[0]) for r in rows]


def kpis(client: Client, start: date, end: date) -> dict[str, Any]:
    """The KPI document for ``start``..``end`` (inclusive; the caller bounds the range)."""
    params = {"from": start, "to": end}
    daily = {r[0]: r[1:] for r in client.execute(_DAILY, params, settings=QUERY_SETTINGS)}
    claims = {
        r[0]: r[1:] for r in client.execute(_EVENT_COMPLETION, params, settings=QUERY_SETTINGS)
    }
    days = []
    d = start
    while d <= end:
        dau, attempts, purchases, spent = daily.get(d, (0, 0, 0, 0))
        n_claims, claimers, progressed = claims.get(d, (0, 0, 0))
        days.append(
            {
                "date": d.isoformat(),
                "dau": int(dau),
                "arpdau": _ratio(int(spent), int(dau)),
                "event_claims": int(n_claims),
                "claim_conversion": _ratio(int(claimers), int(progressed)),
                "purchases": int(purchases),
                "purchase_success_rate": _ratio(int(purchases), int(attempts)),
            }
        )
        d += timedelta(days=1)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": days,
        "whales": whales(client, end),
    }
