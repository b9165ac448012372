"""`python -m worker` as a real process against this run's PostgreSQL and Redis."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccweb import effects
from ccweb.events import all_stream_keys
from ccweb.outbox.relay import pending_count
from tests import processes
from tests.factories import create_user
from tests.processes import ROOT, wait_for, worker_cmd
from tests.worker._support import (
    activity_events,
    emit_event,
    group_info,
    outbox_rows,
    pending_total,
    user_stream,
)


@pytest.fixture
def start_worker(subprocess_env, tmp_path: Path) -> Iterator:
    """Start long-running `python -m worker` processes; kill any left at teardown."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, **env: str) -> subprocess.Popen:
        log_path = tmp_path / f"worker{len(procs)}.log"
        proc = processes.start_worker({**subprocess_env, **env}, *args, log_path=log_path)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        processes.stop(proc)


def test_burst_relays_drains_and_exits_zero(settings, rds, subprocess_env):
    """`python -m worker --burst` publishes outbox rows the fast path missed (relay),
    drains every partition with the `activity` group and exits 0: every row marked,
    every event counted once, nothing pending or undelivered."""
    users = [create_user()["id"] for _ in range(4)]
    for u in users:
        emit_event(u)  # fast path
    effects.FAST_PATH_ENABLED = False
    for u in users:
        emit_event(u)  # only the relay can publish these
        emit_event(u)
    assert len(outbox_rows()) == 12

    proc = subprocess.run(
        worker_cmd("--burst"),
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert pending_count() == 0
    assert [activity_events(u) for u in users] == [3, 3, 3, 3]
    assert pending_total(rds, settings) == 0
    for stream in all_stream_keys(settings):
        assert group_info(rds, stream)["lag"] == 0


def test_running_worker_processes_new_events_and_stops_gracefully_on_sigterm(
    settings, rds, user_id, start_worker
):
    """A long-running worker picks up an event published by the fast path and one only
    the relay can publish (each counted within seconds), then on SIGTERM finishes and
    exits 0 promptly, leaving nothing pending."""
    proc = start_worker(CC_WORKER_BLOCK_MS="200")
    stream = all_stream_keys(settings)[0]
    wait_for(
        lambda: (
            proc.poll() is None
            and rds.exists(stream)
            and any(g["name"] == "activity" for g in rds.xinfo_groups(stream))
        ),
        timeout=20,
        what="worker to create its groups",
    )

    emit_event(user_id)  # fast path
    wait_for(lambda: activity_events(user_id) == 1, what="fast-path event to be counted")
    effects.FAST_PATH_ENABLED = False
    emit_event(user_id)  # relay path (after relay_grace_s)
    wait_for(lambda: activity_events(user_id) == 2, what="relayed event to be counted")
    wait_for(lambda: pending_count() == 0, what="relay to mark the row")
    assert proc.poll() is None

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, proc.log_path.read_text()
    assert time.monotonic() - started < 5
    assert "Traceback" not in proc.log_path.read_text()
    assert pending_total(rds, settings) == 0
    assert activity_events(user_id) == 2


def _consumer_pids(rds, stream: str, group: str) -> set[int]:  # type: ignore[no-untyped-def]
    """Pids of the consumers (named ``<host>-<pid>``) that read ``group`` on ``stream``."""
    names = [c["name"] for c in rds.xinfo_consumers(stream, group)]
    return {int((n.decode() if isinstance(n, bytes) else n).rsplit("-", 1)[1]) for n in names}


def test_lanes_split_the_relay_and_groups_between_two_processes(
    settings, rds, user_id, start_worker
):
    """``--lane bulk`` runs no relay and only the groups nobody waits for; ``--lane live``
    runs the relay and the push/progress groups. Together they process everything one
    ``all`` worker would, each group in exactly one of them."""
    effects.FAST_PATH_ENABLED = False  # only a relay can publish
    bulk = start_worker("--lane", "bulk", CC_WORKER_BLOCK_MS="200")
    emit_event(user_id)
    time.sleep(3)  # several relay periods and its grace: nothing may publish it
    assert bulk.poll() is None
    assert pending_count() == 1 and activity_events(user_id) == 0

    live = start_worker("--lane", "live", CC_WORKER_BLOCK_MS="200")
    wait_for(lambda: pending_count() == 0, timeout=20, what="the live lane's relay")
    wait_for(lambda: activity_events(user_id) == 1, what="the bulk lane's activity group")
    stream = user_stream(settings, user_id)
    groups = {
        g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        for g in rds.xinfo_groups(stream)
    }
    assert {"activity", "progress", "realtime", "segments"} <= groups
    wait_for(
        lambda: _consumer_pids(rds, stream, "progress") == {live.pid}, what="live reads progress"
    )
    assert _consumer_pids(rds, stream, "realtime") == {live.pid}
    assert _consumer_pids(rds, stream, "activity") == {bulk.pid}
    assert _consumer_pids(rds, stream, "segments") == {bulk.pid}
    assert bulk.poll() is None and live.poll() is None
