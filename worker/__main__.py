"""``python -m worker [--group NAME|all] [--burst] [--no-relay]``

Runs the outbox relay and one thread per consumer group. The first SIGTERM/SIGINT lets
every thread finish its current batch and exit; a second one exits immediately.
``--burst`` processes what is there and exits (tests, one-off catch-up).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from ccweb import db
from ccweb.config import get_settings
from ccweb.logs import configure_logging
from ccweb.metrics import instrument_engine
from ccweb.redis_client import get_redis
from worker.handlers import GROUPS
from worker.relay import run_relay
from worker.runner import GroupConsumer
from worker.trim import trim_streams

log = logging.getLogger("worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker")
    parser.add_argument("--group", default="all", choices=["all", *GROUPS])
    parser.add_argument("--burst", action="store_true", help="drain and exit")
    parser.add_argument("--no-relay", action="store_true", help="do not run the outbox relay")
    parser.add_argument("--consumer", default=None, help="consumer name (default host-pid)")
    args = parser.parse_args(argv)

    settings = get_settings()
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

    names = list(GROUPS) if args.group == "all" else [args.group]
    consumers = [GroupConsumer(client, settings, n, GROUPS[n], consumer) for n in names]
    for c in consumers:
        c.ensure_groups()  # all groups exist before anything trims behind them
    if args.burst and not args.no_relay:  # publish everything first, then drain
        run_relay(client, settings, stop, burst=True)
    threads = [
        threading.Thread(target=c.run, args=(stop, args.burst), name=c.group) for c in consumers
    ]
    if not args.no_relay and not args.burst:
        threads.append(
            threading.Thread(target=run_relay, args=(client, settings, stop), name="relay")
        )
    for t in threads:
        t.start()
    log.info("worker %s running groups %s", consumer, names)
    last_trim = time.monotonic()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=1.0)
        if not args.burst and time.monotonic() - last_trim > 30:
            last_trim = time.monotonic()
            try:
                trim_streams(client, settings)
            except Exception:
                log.warning("stream trim failed", exc_info=True)
    log.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
