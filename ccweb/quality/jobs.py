"""The scheduled data-quality job (a thread of the worker) and the stored latest report.

:func:`run_scheduled` runs the checks every ``CC_DQ_INTERVAL_S`` (60 s), sets the
``cc_dq_*`` metrics and stores the report as JSON in Redis (``<prefix>:dq:latest``,
expiring after ten intervals so that a report of a job that stopped is not served as
current: the admin endpoint then runs the checks itself). A failed run (a store outage,
a statement timeout) is logged and counted and the loop goes on: the checks are not on
any player's path, and stopping the worker for them would stop progress and the relay.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from prometheus_client import Counter

from ccweb import db
from ccweb.config import Settings
from ccweb.quality import metrics
from ccweb.quality.checks import DqConfig, Report, Sweep, run
from ccweb.redis_client import get_redis

log = logging.getLogger(__name__)

DQ_RUN_FAILURES = Counter("cc_dq_run_failures_total", "Data-quality runs that raised")
TTL_INTERVALS = 10


def report_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}:dq:latest"


def run_once(settings: Settings, cfg: DqConfig, sweep: Sweep | None) -> Report:
    """One run: checks, metrics, the stored report."""
    with db.init_engine(settings).connect() as conn:
        report = run(conn, cfg, sweep)
    metrics.record(report)
    get_redis(settings).set(
        report_key(settings),
        json.dumps(report.to_dict(), default=str),
        ex=max(int(cfg.interval_s * TTL_INTERVALS), 60),
    )
    return report


def latest(settings: Settings) -> dict[str, Any] | None:
    raw = get_redis(settings).get(report_key(settings))
    return json.loads(raw) if raw else None


def run_scheduled(settings: Settings, stop: threading.Event) -> None:
    """Run the checks every ``CC_DQ_INTERVAL_S`` until ``stop`` is set (the first run at
    once). The balance sweep's position lives here, so consecutive runs cover every
    player in turn."""
    cfg = DqConfig.from_env()
    sweep = Sweep()
    while not stop.is_set():
        try:
            report = run_once(settings, cfg, sweep)
            if not report.ok:
                log.warning("data quality findings: %s", report.counts())
        except Exception:
            DQ_RUN_FAILURES.inc()
            log.exception("data-quality run failed; next in %ss", cfg.interval_s)
        stop.wait(cfg.interval_s)
