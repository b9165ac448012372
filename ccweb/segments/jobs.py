"""Running the RFM batch: once a day in the worker, on an operator's request, by command.

:func:`run_scheduled` is a worker thread (like the data-quality job). Every
``CC_SEGMENT_POLL_S`` it asks whether a batch is due and runs it when so:

* **nightly**: the day's slot is ``CC_SEGMENT_BATCH_AT`` (``HH:MM`` UTC, default
  ``02:05``, seed 003 §3.3). A batch is due when the last one (``segment_thresholds.
  computed_at``) is older than the latest slot that has passed — so a worker that was
  down at 02:05 catches up when it starts, and a fresh deployment (no batch ever) runs
  one at once;
* **requested**: ``POST /api/admin/segments/batch`` leaves a request in Redis
  (:func:`request_batch`) and the next poll runs it. The web server does not run the
  batch itself: its PostgreSQL round trips are bounded by the request statement timeout
  (2.5 s, :mod:`ccweb.db_timeouts`), and a batch over 100 000 players needs longer.

With several worker processes only one runs a given batch: the runner holds a Redis lock
(``SET NX`` with an expiry of ``CC_SEGMENT_LOCK_S``, so a runner that died frees it) and
checks again under the lock whether the batch is still due — a process that got the lock
just after another finished the slot sees the new ``computed_at`` and does nothing. A
failed batch is logged and counted (``cc_segment_batch_total{result="failure"}``); the
next poll tries again, since the slot is still due.

``python -m ccweb.segments batch`` (:mod:`ccweb.segments.__main__`) runs :func:`batch`
directly. Knobs are ``CC_SEGMENT_*`` environment variables (:class:`SegmentConfig`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

from ccweb import clock, db
from ccweb.config import Settings
from ccweb.events import iso
from ccweb.redis_client import get_redis, key
from ccweb.segments import metrics, rfm, store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentConfig:
    """From ``CC_SEGMENT_*`` environment variables (defaults here)."""

    batch_at: dtime = dtime(2, 5)  # CC_SEGMENT_BATCH_AT, "HH:MM" UTC
    poll_s: float = 10.0  # CC_SEGMENT_POLL_S: how often the worker asks "is a batch due?"
    statement_timeout_s: float = 600.0  # CC_SEGMENT_STATEMENT_TIMEOUT_S: the batch statement
    lock_s: float = 900.0  # CC_SEGMENT_LOCK_S: expiry of the runner's lock (> a batch)

    @classmethod
    def from_env(cls, **overrides: Any) -> SegmentConfig:
        def num(name: str, default: float) -> float:
            raw = os.environ.get(name, "").strip()
            return float(raw) if raw else default

        d = cls()
        at = os.environ.get("CC_SEGMENT_BATCH_AT", "").strip()
        cfg = cls(
            batch_at=parse_at(at) if at else d.batch_at,
            poll_s=num("CC_SEGMENT_POLL_S", d.poll_s),
            statement_timeout_s=num("CC_SEGMENT_STATEMENT_TIMEOUT_S", d.statement_timeout_s),
            lock_s=num("CC_SEGMENT_LOCK_S", d.lock_s),
        )
        return replace(cfg, **overrides)


def parse_at(value: str) -> dtime:
    """``"HH:MM"`` → a time of day (UTC); anything else is a ValueError."""
    hh, sep, mm = value.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit():
        raise ValueError(f"CC_SEGMENT_BATCH_AT must be HH:MM, not {value!r}")
    return dtime(int(hh), int(mm))


def due_slot(now: datetime, at: dtime) -> datetime:
    """The latest daily slot at or before ``now`` (today's if passed, else yesterday's)."""
    now = now.astimezone(UTC)
    slot = datetime.combine(now.date(), at, UTC)
    return slot if slot <= now else slot - timedelta(days=1)


def lock_key() -> str:
    return key("segments", "batch", "lock")


def request_key() -> str:
    return key("segments", "batch", "requested")


def batch(now: datetime | None = None, cfg: SegmentConfig | None = None) -> rfm.BatchResult:
    """Run the batch now (its own transaction) and record its metrics."""
    cfg = cfg or SegmentConfig.from_env()
    now = now or clock.utcnow()
    started = time.perf_counter()
    try:
        result = db.in_transaction(
            lambda s: rfm.run_batch(s, now, statement_timeout_s=cfg.statement_timeout_s)
        )
    except Exception:
        metrics.record_failure()
        raise
    result = replace(result, seconds=time.perf_counter() - started)
    with db.engine().connect() as conn:
        stale = store.stale_users(conn)
    metrics.record_batch(result.seconds, result.labels, stale)
    return result


def request_batch(settings: Settings, admin_id: int | None) -> dict[str, Any]:
    """Ask the worker to run a batch at its next poll; returns the request."""
    req = {"admin_id": admin_id, "requested_at": iso(clock.utcnow())}
    get_redis(settings).set(request_key(), json.dumps(req), ex=86400)
    return req


def pending_request(settings: Settings) -> dict[str, Any] | None:
    raw = get_redis(settings).get(request_key())
    return json.loads(raw) if raw else None


def _last_batch_at() -> datetime | None:
    with db.engine().connect() as conn:
        th = store.thresholds(conn)
    return None if th is None else th["computed_at"]


def _is_due(now: datetime, cfg: SegmentConfig) -> bool:
    last = _last_batch_at()
    return last is None or last < due_slot(now, cfg.batch_at)


def run_if_due(
    settings: Settings, cfg: SegmentConfig, now: datetime | None = None
) -> rfm.BatchResult | None:
    """Run the batch if the day's slot is due or an operator asked, unless another
    process is running it; None when nothing ran."""
    now = now or clock.utcnow()
    rds = get_redis(settings)
    if not rds.exists(request_key()) and not _is_due(now, cfg):
        return None
    lock = rds.lock(lock_key(), timeout=cfg.lock_s, blocking=False)
    if not lock.acquire(blocking=False):
        return None  # another process is on it
    try:
        requested = bool(rds.delete(request_key()))
        if not requested and not _is_due(now, cfg):
            return None  # another process finished this slot just before we got the lock
        return batch(now, cfg)
    finally:
        try:
            lock.release()
        except Exception:  # expired (a batch longer than lock_s) or Redis gone: it expires
            log.warning("segment batch lock not released", exc_info=True)


def refresh_stale_gauge() -> None:
    with db.engine().connect() as conn:
        metrics.STALE_USERS.set(store.stale_users(conn))


def run_scheduled(settings: Settings, stop: threading.Event) -> None:
    """The worker thread: every ``CC_SEGMENT_POLL_S``, run the batch when due (see the
    module docstring) and refresh ``cc_rfm_stale_users``. A failure is logged (and a
    failed batch counted); the loop goes on."""
    cfg = SegmentConfig.from_env()
    while not stop.is_set():
        try:
            result = run_if_due(settings, cfg)
            if result is not None:
                log.info("segment batch: %s", json.dumps(result.summary()))
            else:
                refresh_stale_gauge()
        except Exception:
            log.exception("segment batch check failed; next in %ss", cfg.poll_s)
        stop.wait(cfg.poll_s)
