"""Transactional outbox: emit() in the domain transaction, fast path, relay (SPEC §4)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from ccweb import events
from ccweb.db import RetryTransaction, in_transaction, unit_of_work
from ccweb.effects import emit
from ccweb.events import partition_of, stream_key
from ccweb.outbox.relay import pending_count, relay_once
from tests.factories import create_user
from tests.worker._support import (
    all_entries,
    emit_event,
    metric,
    outbox_rows,
    relay_exactly,
    stream_entries,
    user_stream,
)

ENVELOPE_KEYS = {
    "schema_version",
    "event_id",
    "event_type",
    "user_id",
    "ts",
    "trace_id",
    "source",
    "payload",
    "dedupe_key",
}


def test_emit_in_committed_unit_of_work_writes_row_and_one_stream_entry(settings, rds, user_id):
    """A committed emit() leaves exactly one outbox row carrying the full SPEC §4
    envelope, and the fast path appends exactly one entry to the user's partition
    stream (and to no other partition) whose data is that same envelope."""
    with unit_of_work() as session:
        env = emit(
            session, events.GAME_ROUND, user_id, {"bet": 10}, trace_id="trace-1", dedupe_key="k1"
        )

    rows = outbox_rows()
    assert len(rows) == 1
    row = rows[0]
    envelope = row["envelope"]
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope == env
    assert envelope["schema_version"] == 1
    assert str(uuid.UUID(envelope["event_id"])) == envelope["event_id"] == row["event_id"]
    assert envelope["event_type"] == row["event_type"] == events.GAME_ROUND
    assert envelope["user_id"] == row["user_id"] == user_id
    assert envelope["ts"].endswith("Z")
    datetime.fromisoformat(envelope["ts"].replace("Z", "+00:00"))
    assert envelope["trace_id"] == "trace-1"
    assert envelope["dedupe_key"] == "k1"
    assert envelope["source"] == {"service": "ccweb", "host": settings.hostname}
    assert envelope["payload"] == {"bet": 10}
    assert row["partition"] == partition_of(user_id, settings)
    assert not row["published"]  # the fast path publishes; the relay marks

    entries = all_entries(rds, settings)
    assert len(entries) == 1
    stream, _, fields = entries[0]
    assert stream == stream_key(partition_of(user_id, settings), settings)
    assert fields["event_id"] == env["event_id"]
    assert fields["event_type"] == events.GAME_ROUND
    assert fields["user_id"] == str(user_id)
    assert json.loads(fields["data"]) == env


def test_envelope_defaults_trace_and_dedupe_key_to_event_id(user_id):
    """Without an explicit trace id / dedupe key both default to the event id, so every
    envelope has non-empty values for them."""
    env = emit_event(user_id)
    assert env["trace_id"] == env["event_id"] == env["dedupe_key"]


def test_rolled_back_unit_of_work_leaves_no_row_and_no_stream_entry(settings, rds, user_id):
    """If the domain transaction fails after emit(), the outbox row and the publish
    vanish together: no row, no stream entry, nothing for the relay to find."""
    with pytest.raises(RuntimeError), unit_of_work() as session:
        emit(session, events.GAME_ROUND, user_id, {"bet": 10})
        raise RuntimeError("domain failure after emit")

    assert outbox_rows() == []
    assert all_entries(rds, settings) == []
    assert relay_once(rds, settings, grace_s=0) == 0
    assert all_entries(rds, settings) == []


def test_retried_transaction_publishes_only_the_committed_attempt(settings, rds, user_id):
    """in_transaction retries: the first attempt emits then asks for a retry, the
    second commits. Only the committed attempt's event reaches the outbox and the
    stream; the rolled-back attempt's after-commit publish is dropped."""
    attempts: list[str] = []

    def tx(session):
        env = emit(session, events.GAME_ROUND, user_id, {"attempt": len(attempts)})
        attempts.append(env["event_id"])
        if len(attempts) == 1:
            raise RetryTransaction()
        return env

    env = in_transaction(tx)
    assert len(attempts) == 2
    assert [r["event_id"] for r in outbox_rows()] == [env["event_id"]]
    assert [f["event_id"] for _, _, f in all_entries(rds, settings)] == [env["event_id"]]


def test_relay_publishes_what_the_fast_path_missed_exactly_once(
    settings, rds, user_id, fast_path_off
):
    """With the fast path dead, nothing reaches the stream at commit; relay_once
    publishes the row (one entry), moves the cursor past it, and a second relay_once
    publishes nothing new."""
    env = emit_event(user_id)
    assert all_entries(rds, settings) == []
    assert pending_count() == 1

    relay_exactly(rds, settings, 1, grace_s=0)
    entries = stream_entries(rds, user_stream(settings, user_id))
    assert [f["event_id"] for _, f in entries] == [env["event_id"]]
    assert json.loads(entries[0][1]["data"]) == env
    assert outbox_rows()[0]["published"]
    assert pending_count() == 0

    assert relay_once(rds, settings, grace_s=0) == 0
    assert len(all_entries(rds, settings)) == 1


def test_relay_leaves_rows_younger_than_the_grace_period(settings, rds, user_id, fast_path_off):
    """Rows younger than the grace period are left to the fast path: a relay with a
    60 s grace neither publishes nor marks a fresh row."""
    emit_event(user_id)
    assert relay_once(rds, settings, grace_s=60) == 0
    assert all_entries(rds, settings) == []
    assert not outbox_rows()[0]["published"]


def test_relay_after_fast_path_marks_without_duplicating(settings, rds, user_id):
    """The normal production sequence: the fast path published at commit, later the
    relay sees the unmarked row. It marks it but the Lua dedupe prevents a second
    stream entry (counted as a 'duplicate' publish)."""
    env = emit_event(user_id)
    before = metric("cc_outbox_published_total", path="relay", result="duplicate")

    relay_exactly(rds, settings, 1, grace_s=0)
    assert [f["event_id"] for _, _, f in all_entries(rds, settings)] == [env["event_id"]]
    assert outbox_rows()[0]["published"]
    assert metric("cc_outbox_published_total", path="relay", result="duplicate") == before + 1


def test_relay_publishes_in_outbox_id_order_across_batches(settings, rds, fast_path_off):
    """Several events per user, interleaved between two users, relayed in batches of
    two: each partition stream holds that user's events in outbox id (commit) order,
    and every row ends up marked."""
    users = [create_user()["id"] for _ in range(2)]
    emitted: dict[int, list[str]] = {u: [] for u in users}
    for i in range(5):
        for u in users:
            emitted[u].append(emit_event(u, events.GAME_ROUND, seq=i)["event_id"])

    batches = relay_exactly(rds, settings, 10, grace_s=0, limit=2)
    assert max(batches) == 2  # 10 rows, at most 2 per batch

    ids_in_order = [r["event_id"] for r in outbox_rows()]
    for u in users:
        on_stream = [
            f["event_id"]
            for _, f in stream_entries(rds, user_stream(settings, u))
            if f["user_id"] == str(u)
        ]
        assert on_stream == emitted[u]
        assert on_stream == [e for e in ids_in_order if e in set(emitted[u])]
    entries = all_entries(rds, settings)
    assert len(entries) == 10
    for stream in {s for s, _, _ in entries}:  # whole partitions follow commit order too
        on_stream = [f["event_id"] for s, _, f in entries if s == stream]
        assert on_stream == [e for e in ids_in_order if e in set(on_stream)]
    assert all(r["published"] for r in outbox_rows())
    assert pending_count() == 0


def test_fast_path_survives_redis_forgetting_its_scripts(settings, rds, user_id):
    """After a Redis restart (or SCRIPT FLUSH) the fast path must still publish at once,
    not leave every event to the relay for the rest of the process's life."""
    with unit_of_work() as session:
        emit(session, events.GAME_ROUND, user_id, {"bet": 1})
    assert len(all_entries(rds, settings)) == 1
    rds.script_flush()
    for bet in (2, 3):
        with unit_of_work() as session:
            emit(session, events.GAME_ROUND, user_id, {"bet": bet})
    payloads = [json.loads(f["data"])["payload"] for _, _, f in all_entries(rds, settings)]
    assert payloads == [{"bet": 1}, {"bet": 2}, {"bet": 3}]


def test_relay_survives_redis_forgetting_its_scripts(settings, rds, user_id, fast_path_off):
    env = emit_event(user_id)
    rds.script_flush()
    relay_exactly(rds, settings, 1, grace_s=0)
    entries = stream_entries(rds, user_stream(settings, user_id))
    assert [f["event_id"] for _, f in entries] == [env["event_id"]]
