"""Exactly-once downstream delivery when the relay dies between XADD and marking."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from ccweb.outbox.publisher import Publisher
from ccweb.outbox.relay import relay_once
from tests.processes import ROOT, wait_for, worker_cmd
from tests.worker._support import (
    activity_events,
    emit_event,
    outbox_rows,
    pending_total,
    processed_ids,
    run_burst,
    stream_entries,
    user_stream,
)

# A real relay process that SIGKILLs itself after the XADD and before the UPDATE that
# marks the rows published: the worst moment for exactly-once delivery.
KILLED_RELAY = textwrap.dedent(
    """
    import os, signal
    from ccweb.config import Settings, set_settings
    from ccweb.outbox.relay import relay_once
    from ccweb.redis_client import get_redis

    settings = Settings.from_env()
    set_settings(settings)
    relay_once(
        get_redis(settings),
        settings,
        grace_s=0,
        after_publish=lambda: os.kill(os.getpid(), signal.SIGKILL),
    )
    print("not killed")
    """
)


def test_relay_killed_between_publish_and_mark_delivers_exactly_once(
    settings, rds, subprocess_env, user_id, fast_path_off
):
    """Commit an event with the fast path dead; a real relay process publishes it and is
    SIGKILLed before marking. The row stays unpublished (its transaction died with the
    process) though the entry is on the stream. A restarted relay marks the row without
    a second XADD, and a real `python -m worker --burst` counts the event once."""
    env = emit_event(user_id)
    stream = user_stream(settings, user_id)

    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RELAY],
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "not killed" not in proc.stdout

    # killed after XADD, before the UPDATE: on the stream, not marked
    assert [f["event_id"] for _, f in stream_entries(rds, stream)] == [env["event_id"]]
    rows = outbox_rows()
    assert len(rows) == 1 and not rows[0]["published"]

    # restart the relay; the dead backend may hold its row lock (SKIP LOCKED) for a
    # moment after the kill, so poll until the row is picked up
    wait_for(lambda: relay_once(rds, settings, grace_s=0) == 1, what="relay to pick the row")
    assert outbox_rows()[0]["published"]
    entries = stream_entries(rds, stream)
    assert [f["event_id"] for _, f in entries] == [env["event_id"]]
    assert relay_once(rds, settings, grace_s=0) == 0

    worker = subprocess.run(
        worker_cmd("--burst"),
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    assert activity_events(user_id) == 1
    assert processed_ids() == [env["event_id"]]
    assert pending_total(rds, settings) == 0


def test_event_published_twice_past_dedupe_memory_counts_once(
    settings, rds, user_id, make_consumer
):
    """If the same event reaches the stream twice (published again after the
    publisher's `seen:<id>` memory expired), the activity consumer still counts it once
    and acks both copies: it dedupes by event id in processed_events. Covers both
    copies in one batch and the second copy arriving after the first was processed."""
    env = emit_event(user_id)  # fast path: published, `seen:` key set
    stream = user_stream(settings, user_id)
    publisher = Publisher(rds, settings)

    assert publisher.publish_envelopes([env], path="relay") == [False]  # remembered
    rds.delete(f"{stream}:seen:{env['event_id']}")  # the dedupe memory expires
    assert publisher.publish_envelopes([env], path="relay") == [True]
    assert [f["event_id"] for _, f in stream_entries(rds, stream)] == [env["event_id"]] * 2

    consumer = make_consumer()
    run_burst(consumer)  # both copies in one batch
    assert activity_events(user_id) == 1
    assert processed_ids() == [env["event_id"]]
    assert pending_total(rds, settings) == 0

    rds.delete(f"{stream}:seen:{env['event_id']}")
    assert publisher.publish_envelopes([env], path="relay") == [True]  # third copy, later
    run_burst(consumer)
    assert len(stream_entries(rds, stream)) == 3
    assert activity_events(user_id) == 1
    assert pending_total(rds, settings) == 0
