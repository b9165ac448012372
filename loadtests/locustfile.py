"""Locust entry point for the Casino-Club load test (``make loadtest`` runs it headless
through :mod:`loadtests.run`; ``locust -f loadtests/locustfile.py --host URL`` from the
repository root runs it with the web UI).

Users: :class:`~loadtests.player.Player` (the HTTP loop), :class:`~loadtests.push.
SocketPlayer` (the same loop with the realtime socket, measuring pushes and event
progress) and, when enabled, one :class:`~loadtests.analyst.KpiAnalyst`.

Environment (all optional):

* ``LOADTEST_THINK_S`` — ``"min,max"`` seconds a player thinks between actions (1,3);
* ``LOADTEST_SOCKET_SHARE`` — share of players holding the socket, 0–1 (0.5);
* ``LOADTEST_SIGNUP_SHARE`` — share of players who sign up (0.1); the others log in to
  the accounts listed in ``LOADTEST_ACCOUNTS`` (one site id a line, password
  ``load-pass-1234``; :mod:`loadtests.run` makes them), and sign up once those run out;
* ``LOADTEST_KPI`` — ``1`` adds the KPI analyst (needs ClickHouse behind the server);
* ``LOADTEST_SUMMARY`` — where the end-of-run summary JSON goes
  (``loadtests/reports/summary.json``), judged by ``python -m loadtests.slo``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from loadtests import summary
from loadtests import targets as t
from loadtests.analyst import KpiAnalyst
from loadtests.knobs import RECOMMENDATIONS_REGISTERED, think_time
from loadtests.player import Player
from loadtests.push import SocketPlayer

log = logging.getLogger(__name__)

SOCKET_SHARE = min(1.0, max(0.0, float(os.environ.get("LOADTEST_SOCKET_SHARE", "0.5"))))
KPI_ENABLED = os.environ.get("LOADTEST_KPI", "0") == "1"
SUMMARY = Path(os.environ.get("LOADTEST_SUMMARY", "loadtests/reports/summary.json"))

# Class weights out of 100; a class with none left is not run at all.
Player.weight = round(100 * (1 - SOCKET_SHARE))
SocketPlayer.weight = 100 - Player.weight
Player.abstract = Player.weight == 0
SocketPlayer.abstract = SocketPlayer.weight == 0
KpiAnalyst.abstract = not KPI_ENABLED

__all__ = ["KpiAnalyst", "Player", "SocketPlayer"]


def _recommendations_registered(host: str) -> bool:
    """Whether the server documents GET /api/recommendations (added by issue 13)."""
    try:
        with urllib.request.urlopen(host.rstrip("/") + "/api/openapi.json", timeout=10) as r:
            paths: dict[str, Any] = json.loads(r.read()).get("paths", {})
    except (OSError, ValueError):
        return True  # unknown: hold it to the normal rule
    return t.RECOMMENDATIONS in paths


STEADY = summary.SteadyState()
events.request.add_listener(STEADY.on_request)
ENVIRONMENT: dict[str, Environment] = {}


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    ENVIRONMENT["env"] = environment


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    registered = _recommendations_registered(environment.host or "")
    RECOMMENDATIONS_REGISTERED["value"] = registered
    if not registered:
        log.warning("GET %s is not registered: its 404 NOT_FOUND is accepted", t.RECOMMENDATIONS)


@events.spawning_complete.add_listener
def _on_all_in(user_count: int, **_: Any) -> None:
    environment = ENVIRONMENT.get("env")
    started = environment.stats.total.start_time if environment is not None else time.time()
    STEADY.start(user_count, started)


@events.test_stopping.add_listener
def _on_stopping(environment: Environment, **_: Any) -> None:
    STEADY.stop(environment.runner.user_count if environment.runner is not None else 0)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # the master (or the local runner) holds the merged statistics
    summary.write(
        environment,
        STEADY,
        SUMMARY,
        {
            "recommendations_registered": RECOMMENDATIONS_REGISTERED["value"],
            "socket_share": SOCKET_SHARE,
            "think_s": list(think_time()),
            "kpi_enabled": KPI_ENABLED,
        },
    )
