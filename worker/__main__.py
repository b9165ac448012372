"""``python -m worker [--group NAME|all] [--lane all|live|bulk] [--burst] [--no-relay]``

Runs the outbox relay and one thread per consumer group. The first SIGTERM/SIGINT lets
every thread finish its current batch and exit; a second one exits immediately.
``--burst`` processes what is there and exits (tests, one-off catch-up). ``--lane``
splits the groups over two processes: ``live`` (the relay and the groups a person waits
for) and ``bulk`` (the rest, and the scheduled jobs), so the bulk one can be niced
without delaying pushes (worker/handlers/__init__.py).

Store outages are waited out inside each thread (:mod:`worker.runner`). Anything else
that escapes a thread stops the whole process with exit code 3 once the other threads
have finished their batch: a worker silently running without one of its groups (the
old behaviour) lets that group's lag grow unnoticed, while a process that exits is
restarted by its supervisor and shows up in its restart count.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ccweb import db
from ccweb.config import get_settings, set_settings
from ccweb.logs import configure_logging
from ccweb.metrics import instrument_engine
from ccweb.quality.jobs import run_scheduled
from ccweb.redis_client import get_redis
from ccweb.segments.jobs import run_scheduled as segment_batches
from worker.handlers import BATCH, GROUPS, LANES, LINGER_MS, SINK_GROUPS, groups, in_lane
from worker.relay import run_relay
from worker.runner import GroupConsumer
from worker.trim import trim_streams

log = logging.getLogger("worker")

EXIT_THREAD_DIED = 3  # a consumer or relay thread raised something unexpected
STOP_GRACE_S = 10.0  # how long the surviving threads get to finish their batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker")
    parser.add_argument("--group", default="all", choices=["all", *GROUPS, *SINK_GROUPS])
    parser.add_argument("--burst", action="store_true", help="drain and exit")
    parser.add_argument("--no-relay", action="store_true", help="do not run the outbox relay")
    parser.add_argument(
        "--lane",
        default="all",
        choices=LANES,
        help="live: relay + the groups a person waits for; bulk: the rest and the"
        " scheduled jobs (worker/handlers/__init__.py); all: both",
    )
    parser.add_argument("--consumer", default=None, help="consumer name (default host-pid)")
    args = parser.parse_args(argv)

    # A consumer's batch statement may legitimately run longer than a request's: the
    # worker has its own statement timeout (a cancelled statement counts as a store
    # outage and is retried, so a bound as tight as a request's could retry forever).
    settings = get_settings().with_overrides(
        db_statement_timeout_ms=get_settings().worker_statement_timeout_ms
    )
    set_settings(settings)
    if settings.worker_nice > 0:
        # On a box shared with the web processes, background consumption should yield the
        # CPU to player requests; it catches up in the gaps (see README, Configuration).
        os.nice(settings.worker_nice)
    configure_logging(settings)
    instrument_engine(db.init_engine(settings))
    # XREADGROUP blocks up to worker_block_ms: this client's reads may last that long
    client = get_redis(settings, blocking_ms=settings.worker_block_ms)
    consumer = args.consumer or f"{settings.hostname}-{os.getpid()}"
    if settings.worker_metrics_port and not args.burst:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port)

    stop = threading.Event()
    signals = {"n": 0}

    def on_signal(signum: int, _: Any) -> None:
        signals["n"] += 1
        if signals["n"] > 1:
            os._exit(1)
        log.info("signal %d: finishing current batches", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    enabled = groups(settings)
    if args.group != "all" and args.group not in enabled:
        parser.error(f"group {args.group}: its sink is not configured")
    names = [n for n in enabled if in_lane(n, args.lane)] if args.group == "all" else [args.group]
    consumers = [
        GroupConsumer(client, settings, n, enabled[n], consumer, LINGER_MS.get(n), BATCH.get(n))
        for n in names
    ]
    for c in consumers:
        c.ensure_groups()  # all groups exist before anything trims behind them
    if args.burst and not args.no_relay and args.lane != "bulk":  # publish first, then drain
        run_relay(client, settings, stop, burst=True)
    died: list[str] = []
    threads = [supervised(c.group, c.run, stop, died, stop, args.burst) for c in consumers]
    relay = not args.no_relay and args.lane != "bulk"
    if relay and not args.burst:
        threads.append(supervised("relay", run_relay, stop, died, client, settings, stop))
    if args.group == "all" and args.lane != "live" and not args.burst:
        # data-quality checks every CC_DQ_INTERVAL_S (ccweb/quality/jobs.py; a failed run
        # is logged and counted, never fatal)
        threads.append(supervised("data-quality", run_scheduled, stop, died, settings, stop))
        # the nightly RFM batch, once a day across workers (ccweb/segments/jobs.py)
        threads.append(supervised("segments-nightly", segment_batches, stop, died, settings, stop))
    for t in threads:
        t.start()
    log.info("worker %s running groups %s", consumer, names)
    last_trim = time.monotonic()
    while any(t.is_alive() for t in threads) and not died:
        for t in threads:
            t.join(timeout=1.0)
            if died:
                break
        if not died and not args.burst and time.monotonic() - last_trim > 30:
            last_trim = time.monotonic()
            try:
                trim_streams(client, settings)
            except Exception:
                log.warning("stream trim failed", exc_info=True)
    if died:
        # The others were told to stop: give them the time to finish their batch, then
        # exit non-zero so the supervisor (honcho, systemd, Kubernetes) starts a whole
        # worker again instead of this one running on without a group.
        deadline = time.monotonic() + STOP_GRACE_S
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        log.critical("worker stopping: thread %s died", ", ".join(died))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_THREAD_DIED)  # a thread stuck in a store call must not hold the exit
    if "kafka" in enabled:
        from ccweb.kafka import producer

        producer.close()  # deliver what is buffered before exiting (atexit would too)
    log.info("worker stopped")
    return 0


def supervised(
    name: str, target: Callable[..., None], stop: threading.Event, died: list[str], *args: Any
) -> threading.Thread:
    """A thread running ``target(*args)`` that, if ``target`` raises, records ``name`` in
    ``died`` and sets ``stop`` so the process winds down and exits non-zero."""

    def run() -> None:
        try:
            target(*args)
        except BaseException:
            log.critical("thread %s died unexpectedly", name, exc_info=True)
            died.append(name)
            stop.set()

    return threading.Thread(target=run, name=name)


if __name__ == "__main__":
    sys.exit(main())
