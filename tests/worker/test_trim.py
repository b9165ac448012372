"""Stream trimming only behind the slowest consumer group (SPEC §4)."""

from __future__ import annotations

from tests.worker._support import activity_events, emit_event, run_burst, user_stream
from worker.handlers import activity
from worker.trim import safe_trim_point, trim_streams

GROUP = activity.GROUP


def ids(rds, stream):
    return [eid for eid, _ in rds.xrange(stream)]


def fill(rds, stream, n):
    pipe = rds.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, {"i": str(i)})
    return pipe.execute()


def test_fully_consumed_stream_is_trimmed_to_the_last_delivered_entry(
    settings, rds, user_id, make_consumer
):
    """Everything the only group has processed and acked is trimmed (exact MINID),
    keeping just the last delivered entry; other partition streams are untouched."""
    for _ in range(6):
        emit_event(user_id)
    stream = user_stream(settings, user_id)
    all_ids = ids(rds, stream)
    run_burst(make_consumer())

    trimmed = trim_streams(rds, settings, approximate=False)

    assert trimmed[stream] == 5
    assert ids(rds, stream) == all_ids[-1:]
    assert all(n == 0 for s, n in trimmed.items() if s != stream)


def test_pending_entries_are_kept(settings, rds, user_id, make_consumer):
    """Entries delivered but not acked (a consumer may retry them) are kept: the trim
    stops at the group's oldest pending entry; once they are acked they can go too."""
    for _ in range(6):
        emit_event(user_id)
    stream = user_stream(settings, user_id)
    all_ids = ids(rds, stream)
    consumer = make_consumer()
    entries = consumer.read_new(None)
    consumer.handle(entries[:2])  # entries 3..6 stay pending

    assert safe_trim_point(rds, stream) == all_ids[2]
    assert trim_streams(rds, settings, approximate=False)[stream] == 2
    assert ids(rds, stream) == all_ids[2:]

    consumer.handle(entries[2:])
    assert activity_events(user_id) == 6
    assert trim_streams(rds, settings, approximate=False)[stream] == 3
    assert ids(rds, stream) == all_ids[-1:]


def test_undelivered_entries_of_the_slowest_group_are_kept(settings, rds, user_id, make_consumer):
    """With two groups, entries the slower group has not read yet are kept although the
    faster group has processed them all, and the slower group can still read them."""
    for _ in range(5):
        emit_event(user_id)
    stream = user_stream(settings, user_id)
    all_ids = ids(rds, stream)
    run_burst(make_consumer())  # `activity` is done with all 5
    slow = make_consumer("s1", s=settings.with_overrides(worker_batch=2), group="slow")
    slow.ack(slow.read_new(None))  # `slow` has read and acked 2, 3 undelivered

    assert safe_trim_point(rds, stream) == all_ids[1]
    assert trim_streams(rds, settings, approximate=False)[stream] == 1
    assert ids(rds, stream) == all_ids[1:]
    assert [e.id for e in slow.read_new(None)] == all_ids[2:4]


def test_group_that_has_not_started_keeps_the_whole_stream(settings, rds, user_id, make_consumer):
    """A stream with no group yet is not trimmed, nor is one where any group has
    delivered nothing, however far the other groups are."""
    for _ in range(3):
        emit_event(user_id)
    stream = user_stream(settings, user_id)
    assert trim_streams(rds, settings, approximate=False) == {}  # no group at all

    run_burst(make_consumer())  # `activity` has consumed everything
    rds.xgroup_create(stream, "late", id="0")  # a new group that has read nothing
    assert trim_streams(rds, settings, approximate=False).get(stream, 0) == 0
    assert rds.xlen(stream) == 3


def test_default_approximate_trim_never_drops_needed_entries(settings, rds, make_consumer):
    """The default (MINID ~) trims whole nodes of a long stream behind the group but
    never an entry at or after the safe point: pending and undelivered entries stay."""
    stream = user_stream(settings, 1)
    all_ids = fill(rds, stream, 1000)
    consumer = make_consumer()
    consumer.redis.xreadgroup(GROUP, "c1", {stream: ">"}, count=700)
    consumer.redis.xack(stream, GROUP, *all_ids[:600])  # 600..699 pending, 700.. unread

    trimmed = trim_streams(rds, settings)[stream]

    left = ids(rds, stream)
    assert 0 < trimmed <= 600
    assert left == all_ids[1000 - len(left) :]  # only a prefix was removed
    assert set(all_ids[600:]) <= set(left)


def test_group_that_acks_everything_between_xinfo_and_xpending_is_handled(
    settings, rds, user_id, make_consumer
):
    """A group reported with pending entries by XINFO may ack them all before XPENDING
    runs (its summary then has no oldest id): the trim point falls back to the group's
    last-delivered id instead of failing. Real Redis; only the interleaving is forced."""
    for _ in range(3):
        emit_event(user_id)
    stream = user_stream(settings, user_id)
    all_ids = ids(rds, stream)
    consumer = make_consumer()
    entries = consumer.read_new(None)  # all three delivered, pending

    class AcksFirst(type(rds)):  # type: ignore[misc]
        def xpending(self, name, groupname):  # type: ignore[no-untyped-def]
            consumer.handle(entries)  # the consumer finishes in between
            return super().xpending(name, groupname)

    racing = AcksFirst(connection_pool=rds.connection_pool)
    assert safe_trim_point(racing, stream) == all_ids[-1]
    assert activity_events(user_id) == 3
