"""Mixed play while the faults of a bad week hit one after another, then a reconciliation.

Players spin (each request with its own ``X-Idempotency-Key``, retried with the same key
after any failure — a dropped connection, a 503 — until a definitive answer, as a
well-behaved client does) and claim their streak, against a 2-process server and a worker,
while the test: SIGKILLs one web process (its supervisor replaces it), pauses Redis
(SIGSTOP) for two seconds, stops PostgreSQL for three, SIGKILLs the worker and starts a
new one. Afterwards the worker drains, and :mod:`ccweb.ops.reconcile` must report zero
lost events, zero doubled or missing money, zero negative balances and ledger = balance
for every player; and every round in the database is one a client was told about, once.
The report is printed (``-s``) for the record."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable

from tests.faults.api import Api, Reply
from tests.faults.stores import FaultStack
from tests.processes import wait_for

PLAYERS = 6
SECONDS = float(os.environ.get("CC_CHAOS_SECONDS", "16"))
RETRY_FOR_S = 60.0  # a client keeps retrying one request this long at most
ENV = {
    "CC_WORKER_RECLAIM_IDLE_MS": "1000",
    "CC_WORKER_MAX_DELIVERIES": "3",
    "CC_REDIS_TIMEOUT_S": "0.5",
    "CC_DB_STATEMENT_TIMEOUT_MS": "2000",
    "CC_DB_CONNECT_TIMEOUT_S": "1",
}


def definitive(reply: Reply) -> bool:
    """An answer the client can act on (not a transient failure to retry)."""
    if reply.status >= 500:
        return False
    return not (reply.status == 409 and reply.body["error"]["code"] == "IN_PROGRESS")


RETRIES: dict[str, int] = {}  # why clients had to retry: status code or error name


def until_answered(send: Callable[[], Reply]) -> Reply | None:
    deadline = time.monotonic() + RETRY_FOR_S
    while time.monotonic() < deadline:
        try:
            reply = send()
            if definitive(reply):
                return reply
            RETRIES[str(reply.status)] = RETRIES.get(str(reply.status), 0) + 1
        except OSError as exc:
            RETRIES[type(exc).__name__] = (
                RETRIES.get(type(exc).__name__, 0) + 1
            )  # connection refused/reset: the process died or is restarting
            pass
        except Exception as exc:  # http.client.RemoteDisconnected and friends
            if "Remote" not in type(exc).__name__ and "BadStatus" not in type(exc).__name__:
                raise
            RETRIES[type(exc).__name__] = RETRIES.get(type(exc).__name__, 0) + 1
        time.sleep(0.2)
    return None


class Player(threading.Thread):
    def __init__(self, api: Api, uid: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.api, self.uid, self.stop = api, uid, stop
        self.answers: dict[str, Reply | None] = {}
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                key = f"{self.uid}-{n}"
                if n % 15 == 1:
                    self.answers[key] = until_answered(
                        lambda k=key: self.api.call("POST", "/api/streak/claim", None, key=k)
                    )
                else:
                    bet = random.choice((10, 20))  # players stay solvent for the whole run
                    self.answers[key] = until_answered(
                        lambda k=key, b=bet: self.api.spin(key=k, bet=b)
                    )
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)


def test_faults_under_mixed_load_leave_consistent_data(fault_stack: FaultStack):
    stack = fault_stack
    server, port = stack.start_server(processes=2, **ENV)
    worker = stack.start_worker(**ENV)
    players = []
    stop = threading.Event()
    for _ in range(PLAYERS):
        api = Api(port)
        user = api.signup(prefix="chaos")
        players.append(Player(api, user["id"], stop))
    for p in players:
        p.start()

    log: list[str] = []
    started = time.monotonic()

    def at(second: float) -> None:
        time.sleep(max(0.0, started + second * SECONDS / 16 - time.monotonic()))

    children = [int(c) for c in os.popen(f"pgrep -P {server.pid}").read().split()]
    at(2)
    os.kill(children[0], signal.SIGKILL)
    log.append(f"SIGKILL web process {children[0]}")
    at(4)
    stack.redis.pause()
    log.append("Redis paused")
    time.sleep(2)
    stack.redis.resume()
    log.append("Redis resumed")
    at(8)
    stack.pg.stop()
    log.append("PostgreSQL stopped")
    time.sleep(3)
    stack.pg.start()
    log.append("PostgreSQL started")
    at(12)
    worker.kill()
    worker.wait(10)
    log.append("worker SIGKILLed")
    worker = stack.start_worker(**ENV)
    log.append("worker restarted")
    at(16)
    stop.set()
    for p in players:
        p.join(RETRY_FOR_S + 10)
    assert server.poll() is None, "the supervised server must still run"
    assert not [e for p in players for e in p.errors]

    answers = {k: r for p in players for k, r in p.answers.items()}
    unanswered = [k for k, r in answers.items() if r is None]
    assert not unanswered, unanswered
    rounds_told = {
        r.body["round_id"] for r in answers.values() if r and "round_id" in (r.body or {})
    }
    refused = [r.body["error"]["code"] for r in answers.values() if r and r.status >= 400]
    assert set(refused) <= {"ALREADY_CLAIMED", "INSUFFICIENT_GOLD"}, refused

    def drained() -> bool:
        out = stack.manage_output("reconcile", "--grace", "0")
        return json.loads(out)["lost_events"] == {"activity": 0, "progress": 0}

    wait_for(drained, 90, "the worker to process every committed event")
    report = json.loads(stack.manage_output("reconcile", "--grace", "0"))
    rounds_in_db = {r[0] for r in stack.sql("SELECT id FROM game_rounds")}
    print(
        "\nfaults:",
        "; ".join(log),
        f"\nrequests: {len(answers)} ({len(rounds_told)} rounds, {len(refused)} refusals);"
        f" retried after: {RETRIES}",
        f"\nreconcile: {json.dumps(report)}",
    )
    assert report["ok"], report
    assert rounds_in_db == rounds_told  # no round a client was not told about, none twice
    assert report["negative_balances"] == report["ledger_mismatches"] == 0
    dead = stack.rds().xlen(f"{stack.prefix}:dlq")
    assert dead == 0
    assert RETRIES, "the faults must have hit some requests, or this test proves nothing"
