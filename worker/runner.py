"""The consumer loop: XREADGROUP / XACK / XAUTOCLAIM / dead-letter, graceful stop.

One :class:`GroupConsumer` per consumer group reads every partition stream. A batch is
handed to the group's handler as a whole (handlers do one transaction per batch); if
the batch fails, entries are retried one by one so a poison entry cannot block the
rest. Failed entries stay pending; after ``worker_reclaim_idle_ms`` they are reclaimed
(XAUTOCLAIM). An entry that fails on its ``worker_max_deliveries``-th delivery goes to
the dead-letter stream ``<prefix>:dlq`` with its last error; one reclaimed beyond that
(its consumers kept dying while handling it) goes there without being handled again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from ccweb.config import Settings
from ccweb.events import all_stream_keys
from ccweb.metrics import (
    WORKER_DEAD_LETTERED,
    WORKER_FAILURES,
    WORKER_LAG,
    WORKER_PENDING,
    WORKER_PROCESSED,
    WORKER_RECLAIMED,
)
from worker.entries import Entry

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Entry]], None]


def dlq_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}:dlq"


def errors_key(settings: Settings, group: str) -> str:
    return f"{settings.redis_prefix}:worker:errors:{group}"


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create the group at the start of the stream; tolerate BUSYGROUP (already there)."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class GroupConsumer:
    def __init__(
        self, client: redis.Redis, settings: Settings, group: str, handler: Handler, consumer: str
    ) -> None:
        self.redis = client
        self.settings = settings
        self.group = group
        self.handler = handler
        self.consumer = consumer
        self.streams = all_stream_keys(settings)
        self._reclaim_cursor = {s: "0-0" for s in self.streams}
        self._last_reclaim = 0.0

    def ensure_groups(self) -> None:
        for stream in self.streams:
            ensure_group(self.redis, stream, self.group)

    # -- reading -----------------------------------------------------------------------
    def read_new(self, block_ms: int | None) -> list[Entry]:
        resp: Any = self.redis.xreadgroup(
            self.group,
            self.consumer,
            {s: ">" for s in self.streams},
            count=self.settings.worker_batch,
            block=block_ms,
        )
        return [
            Entry(stream, eid, fields)
            for stream, items in resp or []
            for eid, fields in items
            if fields is not None
        ]

    def reclaim(self) -> list[Entry]:
        """Take over entries idle longer than the reclaim threshold; dead-letter the ones
        delivered too often. Returns the entries to handle again."""
        out: list[Entry] = []
        idle = self.settings.worker_reclaim_idle_ms
        for stream in self.streams:
            cursor, claimed, deleted = self._autoclaim(stream, idle)
            self._reclaim_cursor[stream] = cursor
            for eid in deleted or []:  # trimmed away while pending: nothing left to do
                self.redis.xack(stream, self.group, eid)
            if not claimed:
                continue
            counts = self._delivery_counts(stream, [eid for eid, _ in claimed])
            errors: list[Any] = self.redis.hmget(  # type: ignore[assignment]
                errors_key(self.settings, self.group), [eid for eid, _ in claimed]
            )
            for (eid, fields), err in zip(claimed, errors, strict=True):
                if fields is None:
                    self.redis.xack(stream, self.group, eid)
                    continue
                entry = Entry(stream, eid, fields, deliveries=counts.get(eid, 1), error=err)
                if entry.deliveries > self.settings.worker_max_deliveries:
                    self.dead_letter(entry)
                else:
                    out.append(entry)
            WORKER_RECLAIMED.labels(group=self.group).inc(len(claimed))
        return out

    def _autoclaim(self, stream: str, idle_ms: int) -> tuple[str, list, list]:
        resp: Any = self.redis.xautoclaim(
            stream,
            self.group,
            self.consumer,
            min_idle_time=idle_ms,
            start_id=self._reclaim_cursor[stream],
            count=self.settings.worker_batch,
        )
        cursor, claimed = resp[0], resp[1]
        deleted = resp[2] if len(resp) > 2 else []
        return cursor, claimed, deleted

    def _delivery_counts(self, stream: str, ids: list[str]) -> dict[str, int]:
        rows: Any = self.redis.xpending_range(
            stream,
            self.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids) + 1000,
            consumername=self.consumer,
        )
        return {r["message_id"]: int(r["times_delivered"]) for r in rows}

    # -- handling ----------------------------------------------------------------------
    def handle(self, entries: list[Entry]) -> int:
        """Run the handler; ack what succeeded; record errors for what failed."""
        if not entries:
            return 0
        done: list[Entry] = []
        failed: list[Entry] = []
        try:
            self.handler(entries)
            done = list(entries)
        except Exception:
            log.warning(
                "batch of %d failed in %s; retrying one by one",
                len(entries),
                self.group,
                exc_info=True,
            )
            for entry in entries:
                try:
                    self.handler([entry])
                    done.append(entry)
                except Exception as exc:
                    entry.error = f"{type(exc).__name__}: {exc}"[:2000]
                    failed.append(entry)
        self.ack(done)
        if failed:
            WORKER_FAILURES.labels(group=self.group).inc(len(failed))
            self.redis.hset(
                errors_key(self.settings, self.group), mapping={e.id: e.error or "" for e in failed}
            )
            for e in failed:
                log.error(
                    "entry %s %s failed (delivery %d): %s",
                    e.id,
                    e.event_type,
                    e.deliveries,
                    e.error,
                )
                if e.deliveries >= self.settings.worker_max_deliveries:
                    # that was its last delivery: dead-letter now rather than after one
                    # more reclaim period and a delivery that would never be handled
                    self.dead_letter(e)
        WORKER_PROCESSED.labels(group=self.group).inc(len(done))
        return len(done)

    def ack(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        pipe = self.redis.pipeline(transaction=False)
        by_stream: dict[str, list[str]] = {}
        for e in entries:
            by_stream.setdefault(e.stream, []).append(e.id)
        for stream, ids in by_stream.items():
            pipe.xack(stream, self.group, *ids)
        pipe.hdel(errors_key(self.settings, self.group), *[e.id for e in entries])
        pipe.execute()

    def dead_letter(self, entry: Entry) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(
            dlq_key(self.settings),
            {
                "group": self.group,
                "stream": entry.stream,
                "entry_id": entry.id,
                "event_id": entry.event_id,
                "event_type": entry.event_type,
                "deliveries": str(entry.deliveries),
                "error": entry.error or "unknown",
                "data": entry.fields.get("data", ""),
                "dead_lettered_at": str(time.time()),
            },
        )
        pipe.xack(entry.stream, self.group, entry.id)
        pipe.hdel(errors_key(self.settings, self.group), entry.id)
        pipe.execute()
        WORKER_DEAD_LETTERED.labels(group=self.group).inc()
        log.error(
            "dead-lettered %s (%s) after %d deliveries: %s",
            entry.id,
            entry.event_type,
            entry.deliveries,
            entry.error,
        )

    # -- loop --------------------------------------------------------------------------
    def run_once(self, block_ms: int | None) -> int:
        """One iteration: reclaim (at most every second) then read new. Returns the number
        of entries handled successfully."""
        handled = 0
        now = time.monotonic()
        if now - self._last_reclaim >= min(1.0, self.settings.worker_reclaim_idle_ms / 1000):
            self._last_reclaim = now
            handled += self.handle(self.reclaim())
        entries = self.read_new(block_ms)
        linger = self.settings.worker_linger_ms
        if block_ms is not None and linger > 0 and 0 < len(entries) < self.settings.worker_batch:
            # A trickle would otherwise be handled one or two entries per transaction; a
            # short wait lets the batch fill up (throughput) at a bounded latency cost.
            time.sleep(linger / 1000)
            entries += self.read_new(None)
        handled += self.handle(entries)
        return handled

    def pending(self) -> int:
        return sum(int(self.redis.xpending(s, self.group)["pending"]) for s in self.streams)

    def update_lag_metrics(self) -> None:
        pending = 0
        for stream in self.streams:
            for info in self.redis.xinfo_groups(stream):
                if info["name"] == self.group:
                    WORKER_LAG.labels(group=self.group, stream=stream).set(info.get("lag") or 0)
                    pending += int(info.get("pending") or 0)
        WORKER_PENDING.labels(group=self.group).set(pending)

    def run(self, stop: threading.Event, burst: bool = False) -> None:
        self.ensure_groups()
        last_metrics = 0.0
        while not stop.is_set():
            try:
                handled = self.run_once(None if burst else self.settings.worker_block_ms)
                if burst and handled == 0:
                    if not self.retry_pending_in_burst():
                        break
                    stop.wait(0.05)  # failed entries wait for their reclaim idle time
                if time.monotonic() - last_metrics > 5:
                    last_metrics = time.monotonic()
                    self.update_lag_metrics()
            except (redis.ConnectionError, redis.TimeoutError):  # down, or not answering
                log.warning("redis unavailable; retrying", exc_info=True)
                stop.wait(1.0)

    def retry_pending_in_burst(self) -> bool:
        """In burst mode, keep going while failed entries wait for a retry, but only when
        the reclaim idle time is short (tests); otherwise leave them to a long-running
        worker."""
        return self.settings.worker_reclaim_idle_ms <= 1000 and self.pending() > 0
