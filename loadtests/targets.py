"""What the load test measures and what it must reach: the SPEC §5 service levels as data.

One module for the request names and the SLO classes, because two sides must agree on
them: the Locust users (:mod:`loadtests.player`, :mod:`loadtests.push`) name every request
by its route template, and :mod:`loadtests.summary` aggregates the right entries per
class from Locust's own response-time distributions. Pure data, no Locust import, so
:mod:`loadtests.slo` can judge a summary without loading Locust (whose import
monkey-patches the process).
"""

from __future__ import annotations

from dataclasses import dataclass

# the players' password (pre-made accounts and sign-ups) and the seed's invite code
PASSWORD = "load-pass-1234"
INVITE_CODE = "5858"

# --- request names (route templates, so the report groups them) --------------------
SIGNUP = "/api/auth/signup"
LOGIN = "/api/auth/login"
REFRESH = "/api/auth/refresh"
ADMIN_LOGIN = "/api/auth/admin/login"
DASHBOARD = "/api/dashboard"
PROFILE = "/api/profile"
CATALOG = "/api/shop/catalog"
PURCHASE = "/api/shop/purchase"
STREAK_STATUS = "/api/streak/status"
STREAK_CLAIM = "/api/streak/claim"
SLOT = "/api/games/slot/spin"
GACHA = "/api/games/gacha/pull"
RPS = "/api/games/rps/play"
CRASH = "/api/games/crash/bet"
EVENTS = "/api/events"
PARTICIPATE = "/api/events/[id]/participate"
EVENT_CLAIM = "/api/events/[id]/claim"
MISSIONS = "/api/missions"
MISSION_CLAIM = "/api/missions/[id]/claim"
RECOMMENDATIONS = "/api/recommendations"
FLAGS = "/api/flags"
KPIS = "/api/admin/analytics/kpis"
RETRY_SUFFIX = " (retry)"  # the same idempotency key sent again: a replay, not a write

# WebSocket entries (request_type "WS"): one per pushed message type, "push <type>",
# timed from the event's server timestamp to its arrival here
WS = "WS"
PUSH_PREFIX = "push "
WS_CONNECT = "connect → initial_state"
PROGRESS_VISIBLE = "event progress visible"

GAMES = (SLOT, GACHA, RPS, CRASH)
CLAIMS = (STREAK_CLAIM, EVENT_CLAIM, MISSION_CLAIM)


@dataclass(frozen=True)
class LatencySlo:
    """A p95 target over the union of some Locust entries' response-time distributions."""

    key: str
    title: str
    target_ms: float
    request_type: str
    names: tuple[str, ...] = ()
    name_prefix: str | None = None

    def covers(self, request_type: str, name: str) -> bool:
        if request_type != self.request_type:
            return False
        if name in self.names:
            return True
        return self.name_prefix is not None and name.startswith(self.name_prefix)


# SPEC §5 "our target" column. Writes: the four game plays (one money statement each; a
# slot spin is one of them), the three claims and the purchase — every request of the
# loop that moves gold. Replays (RETRY_SUFFIX) are not writes and are left out.
LATENCY_SLOS: tuple[LatencySlo, ...] = (
    LatencySlo(
        "read",
        "read API p95 (dashboard, profile, catalog)",
        25.0,
        "GET",
        (DASHBOARD, PROFILE, CATALOG),
    ),
    LatencySlo(
        "write",
        "write API p95 (4 games, 3 claims, purchase)",
        50.0,
        "POST",
        (*GAMES, *CLAIMS, PURCHASE),
    ),
    LatencySlo("push", "commit → WebSocket push p95", 100.0, WS, name_prefix=PUSH_PREFIX),
    LatencySlo("progress", "gameplay → event progress visible p95", 300.0, WS, (PROGRESS_VISIBLE,)),
    LatencySlo("kpi", "KPI query p95", 100.0, "GET", (KPIS,)),
)

# failures / requests over every entry (HTTP and WS). SPEC §5 allows the seed's < 0.1 %
# event loss; we hold every non-game error to the same bound (a game outcome such as 409
# INSUFFICIENT_GOLD is not a failure, see loadtests.outcomes).
ERROR_RATE_MAX = 0.001
