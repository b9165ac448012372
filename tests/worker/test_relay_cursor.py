"""The relay's cursor over (txid, id): a transaction that commits late is never skipped,
rows are never rewritten, and published rows are pruned after the retention period."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from ccweb import events
from ccweb.db import in_transaction, session_factory
from ccweb.effects import emit
from ccweb.outbox.relay import pending_count, prune, relay_once
from tests.factories import create_user
from tests.worker._support import all_entries, outbox_rows, relay_exactly


def test_a_late_committing_transaction_is_not_skipped(rds, settings, fast_path_off):
    """A writes first but commits last; B commits in between. While A is open nothing
    past it is published (its place in the order is unknown); once A commits, both are
    published in (txid, id) order, each exactly once."""
    a_user, b_user = create_user()["id"], create_user()["id"]
    slow = session_factory()()
    try:
        emit(slow, events.ACHIEVEMENT_UNLOCKED, a_user, {"which": "A"})  # xid assigned
        in_transaction(lambda s: emit(s, events.ACHIEVEMENT_UNLOCKED, b_user, {"which": "B"}))
        assert relay_once(rds, settings, grace_s=0) == 0
        assert all_entries(rds, settings) == []
        assert pending_count() == 1  # B is committed but not yet behind the cursor
        slow.commit()
    finally:
        slow.close()
    relay_exactly(rds, settings, 2, grace_s=0)
    published = [fields["data"] for _, _, fields in all_entries(rds, settings)]
    assert sorted('"which": "A"' in d for d in published) == [False, True]
    assert all(r["published"] for r in outbox_rows()) and pending_count() == 0
    assert relay_once(rds, settings, grace_s=0) == 0  # nothing twice


def test_an_earlier_transaction_is_published_while_a_later_one_is_open(
    rds, settings, fast_path_off
):
    """B got its transaction id before A: B is published while A is still open."""
    a_user, b_user = create_user()["id"], create_user()["id"]
    early = session_factory()()
    slow = session_factory()()
    try:
        emit(early, events.ACHIEVEMENT_UNLOCKED, b_user, {"which": "B"})
        emit(slow, events.ACHIEVEMENT_UNLOCKED, a_user, {"which": "A"})
        early.commit()
        relay_exactly(rds, settings, 1, grace_s=0)
        slow.commit()
        relay_exactly(rds, settings, 1, grace_s=0)
    finally:
        early.close()
        slow.close()
    assert len(all_entries(rds, settings)) == 2


def test_prune_deletes_only_published_rows_older_than_retention(rds, settings, fast_path_off):
    uid = create_user()["id"]
    for _ in range(3):
        in_transaction(lambda s: emit(s, events.ACHIEVEMENT_UNLOCKED, uid, {}))
    assert relay_exactly(rds, settings, 2, grace_s=0, limit=2) == [2]  # two behind the cursor
    in_transaction(
        lambda s: s.execute(text("UPDATE outbox SET created_at = created_at - interval '2 days'"))
    )
    assert prune(timedelta(hours=24)) == 2
    rows = outbox_rows()
    assert len(rows) == 1 and not rows[0]["published"]
    assert prune(timedelta(hours=24)) == 0


def test_prune_drains_more_than_one_batch_per_call(rds, settings, fast_path_off):
    """A sustained write rate produces more old rows per minute than one batch: a call
    keeps deleting batches until nothing old is left."""
    uid = create_user()["id"]
    for _ in range(7):
        in_transaction(lambda s: emit(s, events.ACHIEVEMENT_UNLOCKED, uid, {}))
    relay_exactly(rds, settings, 7, grace_s=0)
    in_transaction(
        lambda s: s.execute(text("UPDATE outbox SET created_at = created_at - interval '2 days'"))
    )
    assert prune(timedelta(hours=24), batch=2) == 7
    assert outbox_rows() == []


def test_processed_event_records_are_forgotten_after_their_retention():
    from worker.dedupe import claim_new, prune_processed

    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    in_transaction(lambda s: claim_new(s, "activity", [old, recent]))
    in_transaction(
        lambda s: s.execute(
            text(
                "UPDATE processed_events SET processed_at = now() - interval '3 days'"
                " WHERE event_id = :e"
            ),
            {"e": old},
        )
    )
    assert prune_processed(timedelta(hours=48), batch=1) == 1
    left = in_transaction(
        lambda s: [r[0] for r in s.execute(text("SELECT event_id::text FROM processed_events"))]
    )
    assert left == [recent]
    # a redelivery of the recent one is still recognised; the forgotten one would count
    assert in_transaction(lambda s: claim_new(s, "activity", [recent])) == set()
