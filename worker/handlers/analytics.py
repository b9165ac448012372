"""``analytics`` group: every stream entry → ``events_raw`` in ClickHouse (SPEC §4).

One ``handle()`` call is one INSERT (split only so that no INSERT exceeds 1 MB), and it
returns only after ClickHouse accepted every row, so the runner acks exactly what
ClickHouse holds. The runner reads up to :data:`BATCH` entries and lingers
:data:`LINGER_MS` for a batch to fill, which gives the SPEC's flush rule: at 5 000 rows,
1 MB or about a second, whichever comes first.

Exactly once *in effect*: a batch may reach ClickHouse twice (the worker died after the
INSERT and before the ack, a reclaim raced a slow consumer, the second 1 MB half of a
batch failed after the first was accepted). That is harmless by design: events_raw
collapses copies of an event (ReplacingMergeTree keyed by event_id) and the
materialized views keep only replay-proof states (migration 0002 explains why the
ingester does not look up event_ids before inserting).

Failures:

- ClickHouse unreachable, timing out, overloaded, read-only or not migrated →
  :class:`worker.outage.SinkUnavailable` raised from the client's error: the runner
  holds the batch and backs off, nothing is acked or dead-lettered, and the backlog
  waits in the stream until ClickHouse returns.
- An envelope that cannot become a row (not JSON, missing fields, numbers out of range)
  → ``ValueError``: the entry's fault. The rest of the batch is inserted first and
  remembered, and the ``ValueError`` makes the runner retry the entries one by one: the
  remembered ones return at once (their rows are in ClickHouse), so one bad entry costs
  no flood of one-row INSERTs, and the bad one fails alone until it is dead-lettered.
- ClickHouse refusing the rows for their content → the client's error, the entries'
  fault (retried one by one).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

from ccweb.analytics import clickhouse, ingest
from ccweb.analytics.metrics import (
    CH_INGEST_LAG_SECONDS,
    CH_INSERT_BATCH_SIZE,
    CH_INSERT_FAIL,
    CH_INSERT_LATENCY_MS,
)
from ccweb.config import get_settings
from worker.entries import Entry
from worker.outage import SinkUnavailable

GROUP = "analytics"
BATCH = 5000  # entries per read (worker/handlers/__init__.py BATCH[GROUP])
LINGER_MS = 1000  # wait for a batch to fill (worker/handlers/__init__.py LINGER_MS[GROUP])

# Entries whose rows ClickHouse accepted in a batch that then failed because of another
# entry (module docstring); popped when the runner hands them back one by one.
_accepted: OrderedDict[tuple[str, str], None] = OrderedDict()
_accepted_lock = threading.Lock()
_ACCEPTED_MAX = 4 * BATCH


def _remember(entries: Sequence[Entry]) -> None:
    with _accepted_lock:
        for e in entries:
            _accepted[(e.stream, e.id)] = None
        while len(_accepted) > _ACCEPTED_MAX:
            _accepted.popitem(last=False)


def _already_accepted(entry: Entry) -> bool:
    with _accepted_lock:
        try:
            del _accepted[(entry.stream, entry.id)]
        except KeyError:
            return False
        return True


def insert(rows: list[ingest.Row]) -> None:
    """INSERT ``rows`` into events_raw in chunks of at most 1 MB; returns once all were
    accepted. Raises :class:`SinkUnavailable` when ClickHouse cannot take them."""
    try:
        pool = clickhouse.pool()
    except ValueError as exc:  # CLICKHOUSE_URL empty: nothing can take the batch
        CH_INSERT_FAIL.labels("unavailable").inc()
        raise SinkUnavailable("ClickHouse is not configured") from exc
    for chunk in ingest.chunks(rows):
        started = time.perf_counter()
        try:
            with pool.client() as client:
                client.execute(ingest.INSERT_SQL, chunk)
        except Exception as exc:
            if clickhouse.is_outage(exc):
                CH_INSERT_FAIL.labels("unavailable").inc()
                raise SinkUnavailable(f"ClickHouse insert failed: {exc}") from exc
            CH_INSERT_FAIL.labels("rejected").inc()
            raise
        CH_INSERT_LATENCY_MS.observe((time.perf_counter() - started) * 1000)
        CH_INSERT_BATCH_SIZE.observe(len(chunk))
        now = time.time()
        for r in chunk:
            CH_INGEST_LAG_SECONDS.observe(max(0.0, now - ingest.event_time(r)))


def handle(entries: Sequence[Entry]) -> None:
    if len(entries) == 1 and _already_accepted(entries[0]):
        return
    if not get_settings().clickhouse_url:
        raise SinkUnavailable("ClickHouse is not configured (CLICKHOUSE_URL is empty)")
    rows: list[ingest.Row] = []
    good: list[Entry] = []
    bad: list[tuple[Entry, Exception]] = []
    for e in entries:
        try:
            rows.extend(ingest.rows_of(e.envelope))
        except (ValueError, KeyError, TypeError) as exc:
            bad.append((e, exc))
            continue
        good.append(e)
    if rows:
        insert(rows)
    if bad:
        if len(entries) == 1:
            CH_INSERT_FAIL.labels("malformed").inc()
        else:
            _remember(good)
        first, cause = bad[0]
        raise ValueError(
            f"{len(bad)} malformed envelope(s); first {first.id}: {type(cause).__name__}: {cause}"
        ) from cause
