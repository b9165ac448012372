"""Dead letters end to end: a real entry that PostgreSQL refuses for one group is
dead-lettered, listed by ``python -m worker.dlq list``, replayed to that group only with
``python -m worker.dlq replay`` once the cause is fixed, and then handled exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from ccweb import events
from ccweb.db import in_transaction
from tests.factories import create_user
from tests.processes import ROOT
from tests.worker._support import (
    activity_events,
    emit_event,
    pending_total,
    processed_ids,
    progress_consumer,
    run_burst,
)
from worker.dlq import replay
from worker.handlers import activity
from worker.runner import dlq_key, retry_key


def dlq_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.dlq", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def refused_user() -> Iterator[int]:
    """A player whose daily-activity rows PostgreSQL refuses (a CHECK constraint), as a
    row the handler cannot write until an operator repairs something; ``refused_user``
    is "fixed" by dropping the constraint (also at teardown)."""
    uid = int(create_user()["id"])
    in_transaction(
        lambda s: s.execute(
            text(
                "ALTER TABLE user_daily_activity ADD CONSTRAINT cc_test_refuse"
                f" CHECK (user_id <> {uid}) NOT VALID"
            )
        )
    )
    yield uid
    fix()


def fix() -> None:
    in_transaction(
        lambda s: s.execute(
            text("ALTER TABLE user_daily_activity DROP CONSTRAINT IF EXISTS cc_test_refuse")
        )
    )


def test_dead_letter_is_listed_and_replayed_to_its_group_only_once_fixed(
    settings, rds, fast_settings, make_consumer, refused_user, subprocess_env
):
    """The activity group dead-letters the refused player's event after
    ``worker_max_deliveries`` failures while the progress group handles the same event;
    ``list`` shows it with its group and error; a replay before the fix fails again and
    comes back to the dead-letter stream (not lost, not stuck in the retry stream); after
    the fix a replay is handled by activity once, and progress is not handed it again."""
    good = int(create_user()["id"])
    poisoned = emit_event(refused_user, events.AUTH_LOGIN)
    emit_event(good, events.AUTH_LOGIN)
    consumer = make_consumer(s=fast_settings)
    progress = progress_consumer(rds, fast_settings)

    run_burst(consumer)
    run_burst(progress)

    assert activity_events(good) == 1 and activity_events(refused_user) == 0
    assert poisoned["event_id"] not in processed_ids("activity")
    assert pending_total(rds, settings, "progress") == 0  # progress took it
    listed = dlq_cli(subprocess_env, "list")
    assert listed.returncode == 0, listed.stderr
    assert poisoned["event_id"] in listed.stdout and "group=activity" in listed.stdout
    assert "CheckViolation" in listed.stdout and "1 in total" in listed.stdout
    as_json = dlq_cli(subprocess_env, "list", "--json", "--group", "activity")
    (record,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert record["event_id"] == poisoned["event_id"] and record["failures"] == "5"
    assert dlq_cli(subprocess_env, "list", "--json", "--group", "progress").stdout == ""

    again = dlq_cli(subprocess_env, "replay", "--id", record["id"])  # not fixed yet
    assert again.returncode == 0 and "1 dead letter(s) replayed" in again.stdout
    assert rds.xlen(dlq_key(settings)) == 0
    run_burst(consumer)
    (back,) = rds.xrange(dlq_key(settings))
    assert back[1]["stream"] == retry_key(settings, activity.GROUP)
    assert back[1]["event_id"] == poisoned["event_id"] and back[1]["failures"] == "5"
    assert rds.xlen(retry_key(settings, activity.GROUP)) == 0

    fix()
    done = dlq_cli(subprocess_env, "replay", "--all")
    assert done.returncode == 0 and "1 dead letter(s) replayed" in done.stdout, done.stderr
    run_burst(consumer)

    assert activity_events(refused_user) == 1 and activity_events(good) == 1
    assert rds.xlen(dlq_key(settings)) == 0
    assert rds.xlen(retry_key(settings, activity.GROUP)) == 0  # deleted once acked
    assert pending_total(rds, settings) == 0
    assert progress.read_new(None) == []  # the replay went to activity only


def test_replay_takes_only_what_it_is_asked_for(
    settings, rds, fast_settings, make_consumer, refused_user
):
    """``--id`` replays that dead letter only, ``--group`` filters by group, and a dead
    letter replayed twice (two operators) goes back once."""
    for _ in range(2):
        emit_event(refused_user, events.AUTH_LOGIN)
    run_burst(make_consumer(s=fast_settings))
    first, second = (i for i, _ in rds.xrange(dlq_key(settings)))

    assert replay(rds, settings, group="progress") == []
    moved = replay(rds, settings, ids=[first])
    assert [(d, g) for d, g, _ in moved] == [(first, activity.GROUP)]
    assert replay(rds, settings, ids=[first]) == []  # already replayed
    assert [i for i, _ in rds.xrange(dlq_key(settings))] == [second]
    assert rds.xlen(retry_key(settings, activity.GROUP)) == 1
