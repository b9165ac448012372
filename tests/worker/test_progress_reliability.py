"""Reliability of the ``progress`` group with real processes, Redis and PostgreSQL:
a worker SIGKILLed in the middle of a batch (before its commit, and after its commit
but before XACK) loses nothing and counts nothing twice once a new worker takes over;
a poison entry is dead-lettered with its error without blocking the others."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import text

from ccweb import events
from ccweb.db import in_transaction
from ccweb.outbox.publisher import Publisher
from tests.factories import create_event, create_user
from tests.processes import ROOT, worker_cmd
from tests.worker._support import (
    emit_event,
    pending_total,
    progress_consumer,
    run_burst,
)

N_EVENTS = 40

# A real worker process whose progress handler dies at the chosen point of its 2nd
# batch: "before_commit" (progress computed and written, transaction not committed) or
# "before_ack" (committed, XACK not sent).
KILLED_WORKER = textwrap.dedent(
    """
    import os, signal, sys, threading
    from ccweb.config import Settings, set_settings
    from ccweb.liveops import progress as domain
    from ccweb.redis_client import get_redis
    from worker.handlers import progress
    from worker.runner import GroupConsumer

    point = sys.argv[1]
    settings = Settings.from_env().with_overrides(worker_batch=10, worker_linger_ms=0)
    set_settings(settings)
    batches = {"n": 0}
    original_apply = domain.apply_facts

    def apply_then_die(session, facts):
        result = original_apply(session, facts)
        if point == "before_commit" and batches["n"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    progress.apply_facts = apply_then_die

    def handler(entries):
        progress.handle(entries)
        batches["n"] += 1
        if point == "before_ack" and batches["n"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    consumer = GroupConsumer(get_redis(settings), settings, "progress", handler, "doomed")
    consumer.ensure_groups()
    consumer.run(threading.Event(), burst=True)
    print("not killed")
    """
)


def plays(user_id: int, event_id: int) -> int:
    return in_transaction(
        lambda s: s.execute(
            text(
                "SELECT progress[1] FROM event_participations WHERE user_id = :u AND event_id = :e"
            ),
            {"u": user_id, "e": event_id},
        ).scalar_one()
    )


def joined_player() -> tuple[int, int]:
    from datetime import UTC, datetime

    from ccweb.liveops.service import participate

    uid = create_user()["id"]
    eid = create_event([{"type": "plays", "target": 1_000_000}])
    in_transaction(lambda s: participate(s, uid, eid, datetime.now(UTC)))
    return uid, eid


def publish_rounds(user_id: int, n: int) -> None:
    for i in range(n):
        emit_event(
            user_id,
            events.GAME_ROUND,
            round_id=i + 1,
            game_type="slot",
            bet=10,
            payout=0,
            gold_delta=-10,
            outcome="lose",
            session_id=None,
        )


@pytest.mark.parametrize("point", ["before_commit", "before_ack"])
def test_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(
    settings, rds, subprocess_env, point
):
    uid, eid = joined_player()
    publish_rounds(uid, N_EVENTS)

    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER, point],
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "not killed" not in proc.stdout
    committed = plays(uid, eid)
    # batches of 10, the first one led by the event.participate entry of the join:
    # killed in the 2nd batch before its commit → only the 1st batch's 9 rounds counted;
    # killed after the 2nd commit but before its XACK → 19 counted, 10 still pending
    assert committed == (9 if point == "before_commit" else 19)
    assert pending_total(rds, settings, "progress") == 10

    # a new real worker process takes over the dead consumer's pending entries at once
    worker = subprocess.run(
        worker_cmd("--group", "progress", "--burst", "--no-relay"),
        cwd=ROOT,
        env={**subprocess_env, "CC_WORKER_RECLAIM_IDLE_MS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    assert plays(uid, eid) == N_EVENTS
    assert pending_total(rds, settings, "progress") == 0
    n = in_transaction(
        lambda s: s.execute(
            text("SELECT count(*) FROM processed_events WHERE consumer = 'progress'")
        ).scalar_one()
    )
    assert n == N_EVENTS


def test_poison_entry_is_dead_lettered_with_its_error_and_does_not_block(
    settings, rds, fast_settings
):
    uid, eid = joined_player()
    publish_rounds(uid, 3)
    poison = events.make_envelope(
        events.GAME_ROUND, uid, {"game_type": "slot", "bet": "lots", "payout": 0, "outcome": "x"}
    )
    assert Publisher(rds, fast_settings).publish_envelopes([poison], "relay") == [True]
    publish_rounds(uid, 2)

    consumer = progress_consumer(rds, fast_settings)
    for _ in range(12):  # each pass redelivers the failed entry after the 30 ms idle
        run_burst(consumer)
        time.sleep(0.05)
    assert plays(uid, eid) == 5  # the good entries around it were all counted
    dlq = rds.xrange(f"{fast_settings.redis_prefix}:dlq")
    assert len(dlq) == 1
    fields = dlq[0][1]
    assert fields["event_id"] == poison["event_id"] and fields["group"] == "progress"
    assert "lots" in fields["error"]
    assert pending_total(rds, fast_settings, "progress") == 0
