"""The consumer loop: XREADGROUP / XACK / XAUTOCLAIM / dead-letter, graceful stop.

One :class:`GroupConsumer` per consumer group reads every partition stream, plus the
group's own retry stream ``<prefix>:retry:<group>`` (dead letters replayed for this
group only, see :mod:`worker.dlq`). A batch is handed to the group's handler as a whole
(handlers do one transaction per batch); if the batch fails, entries are retried one by
one so a poison entry cannot block the rest.

Two kinds of failure are kept apart (:mod:`worker.outage`):

- **Handler errors** (a bug, bad data, a constraint): the entry stays pending, its
  failure count (``<prefix>:worker:failures:<group>``) and last error
  (``…:errors:<group>``) are recorded, and it is reclaimed (XAUTOCLAIM) after
  ``worker_reclaim_idle_ms``. Its ``worker_max_deliveries``-th failure sends it to the
  dead-letter stream ``<prefix>:dlq`` with that error.
- **Store outages** (PostgreSQL or Redis unreachable, restarting, too slow): nothing is
  recorded against the entries. The consumer keeps the batch and retries the same
  batch after a bounded exponential backoff (``worker_backoff_ms`` doubling up to
  ``worker_backoff_max_ms``), reading nothing new meanwhile. While it waits it re-claims
  the held entries for itself every third of the reclaim period (``XCLAIM … JUSTID``,
  which resets their idle time without counting a delivery), so no other consumer
  reclaims them and Redis's delivery counter stays where it was: an outage of any length
  dead-letters nothing.

Redis's own delivery count (XPENDING ``times_delivered``) is used only for entries whose
consumer died or hung while handling them (no failure recorded, nothing acked): when
``worker_max_deliveries`` deliveries ended that way, the reclaim sends the entry to the
dead-letter stream instead of crashing another consumer with it.

Anything else raised in the loop is unexpected: it propagates, and ``python -m worker``
stops the whole process with a non-zero exit code so its supervisor restarts it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from ccweb import failpoints
from ccweb.config import Settings
from ccweb.events import all_stream_keys, dlq_key, retry_key
from ccweb.metrics import (
    WORKER_DEAD_LETTERED,
    WORKER_FAILURES,
    WORKER_LAG,
    WORKER_PENDING,
    WORKER_PROCESSED,
    WORKER_RECLAIMED,
)
from worker.entries import Entry
from worker.outage import BURST_OUTAGE_ATTEMPTS, Backoff, SinkUnavailable, is_store_outage

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Entry]], None]


def errors_key(settings: Settings, group: str) -> str:
    """Hash entry id → last handler error of a pending entry."""
    return f"{settings.redis_prefix}:worker:errors:{group}"


def failures_key(settings: Settings, group: str) -> str:
    """Hash entry id → handler failures so far of a pending entry."""
    return f"{settings.redis_prefix}:worker:failures:{group}"


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create the group at the start of the stream; tolerate BUSYGROUP (already there)."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class StoreUnavailable(Exception):
    """A batch met a store outage: ``entries`` are to be handled again, unchanged, once
    the store answers (the original error is the ``__cause__``)."""

    def __init__(self, entries: list[Entry]) -> None:
        super().__init__(f"store unavailable with {len(entries)} entries in hand")
        self.entries = entries


class GroupConsumer:
    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        group: str,
        handler: Handler,
        consumer: str,
        linger_ms: int | None = None,
        batch: int | None = None,
    ) -> None:
        self.redis = client
        # entries per read (XREADGROUP/XAUTOCLAIM COUNT): None = CC_WORKER_BATCH; a sink
        # that wants big inserts (ClickHouse) reads more at once
        self.batch = settings.worker_batch if batch is None else batch
        # a group whose entries a person waits for (realtime pushes) does not wait for
        # its batch to fill: None = CC_WORKER_LINGER_MS
        self.linger_ms = settings.worker_linger_ms if linger_ms is None else linger_ms
        self.settings = settings
        self.group = group
        self.handler = handler
        self.consumer = consumer
        self.retry_stream = retry_key(settings, group)
        self.streams = [*all_stream_keys(settings), self.retry_stream]
        self._read_from: dict[Any, Any] = {s: ">" for s in self.streams}
        self._reclaim_cursor = {s: "0-0" for s in self.streams}
        self._last_reclaim = 0.0
        self._held: list[Entry] = []  # a batch waiting out a store outage
        self._failpoint = f"worker.loop.{group}"

    def ensure_groups(self) -> None:
        for stream in self.streams:
            ensure_group(self.redis, stream, self.group)

    # -- reading -----------------------------------------------------------------------
    def read_new(self, block_ms: int | None) -> list[Entry]:
        resp: Any = self.redis.xreadgroup(
            self.group,
            self.consumer,
            self._read_from,
            count=self.batch,
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
        whose consumers kept dying on them. Returns the entries to handle again."""
        out: list[Entry] = []
        idle = self.settings.worker_reclaim_idle_ms
        for stream in self.streams:
            cursor, claimed, deleted = self._autoclaim(stream, idle)
            self._reclaim_cursor[stream] = cursor
            for eid in deleted or []:  # trimmed away while pending: nothing left to do
                self.redis.xack(stream, self.group, eid)
            if not claimed:
                continue
            ids = [eid for eid, _ in claimed]
            counts = self._delivery_counts(stream, ids)
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(failures_key(self.settings, self.group), ids)
            pipe.hmget(errors_key(self.settings, self.group), ids)
            failures, errors = pipe.execute()
            for (eid, fields), n_failed, err in zip(claimed, failures, errors, strict=True):
                if fields is None:
                    self.redis.xack(stream, self.group, eid)
                    continue
                entry = Entry(
                    stream,
                    eid,
                    fields,
                    deliveries=counts.get(eid, 1),
                    failures=int(n_failed or 0),
                    error=err,
                )
                # deliveries before this one that ended with neither an ack nor a
                # recorded failure: the consumer died (or hung) while handling it
                unfinished = entry.deliveries - 1 - entry.failures
                if unfinished >= self.settings.worker_max_deliveries:
                    entry.error = (
                        f"{unfinished} deliveries ended without a result (the consumer died"
                        " or hung while handling it)" + (f"; last error: {err}" if err else "")
                    )
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
            count=self.batch,
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

    def keep_claimed(self, entries: Sequence[Entry]) -> None:
        """Reset the idle time of entries this consumer holds (``XCLAIM … JUSTID`` does not
        count a delivery), so that no consumer reclaims them while this one waits for a
        store to come back."""
        by_stream: dict[str, list[Any]] = {}
        for e in entries:
            by_stream.setdefault(e.stream, []).append(e.id)
        pipe = self.redis.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xclaim(stream, self.group, self.consumer, 0, ids, justid=True)
        pipe.execute()

    # -- handling ----------------------------------------------------------------------
    def handle(self, entries: list[Entry]) -> int:
        """Run the handler; ack what succeeded; record handler errors for what failed.
        Raises :class:`StoreUnavailable` (nothing recorded against the entries) when a
        store outage got in the way."""
        if not entries:
            return 0
        done: list[Entry] = []
        failed: list[Entry] = []
        try:
            self.handler(entries)
            done = list(entries)
        except Exception as exc:
            if is_store_outage(exc):
                raise StoreUnavailable(list(entries)) from exc
            log.warning(
                "batch of %d failed in %s; retrying one by one",
                len(entries),
                self.group,
                exc_info=True,
            )
            for i, entry in enumerate(entries):
                try:
                    self.handler([entry])
                    done.append(entry)
                except Exception as exc:
                    if is_store_outage(exc):
                        # settle what is known; the rest waits for the store
                        rest = list(entries[i:])
                        try:
                            self._settle(done, failed)
                        except StoreUnavailable as unsettled:
                            rest = unsettled.entries + rest
                        raise StoreUnavailable(rest) from exc
                    entry.error = f"{type(exc).__name__}: {exc}"[:2000]
                    failed.append(entry)
        self._settle(done, failed)
        WORKER_PROCESSED.labels(group=self.group).inc(len(done))
        return len(done)

    def _settle(self, done: list[Entry], failed: list[Entry]) -> None:
        """Ack ``done``; count a failure for each of ``failed`` and dead-letter the ones
        that reached the limit. Redis failing here leaves every entry to be handled again
        (the handlers' event-id dedupe makes that safe)."""
        try:
            self.ack(done)
            if failed:
                self._record_failures(failed)
        except Exception as exc:
            if is_store_outage(exc):
                raise StoreUnavailable([*done, *failed]) from exc
            raise

    def _record_failures(self, failed: list[Entry]) -> None:
        WORKER_FAILURES.labels(group=self.group).inc(len(failed))
        pipe = self.redis.pipeline(transaction=False)
        for e in failed:
            pipe.hincrby(failures_key(self.settings, self.group), e.id, 1)
        pipe.hset(
            errors_key(self.settings, self.group), mapping={e.id: e.error or "" for e in failed}
        )
        counts = pipe.execute()[: len(failed)]
        for e, n in zip(failed, counts, strict=True):
            e.failures = int(n)
            log.error(
                "entry %s %s failed (failure %d, delivery %d): %s",
                e.id,
                e.event_type,
                e.failures,
                e.deliveries,
                e.error,
            )
            if e.failures >= self.settings.worker_max_deliveries:
                # its last allowed failure: dead-letter now rather than after one more
                # reclaim period and a delivery that would never be handled
                self.dead_letter(e)

    def ack(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        pipe = self.redis.pipeline(transaction=False)
        by_stream: dict[str, list[str]] = {}
        for e in entries:
            by_stream.setdefault(e.stream, []).append(e.id)
        for stream, ids in by_stream.items():
            pipe.xack(stream, self.group, *ids)
            if stream == self.retry_stream:  # read by this group only: done with it
                pipe.xdel(stream, *ids)
        ids = [e.id for e in entries]
        pipe.hdel(errors_key(self.settings, self.group), *ids)
        pipe.hdel(failures_key(self.settings, self.group), *ids)
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
                "user_id": entry.fields.get("user_id", ""),
                "failures": str(entry.failures),
                "deliveries": str(entry.deliveries),
                "error": entry.error or "unknown",
                "data": entry.fields.get("data", ""),
                "dead_lettered_at": str(time.time()),
            },
        )
        pipe.xack(entry.stream, self.group, entry.id)
        if entry.stream == self.retry_stream:
            pipe.xdel(entry.stream, entry.id)
        pipe.hdel(errors_key(self.settings, self.group), entry.id)
        pipe.hdel(failures_key(self.settings, self.group), entry.id)
        pipe.execute()
        WORKER_DEAD_LETTERED.labels(group=self.group).inc()
        log.error(
            "dead-lettered %s (%s) after %d failures, %d deliveries: %s",
            entry.id,
            entry.event_type,
            entry.failures,
            entry.deliveries,
            entry.error,
        )

    # -- loop --------------------------------------------------------------------------
    def run_once(self, block_ms: int | None) -> int:
        """One iteration: the batch held over a store outage if there is one; else
        reclaim (at most every second) then read new. Returns the number of entries
        handled successfully. Raises :class:`StoreUnavailable` or a store's own error
        during an outage."""
        if self._held:
            held, self._held = self._held, []
            try:
                return self.handle(held)
            except StoreUnavailable as exc:
                self._held = exc.entries
                raise
        handled = 0
        now = time.monotonic()
        if now - self._last_reclaim >= min(1.0, self.settings.worker_reclaim_idle_ms / 1000):
            self._last_reclaim = now
            handled += self._handle_or_hold(self.reclaim())
        entries = self.read_new(block_ms)
        linger = self.linger_ms
        if block_ms is not None and linger > 0 and 0 < len(entries) < self.batch:
            # A trickle would otherwise be handled one or two entries per transaction; a
            # short wait lets the batch fill up (throughput) at a bounded latency cost.
            time.sleep(linger / 1000)
            entries += self.read_new(None)
        handled += self._handle_or_hold(entries)
        return handled

    def _handle_or_hold(self, entries: list[Entry]) -> int:
        try:
            return self.handle(entries)
        except StoreUnavailable as exc:
            self._held = exc.entries
            raise

    @property
    def held(self) -> list[Entry]:
        """The batch waiting for a store to come back (empty normally)."""
        return list(self._held)

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
        """Loop until ``stop`` is set (or, with ``burst``, until nothing is left). Store
        outages are waited out (:meth:`wait_out`); any other exception propagates."""
        backoff = Backoff.for_worker(self.settings)
        ready = False
        last_metrics = 0.0
        while not stop.is_set():
            failpoints.hit(self._failpoint)
            try:
                if not ready:
                    self.ensure_groups()
                    ready = True
                handled = self.run_once(None if burst else self.settings.worker_block_ms)
                if backoff.failures:
                    log.warning("%s: stores answer again, resuming", self.group)
                    backoff.reset()
                if burst and handled == 0:
                    if not self.retry_pending_in_burst():
                        break
                    stop.wait(0.05)  # failed entries wait for their reclaim idle time
                if time.monotonic() - last_metrics > 5:
                    last_metrics = time.monotonic()
                    self.update_lag_metrics()
            except Exception as exc:
                if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
                    # Redis restarted without its data (or a stream was deleted): the
                    # groups are gone; create them again and carry on
                    log.warning("%s: consumer group missing (%s); recreating", self.group, exc)
                    ready = False
                    continue
                if not is_store_outage(exc):
                    raise
                if burst and backoff.failures >= BURST_OUTAGE_ATTEMPTS:
                    raise  # a one-off drain must end, not wait forever
                cause = exc.__cause__ if isinstance(exc, StoreUnavailable) else exc
                if isinstance(cause, SinkUnavailable) and time.monotonic() - last_metrics > 5:
                    # a group holding its batch while its sink is down (Redis is up) still
                    # reports its lag: run_once raises until the sink answers again
                    last_metrics = time.monotonic()
                    with contextlib.suppress(Exception):  # a reading never ends the worker
                        self.update_lag_metrics()
                self.wait_out(stop, backoff, exc)

    def wait_out(self, stop: threading.Event, backoff: Backoff, exc: BaseException) -> None:
        """Back off after a store outage, keeping the held batch claimed meanwhile."""
        delay = backoff.next_delay()
        cause = exc.__cause__ if isinstance(exc, StoreUnavailable) else exc
        log.warning(
            "%s: store unavailable (%s: %s); %d entries held, retrying in %.2f s",
            self.group,
            type(cause).__name__,
            str(cause).strip().splitlines()[0] if str(cause).strip() else "",
            len(self._held),
            delay,
            exc_info=backoff.failures == 1,  # the traceback once per outage
        )
        deadline = time.monotonic() + delay
        every = self.settings.worker_reclaim_idle_ms / 3000
        while not stop.is_set():
            if self._held:
                try:
                    self.keep_claimed(self._held)
                except Exception as err:
                    if not is_store_outage(err):  # Redis down: nobody can reclaim either
                        raise
            left = deadline - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(left, every))

    def retry_pending_in_burst(self) -> bool:
        """In burst mode, keep going while failed entries wait for a retry, but only when
        the reclaim idle time is short (tests); otherwise leave them to a long-running
        worker."""
        return self.settings.worker_reclaim_idle_ms <= 1000 and self.pending() > 0
