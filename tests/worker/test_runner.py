"""GroupConsumer against a real Redis: groups, acks, reclaim, dead-letter, metrics."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from ccweb import events
from ccweb.events import all_stream_keys, stream_key
from tests.factories import create_user
from tests.worker._support import (
    activity_events,
    emit_event,
    group_info,
    metric,
    pending_total,
    run_burst,
    step_until,
    user_stream,
)
from worker.handlers import activity
from worker.runner import dlq_key, ensure_group, errors_key, failures_key

GROUP = activity.GROUP


def add_poison(rds: redis.Redis, stream: str, user_id: int) -> tuple[str, str]:
    """Append an entry whose `data` is not JSON; returns (entry id, event id)."""
    event_id = str(uuid.uuid4())
    entry_id = rds.xadd(
        stream,
        {
            "event_id": event_id,
            "event_type": events.GAME_ROUND,
            "user_id": str(user_id),
            "data": "{not json",
        },
    )
    return str(entry_id), event_id


def test_ensure_groups_is_idempotent(settings, rds, make_consumer):
    """Creating the consumer groups twice (two workers starting) is fine: BUSYGROUP is
    tolerated and each partition stream ends up with exactly one `activity` group,
    positioned at the start of the stream."""
    consumer = make_consumer()
    consumer.ensure_groups()
    make_consumer("c2").ensure_groups()
    for stream in all_stream_keys(settings):
        groups = rds.xinfo_groups(stream)
        assert [g["name"] for g in groups] == [GROUP]
        assert groups[0]["last-delivered-id"] == "0-0"


def test_ensure_group_does_not_swallow_other_errors(settings, rds):
    """Only BUSYGROUP is tolerated: a real error (the key is not a stream) surfaces."""
    key = stream_key(0, settings)
    rds.set(key, "not a stream")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        ensure_group(rds, key, GROUP)


def test_burst_run_drains_every_batch_and_acks_it(settings, rds, user_id, make_consumer):
    """A burst run keeps reading until nothing is left (5 entries, batches of 2), hands
    every entry to the handler, acks them all (nothing pending, no lag) and increments
    cc_worker_processed_total by the number handled."""
    for _ in range(5):
        emit_event(user_id)
    before = metric("cc_worker_processed_total", group=GROUP)

    run_burst(make_consumer(s=settings.with_overrides(worker_batch=2)))

    assert activity_events(user_id) == 5
    assert pending_total(rds, settings) == 0
    assert group_info(rds, user_stream(settings, user_id))["lag"] == 0
    assert metric("cc_worker_processed_total", group=GROUP) == before + 5


def test_poison_entry_is_retried_then_dead_lettered_without_blocking_the_batch(
    settings, rds, user_id, fast_settings, make_consumer
):
    """A non-JSON entry in the middle of good ones (same partition): the good ones are
    processed and acked; the poison one fails on each of its 5 deliveries, then lands in
    `<prefix>:dlq` with its error text, failure and delivery counts and raw data, and is
    no longer pending. Failure/processed/dead-letter counters move accordingly."""
    stream = user_stream(settings, user_id)
    emit_event(user_id)
    emit_event(user_id)
    poison_id, poison_event = add_poison(rds, stream, user_id)
    emit_event(user_id)
    emit_event(user_id)
    processed = metric("cc_worker_processed_total", group=GROUP)
    failures = metric("cc_worker_failures_total", group=GROUP)
    dead = metric("cc_worker_dead_lettered_total", group=GROUP)

    run_burst(make_consumer(s=fast_settings))

    assert activity_events(user_id) == 4
    dlq = rds.xrange(dlq_key(settings))
    assert len(dlq) == 1
    fields = dlq[0][1]
    assert fields["group"] == GROUP
    assert fields["stream"] == stream
    assert fields["entry_id"] == poison_id
    assert fields["event_id"] == poison_event
    assert fields["failures"] == str(settings.worker_max_deliveries) == "5"
    assert fields["deliveries"] == "5"  # read once, then reclaimed after each failure
    assert fields["error"].startswith("JSONDecodeError")
    assert fields["data"] == "{not json"
    assert pending_total(rds, settings) == 0
    assert not rds.exists(errors_key(settings, GROUP))  # no stale error bookkeeping
    assert not rds.exists(failures_key(settings, GROUP))
    assert metric("cc_worker_processed_total", group=GROUP) == processed + 4
    assert metric("cc_worker_failures_total", group=GROUP) == failures + 5
    assert metric("cc_worker_dead_lettered_total", group=GROUP) == dead + 1


def test_pending_poison_entry_does_not_block_later_entries(
    settings, rds, user_id, fast_settings, make_consumer
):
    """While a poison entry is still pending (being retried), new entries in the same
    partition are read and processed; after it is dead-lettered, later ones still are."""
    stream = user_stream(settings, user_id)
    consumer = make_consumer(s=fast_settings)
    emit_event(user_id)
    poison_id, _ = add_poison(rds, stream, user_id)

    assert consumer.run_once(None) == 1
    assert rds.xpending(stream, GROUP)["pending"] == 1
    assert rds.hget(errors_key(settings, GROUP), poison_id).startswith("JSONDecodeError")

    emit_event(user_id)
    step_until(consumer, lambda: activity_events(user_id) == 2)
    assert rds.xpending(stream, GROUP)["pending"] == 1  # still retrying the poison
    assert rds.xlen(dlq_key(settings)) == 0

    step_until(
        consumer,
        lambda: rds.xlen(dlq_key(settings)) == 1,
        what="the poison entry to be dead-lettered",
    )
    emit_event(user_id)
    assert consumer.run_once(None) == 1
    assert activity_events(user_id) == 3
    assert pending_total(rds, settings) == 0


def test_dead_consumers_entries_are_reclaimed_after_the_idle_threshold(
    settings, rds, user_id, fast_settings, make_consumer
):
    """Consumer A reads two entries and dies without acking. Consumer B does not take
    them while they are younger than the idle threshold (30 s by default), but with a
    short threshold it reclaims (XAUTOCLAIM) and processes them; nothing stays pending
    with A, and cc_worker_reclaimed_total moves."""
    emit_event(user_id)
    emit_event(user_id)
    stream = user_stream(settings, user_id)
    a = make_consumer("A")
    assert len(a.read_new(None)) == 2  # delivered to A, never acked
    assert rds.xpending(stream, GROUP)["consumers"] == [{"name": "A", "pending": 2}]

    assert make_consumer("B").reclaim() == []  # default 30 s idle: too early
    reclaimed = metric("cc_worker_reclaimed_total", group=GROUP)
    b = make_consumer("B", s=fast_settings)
    step_until(b, lambda: activity_events(user_id) == 2)

    assert pending_total(rds, settings) == 0
    assert rds.xpending(stream, GROUP)["consumers"] == []
    assert metric("cc_worker_reclaimed_total", group=GROUP) == reclaimed + 2


def test_reclaimed_entry_already_handled_is_not_counted_twice(
    settings, rds, user_id, fast_settings, make_consumer
):
    """Consumer A handles an entry (its transaction commits) but dies before XACK. B
    reclaims and handles it again; the processed_events dedupe keeps the count at 1 and
    the entry is acked."""
    emit_event(user_id)
    a = make_consumer("A")
    entries = a.read_new(None)
    activity.handle(entries)  # committed, but A dies before acking
    assert activity_events(user_id) == 1
    assert pending_total(rds, settings) == 1

    b = make_consumer("B", s=fast_settings)
    step_until(b, lambda: pending_total(rds, settings) == 0)
    assert activity_events(user_id) == 1


def test_entry_whose_consumers_keep_dying_is_dead_lettered_on_reclaim(
    settings, rds, user_id, fast_settings, make_consumer
):
    """An entry that crashed its consumer on every delivery (never failed cleanly, so no
    error recorded) is not handed to the handler a sixth time: the reclaim that would
    deliver it again moves it to the dead-letter stream instead."""
    env = emit_event(user_id)
    stream = user_stream(settings, user_id)
    make_consumer("A").read_new(None)  # delivery 1, then A dies
    for _ in range(settings.worker_max_deliveries - 1):  # deliveries 2..5, each dies
        rds.xautoclaim(stream, GROUP, "crashing", min_idle_time=0, start_id="0-0")

    seen: list[str] = []

    def handler(entries):
        seen.extend(e.event_id for e in entries)
        activity.handle(entries)

    b = make_consumer("B", s=fast_settings, handler=handler)
    step_until(
        b,
        lambda: rds.xlen(dlq_key(settings)) == 1,
        what="dead-letter on reclaim",
    )
    assert seen == []
    fields = rds.xrange(dlq_key(settings))[0][1]
    assert fields["event_id"] == env["event_id"]
    assert int(fields["deliveries"]) > settings.worker_max_deliveries
    assert fields["failures"] == "0"
    assert fields["error"].startswith("5 deliveries ended without a result")
    assert pending_total(rds, settings) == 0
    assert activity_events(user_id) == 0


def test_lag_and_pending_gauges_reflect_the_streams(settings, rds, user_id, make_consumer):
    """update_lag_metrics sets cc_worker_lag (entries not yet delivered, per stream) and
    cc_worker_pending (delivered, not acked) to what Redis reports at each stage:
    3 undelivered → 3 read but unacked → all acked."""
    consumer = make_consumer()
    for _ in range(3):
        emit_event(user_id)
    stream = user_stream(settings, user_id)
    others = [s for s in all_stream_keys(settings) if s != stream]

    def gauges():
        consumer.update_lag_metrics()
        return (
            metric("cc_worker_lag", group=GROUP, stream=stream),
            metric("cc_worker_pending", group=GROUP),
        )

    assert gauges() == (3, 0)
    assert all(metric("cc_worker_lag", group=GROUP, stream=s) == 0 for s in others)
    entries = consumer.read_new(None)
    assert gauges() == (0, 3)
    consumer.handle(entries)
    assert gauges() == (0, 0)


def test_run_stops_after_finishing_the_current_batch(settings, rds, user_id, make_consumer):
    """Graceful stop: when the stop flag is set (as the SIGTERM handler does) while a
    batch is being handled, run() finishes and acks that batch, then returns without
    reading the next one."""
    s = settings.with_overrides(worker_batch=2)
    for _ in range(5):
        emit_event(user_id)
    stop = threading.Event()
    batches: list[int] = []

    def handler(entries):
        stop.set()  # "SIGTERM" arrives mid-batch
        batches.append(len(entries))
        activity.handle(entries)

    consumer = make_consumer(s=s, handler=handler)
    t = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive()

    assert batches == [2]
    assert activity_events(user_id) == 2
    assert pending_total(rds, settings) == 0  # the finished batch was acked
    assert group_info(rds, user_stream(settings, user_id))["lag"] == 3  # rest untouched


def test_consumer_reads_every_partition(settings, rds, make_consumer):
    """One GroupConsumer serves all partition streams: events of users spread over
    several partitions are all processed by a single burst run."""
    users = [create_user()["id"] for _ in range(8)]
    assert len({user_stream(settings, u) for u in users}) > 1
    for u in users:
        emit_event(u)
    run_burst(make_consumer())
    assert [activity_events(u) for u in users] == [1] * 8
    assert pending_total(rds, settings) == 0


def test_consumers_of_one_group_share_the_work(settings, rds, user_id, make_consumer):
    """Two consumers in the same group split the entries: one delivered to A is not
    delivered to B (XREADGROUP '>'), so running two workers does not double-process."""
    emit_event(user_id)
    a, b = make_consumer("A"), make_consumer("B")
    assert len(a.read_new(None)) == 1
    assert b.read_new(None) == []
