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

Everything is read from the key views of migration 0006, never from the raw events:
``mv_active_players`` (one row per day and active player), ``mv_purchases`` (one row per
purchase attempt) and ``mv_event_players`` (one row per claim, and per player with live-event
progress, per day). They hold plain key rows instead of aggregate states because merging
the states (the earlier ``mv_daily_kpis`` / ``mv_user_spend``) cost ~150-220 ms for 30
days at 1 000 000 events, scanning the key rows ~20-40 ms (``bench/kpi_query.py``).

Exact and replay-proof: a replayed event adds only a copy of a key row until
ReplacingMergeTree merges it away, and every number here counts distinct keys
(``uniqExact``) or reads ``FINAL`` (sums of prices), so copies never count twice.

The document is one statement: the four parts below joined by ``UNION ALL``, which the
server runs in parallel (one round trip, both cores of a small box); each part returns
``(part, day, a, b, c)`` with the same types. A second, small statement recounts the
days whose activity rows are spread over several parts (``_ACTIVE``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from clickhouse_driver import Client

WHALE_THRESHOLD_GOLD = 50_000  # seed 002 §9
WHALE_WINDOW_DAYS = 30
MAX_RANGE_DAYS = 400  # seed 002 §10: raw data is kept 400 days
QUERY_SETTINGS = {"max_execution_time": 5}

# DAU per day, in two steps. Every part of mv_active_players holds a (day, player) key
# at most once: each part is written by one GROUP BY over the key (the view's SELECT on
# one inserted block, or 0006's backfill) or by a ReplacingMergeTree merge, which keeps
# one row per key. So a day whose rows all sit in one part has count() distinct
# players, and a count of rows per day is several times cheaper than hashing every
# player (~7 ms instead of ~20-30 ms for 30 days at ~16 000 DAU on 18.16). Copies (a
# replay not merged yet, a day still receiving inserts) can only sit in different parts:
# those days (a = rows, b = parts > 1) are counted again exactly with _ACTIVE_SPREAD —
# usually today alone, since the background merges fold closed days into one part.
# _part_index numbers the parts this statement reads, so the check and the count are
# of the same snapshot.
_ACTIVE = """
SELECT 'active' AS part, event_date AS day, count() AS a,
       uniqExact(_part_index) AS b, toInt64(0) AS c
FROM mv_active_players
WHERE event_date >= %(from)s AND event_date <= %(to)s
GROUP BY event_date
"""

_ACTIVE_SPREAD = """
SELECT event_date, uniqExact(user_id)
FROM mv_active_players
WHERE event_date IN %(days)s
GROUP BY event_date
"""

# Purchases per day: attempts, successes, gold spent. FINAL keeps one row per purchase
# (event_id in the key), so a replayed purchase's price is summed once.
_PURCHASES = """
SELECT 'purchases' AS part, event_date AS day, count() AS a, toUInt64(sum(ok)) AS b,
       toInt64(sum(ok * price_gold)) AS c
FROM mv_purchases FINAL
WHERE event_date >= %(from)s AND event_date <= %(to)s
GROUP BY event_date
"""

# Live events per day: claims (distinct claim ids), claimers and progressed players.
_EVENTS = """
SELECT 'events' AS part, event_date AS day,
       uniqExactIf(claim_id, event_type = 'event.claim') AS a,
       uniqExactIf(user_id, event_type = 'event.claim') AS b,
       toInt64(uniqExactIf(user_id, event_type = 'event.progress')) AS c
FROM mv_event_players
WHERE event_date >= %(from)s AND event_date <= %(to)s
GROUP BY event_date
"""

# Whales over their own window (w_from..to), one row per whale (a = user_id).
_WHALES = """
SELECT 'whale' AS part, toDate(0) AS day, user_id AS a, toUInt64(0) AS b,
       toInt64(sum(price_gold)) AS c
FROM mv_purchases FINAL
WHERE event_date >= %(w_from)s AND event_date <= %(to)s AND ok = 1
GROUP BY user_id
HAVING c >= %(threshold)s
"""

PARTS = {"active": _ACTIVE, "purchases": _PURCHASES, "events": _EVENTS, "whale": _WHALES}
_DOCUMENT = "UNION ALL".join(PARTS.values())


def _ratio(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


def _params(start: date, end: date) -> dict[str, Any]:
    return {
        "from": start,
        "to": end,
        "w_from": end - timedelta(days=WHALE_WINDOW_DAYS - 1),
        "threshold": WHALE_THRESHOLD_GOLD,
    }


def statements(client: Client, start: date, end: date) -> list[tuple[str, Callable[[], Any]]]:
    """Each part of the document as its own statement (``bench/kpi_query.py --detail``
    times them apart)."""
    params = _params(start, end)

    def run(sql: str) -> Callable[[], Any]:
        return lambda: client.execute(sql, params, settings=QUERY_SETTINGS)

    return [(name, run(sql)) for name, sql in PARTS.items()]


def kpis(client: Client, start: date, end: date) -> dict[str, Any]:
    """The KPI document for ``start``..``end`` (inclusive; the caller bounds the range)."""
    rows = client.execute(_DOCUMENT, _params(start, end), settings=QUERY_SETTINGS)
    active: dict[date, int] = {}
    purchases: dict[date, tuple[int, int, int]] = {}
    events: dict[date, tuple[int, int, int]] = {}
    whale_ids = []
    spread = []
    for part, day, a, b, c in rows:
        if part == "active":
            active[day] = int(a)
            if b > 1:
                spread.append(day)
        elif part == "purchases":
            purchases[day] = (int(a), int(b), int(c))
        elif part == "events":
            events[day] = (int(a), int(b), int(c))
        else:
            whale_ids.append(int(a))
    if spread:
        for day, dau in client.execute(
            _ACTIVE_SPREAD, {"days": tuple(spread)}, settings=QUERY_SETTINGS
        ):
            active[day] = int(dau)
    days = []
    d = start
    while d <= end:
        dau = active.get(d, 0)
        attempts, n_ok, spent = purchases.get(d, (0, 0, 0))
        n_claims, claimers, progressed = events.get(d, (0, 0, 0))
        days.append(
            {
                "date": d.isoformat(),
                "dau": dau,
                "arpdau": _ratio(spent, dau),
                "event_claims": n_claims,
                "claim_conversion": _ratio(claimers, progressed),
                "purchases": n_ok,
                "purchase_success_rate": _ratio(n_ok, attempts),
            }
        )
        d += timedelta(days=1)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": days,
        "whales": sorted(whale_ids),
    }
