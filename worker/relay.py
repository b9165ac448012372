"""The outbox relay loop run by the worker (see ccweb.outbox.relay for the why)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import redis

from ccweb import failpoints
from ccweb.config import Settings
from ccweb.outbox.relay import prune, relay_once
from worker import readings
from worker.dedupe import prune_processed
from worker.outage import BURST_OUTAGE_ATTEMPTS, Backoff, is_store_outage

log = logging.getLogger(__name__)

BATCH = 500  # outbox rows per relay pass


def run_relay(
    client: redis.Redis, settings: Settings, stop: threading.Event, burst: bool = False
) -> None:
    """Pass after pass while passes come back full (a backlog); otherwise one pass per
    ``relay_poll_s``. Under steady load the fast path has published every row already and
    a pass only confirms that; going again at once after a partial pass made each pass
    pick up the few rows that had just aged past the grace period — five SQL and one
    Redis round trip for a handful of rows, 40 % of the worker's CPU during spins.

    A store outage is waited out with the worker's backoff (the cursor only moves after
    a publish, so nothing is skipped); any other exception propagates, and the worker
    process exits so its supervisor restarts it."""
    ticks = 0
    last_reading = float("-inf")
    backoff = Backoff.for_worker(settings)
    while not stop.is_set():
        failpoints.hit("worker.relay")
        try:
            n = relay_once(client, settings, limit=BATCH, grace_s=0 if burst else None)
            if backoff.failures:
                log.warning("relay: stores answer again, resuming")
                backoff.reset()
            if n:
                log.debug("relay marked %d outbox rows published", n)
            if not burst and time.monotonic() - last_reading >= readings.EVERY_S:
                last_reading = time.monotonic()  # by the clock: a backlog is reported too
                readings.take()
            if n >= BATCH or (burst and n):
                continue
            if burst:
                return
            ticks += 1
            if ticks % 300 == 0:
                prune(timedelta(hours=settings.outbox_retention_h))
                prune_processed(timedelta(hours=settings.processed_retention_h))
        except Exception as exc:
            if not is_store_outage(exc):
                raise
            if burst and backoff.failures >= BURST_OUTAGE_ATTEMPTS:
                raise  # a one-off drain must end, not wait forever
            delay = backoff.next_delay()
            log.warning(
                "relay: store unavailable (%s); retrying in %.2f s",
                type(exc).__name__,
                delay,
                exc_info=backoff.failures == 1,
            )
            stop.wait(delay)
            continue
        stop.wait(settings.relay_poll_s)
