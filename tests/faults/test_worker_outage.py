"""The worker rides out a PostgreSQL outage and stops when a thread dies.

Real processes against the project-local stores (tests/faults/conftest.py): PostgreSQL is
stopped for longer than four reclaim periods while entries are in the worker's hands and
players keep playing; when it returns, every committed round is processed by every group
and nothing is dead-lettered (an outage used to count as a failed delivery, so about two
minutes of downtime dead-lettered everything in flight). And a consumer or relay thread
that raises something unexpected takes the whole worker down with a non-zero exit code,
so that its supervisor restarts it, instead of the process running on without it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import threading
import time
import uuid
from collections import Counter

import pytest

from ccweb import events
from tests.factories import create_user
from tests.faults.stores import FaultStack
from tests.processes import log_text, wait_for
from tests.worker._support import emit_event
from worker.handlers import activity
from worker.runner import GroupConsumer, dlq_key, errors_key, failures_key

RECLAIM_MS = 1000
OUTAGE_S = 4.5 * RECLAIM_MS / 1000  # "longer than four reclaim periods"
WORKER_ENV = {
    "CC_WORKER_RECLAIM_IDLE_MS": str(RECLAIM_MS),
    "CC_WORKER_MAX_DELIVERIES": "2",  # the old rule would dead-letter after 2 reclaims
    "CC_WORKER_BACKOFF_MS": "100",
    "CC_WORKER_BACKOFF_MAX_MS": "1000",
    "CC_WORKER_BLOCK_MS": "200",
    "CC_WORKER_BATCH": "20",
    "CC_LOG_LEVEL": "INFO",
}
GROUPS = ("activity", "progress")


def no_failures_recorded(stack: FaultStack) -> bool:
    rds = stack.rds()
    return not any(
        rds.exists(key(stack.settings, g)) for g in GROUPS for key in (errors_key, failures_key)
    )


class Player(threading.Thread):
    """Spins the slot over one kept-alive connection until told to stop, counting the
    answers by status (0 = no answer: connection reset or timed out)."""

    def __init__(self, port: int, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.stop = port, token, stop
        self.statuses: Counter[int] = Counter()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        while not self.stop.is_set():
            try:
                conn.request(
                    "POST",
                    "/api/games/slot/spin",
                    body=json.dumps({"bet": 10}),
                    headers={
                        "Authorization": f"Bearer {self.token}",
                        "Content-Type": "application/json",
                        "X-Idempotency-Key": uuid.uuid4().hex,
                    },
                )
                resp = conn.getresponse()
                resp.read()
                self.statuses[resp.status] += 1
            except (OSError, http.client.HTTPException):
                self.statuses[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            time.sleep(0.01)


def api(port: int, path: str, body: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    assert resp.status in (200, 201), (path, resp.status, data)
    return data


def new_player(port: int) -> str:
    site_id = f"p{uuid.uuid4().hex[:12]}"
    creds = {"site_id": site_id, "password": "password-1234"}
    api(port, "/api/auth/signup", {**creds, "nickname": site_id[:20], "invite_code": "5858"})
    return str(api(port, "/api/auth/login", creds)["access_token"])


def test_postgres_outage_longer_than_four_reclaim_periods_dead_letters_nothing(
    fault_stack: FaultStack,
):
    """Play → the worker frozen while rounds pile up in the streams → PostgreSQL stopped →
    the worker thawed: it reads batches it cannot handle and holds them through 4.5
    reclaim periods (max deliveries 2) while the web answers 503 → PostgreSQL back → more
    play. Then every committed round has been processed once by both groups, nothing is
    dead-lettered or pending, no failure was recorded, and the worker is still running
    (its relay and consumers waited instead of dying)."""
    stack = fault_stack
    _, port = stack.start_server()
    worker = stack.start_worker(**WORKER_ENV)
    tokens = [new_player(port) for _ in range(4)]
    stop = threading.Event()
    players = [Player(port, t, stop) for t in tokens]
    for p in players:
        p.start()
    try:
        time.sleep(1.5)
        os.kill(worker.pid, signal.SIGSTOP)
        time.sleep(1.0)  # these rounds reach the streams but no consumer yet
        stack.pg.stop()
        os.kill(worker.pid, signal.SIGCONT)
        time.sleep(OUTAGE_S)
        during = sum((p.statuses for p in players), Counter())
        stack.pg.start()
        time.sleep(1.5)
    finally:
        stop.set()
        for p in players:
            p.join(20)

    statuses = sum((p.statuses for p in players), Counter())
    assert set(statuses) <= {200, 503}, statuses  # never a 500, never a hang
    assert during[503] > 0 and statuses[200] > during[200] > 0, (during, statuses)

    rounds = int(stack.scalar("SELECT count(*) FROM game_rounds"))  # type: ignore[arg-type]
    assert rounds >= statuses[200]

    def processed() -> dict[str, int]:
        rows = stack.sql(
            "SELECT p.consumer, count(*) FROM processed_events p JOIN outbox o"
            " ON o.event_id = p.event_id WHERE o.event_type = 'game.round' GROUP BY 1"
        )
        return dict(rows)  # type: ignore[arg-type]

    wait_for(
        lambda: processed() == {"activity": rounds, "progress": rounds},
        timeout=60,
        what=f"both groups to process all {rounds} rounds (have {processed()})",
    )
    rds = stack.rds()
    assert rds.xlen(dlq_key(stack.settings)) == 0, rds.xrange(dlq_key(stack.settings))
    assert no_failures_recorded(stack)
    activity_total = stack.scalar("SELECT sum(events) FROM user_daily_activity")
    events_counted = stack.scalar(
        "SELECT count(*) FROM outbox WHERE user_id IS NOT NULL AND event_type <> ALL(%s)",
        (list(events.DERIVED_EVENT_TYPES),),
    )
    assert activity_total == events_counted  # each event counted once, none lost
    assert worker.poll() is None, log_text(worker)[-3000:]
    log = log_text(worker)
    held = [int(n) for n in re.findall(r"(\d+) entries held", log)]
    assert held and max(held) > 0, log[-3000:]  # the outage really caught entries in hand
    assert "dead-lettered" not in log


def test_consumer_keeps_its_batch_claimed_while_postgres_is_down(fault_stack, fault_inprocess):
    """In-process, step by step: the consumer reads a batch, PostgreSQL is down, and for
    five reclaim periods it holds the batch — Redis still counts one delivery per entry
    (it re-claims them without counting), no failure is recorded, nothing is
    dead-lettered — then handles it once PostgreSQL is back."""
    settings = fault_inprocess.with_overrides(
        worker_reclaim_idle_ms=300,
        worker_max_deliveries=1,
        worker_backoff_ms=50,
        worker_backoff_max_ms=200,
        worker_block_ms=100,
    )
    user = int(create_user()["id"])
    sent = [emit_event(user, events.AUTH_LOGIN)["event_id"] for _ in range(3)]
    rds = fault_stack.rds()
    consumer = GroupConsumer(rds, settings, activity.GROUP, activity.handle, "holder")
    stop = threading.Event()
    fault_stack.pg.stop()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(consumer.held) == 3, what="the batch to be held")
        time.sleep(5 * 0.3)

        stream = consumer.held[0].stream
        rows = rds.xpending_range(stream, activity.GROUP, min="-", max="+", count=10)
        assert [(r["consumer"], r["times_delivered"]) for r in rows] == [("holder", 1)] * 3
        assert max(r["time_since_delivered"] for r in rows) < 300  # kept fresh
        assert no_failures_recorded(fault_stack) and rds.xlen(dlq_key(settings)) == 0

        fault_stack.pg.start()
        wait_for(lambda: consumer.held == [] and consumer.pending() == 0, timeout=20)
    finally:
        stop.set()
        thread.join(10)
    counted = fault_stack.scalar(
        "SELECT sum(events) FROM user_daily_activity WHERE user_id = %s", (user,)
    )
    assert counted == 3
    done = fault_stack.sql(
        "SELECT event_id::text FROM processed_events WHERE consumer = 'activity'"
        " AND event_id = ANY(%s::uuid[])",
        (sent,),
    )
    assert sorted(r[0] for r in done) == sorted(sent)
    assert rds.xlen(dlq_key(settings)) == 0


@pytest.mark.parametrize("thread", ["progress", "relay"])
def test_a_thread_that_dies_stops_the_worker_with_a_non_zero_exit(fault_stack, thread):
    """A failpoint raises an unexpected error in one thread (a consumer group's loop or
    the relay) on its third pass; the worker — whose other threads are healthy — exits
    non-zero within a few seconds and says which thread died."""
    name = "worker.relay" if thread == "relay" else f"worker.loop.{thread}"
    worker = fault_stack.start_worker(CC_FAILPOINTS=f"{name}=raise@3", CC_WORKER_BLOCK_MS="200")

    wait_for(lambda: worker.poll() is not None, timeout=30, what="the worker to exit")

    assert worker.returncode == 3, log_text(worker)[-3000:]
    log = log_text(worker)
    assert f"thread {thread} died" in log and "FailpointError" in log
