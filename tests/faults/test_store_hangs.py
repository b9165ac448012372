"""Stores that hang instead of refusing: a SIGSTOPped Redis or PostgreSQL (the kernel still
accepts connections and acknowledges packets; nothing answers), and a connection pool
with nothing free.

What must hold (issue 9, items 2 and 8): every request of the real server is answered
within the configured timeouts — 503 SERVICE_UNAVAILABLE with Retry-After where the store
is needed, success where it is not — and once the store answers again the same process
serves normally, with no restart. Without the timeouts these requests wait as long as the
store is paused; here the HTTP client gives up after :data:`HTTP_TIMEOUT_S`, far beyond
every bound, so a regression fails instead of hanging the run.
"""

from __future__ import annotations

import threading
import time

import psycopg2

from ccweb.db_timeouts import ANSWER_MARGIN_S
from tests.faults.api import HTTP_TIMEOUT_S, Api, Reply, concurrently, ledger_matches_balance
from tests.faults.stores import FaultStack
from tests.processes import log_text, wait_for

# Short bounds so the tests are quick; every one is a setting (README, Configuration).
REDIS_TIMEOUT_S = 0.5
DB_STATEMENT_TIMEOUT_S = 1.0
DB_POOL_TIMEOUT_S = 0.5
TIMEOUTS = {
    "CC_REDIS_TIMEOUT_S": str(REDIS_TIMEOUT_S),
    "CC_REDIS_CONNECT_TIMEOUT_S": str(REDIS_TIMEOUT_S),
    "CC_DB_STATEMENT_TIMEOUT_MS": str(int(DB_STATEMENT_TIMEOUT_S * 1000)),
    "CC_DB_CONNECT_TIMEOUT_S": "1",
    "CC_DB_POOL_TIMEOUT_S": str(DB_POOL_TIMEOUT_S),
    # two connections per pool: concurrent requests also meet an exhausted pool
    "CC_DB_POOL_SIZE": "2",
    "CC_DB_MAX_OVERFLOW": "0",
}
# The longest a request may take while a store hangs: Redis — one command's timeout;
# PostgreSQL — waiting for a pooled connection, then one round trip's bound.
REDIS_BOUND_S = REDIS_TIMEOUT_S
PG_BOUND_S = DB_POOL_TIMEOUT_S + DB_STATEMENT_TIMEOUT_S + ANSWER_MARGIN_S
SLACK_S = 1.5  # scheduling on a busy shared machine; a hang would last HTTP_TIMEOUT_S


def assert_unavailable(reply: Reply) -> None:
    assert reply.status == 503, reply
    assert reply.body["error"]["code"] == "SERVICE_UNAVAILABLE", reply
    assert reply.headers.get("retry-after") == "1", reply


def test_paused_redis_costs_a_request_at_most_the_redis_timeout_then_recovers(
    fault_stack: FaultStack,
):
    """Redis SIGSTOPped. Requests that need Redis (cached dashboard, login lockout check,
    /ready) answer 503 within CC_REDIS_TIMEOUT_S; requests that do not (the access-token
    check answers from process memory; a spin's Redis work is best-effort after commit)
    succeed, a spin waiting no longer than the timeout for its publish. After SIGCONT the
    same server process serves everything again."""
    # a spin keeps its pooled connection while it waits for its Redis work: enough
    # connections that the four spins meet only Redis's timeout, not each other
    proc, port = fault_stack.start_server(**{**TIMEOUTS, "CC_DB_POOL_SIZE": "8"})
    api = Api(port)
    player = api.signup()
    for warm in (api.call("GET", "/api/auth/me"), api.spin(), api.call("GET", "/ready")):
        assert warm.status == 200, warm
    assert api.call("GET", "/api/dashboard").status == 200

    fault_stack.redis.pause()
    try:
        login = {"site_id": player["site_id"], "password": player["password"]}
        replies = concurrently(
            {
                "health": lambda: api.call("GET", "/health"),
                "me": lambda: api.call("GET", "/api/auth/me"),
                "dashboard": lambda: api.call("GET", "/api/dashboard"),
                "ready": lambda: api.call("GET", "/ready"),
                "login": lambda: api.call("POST", "/api/auth/login", login),
                **{f"spin{i}": (lambda i=i: api.spin(key=f"redis-paused-{i}")) for i in range(4)},
            }
        )
    finally:
        fault_stack.redis.resume()

    for name, reply in replies.items():
        assert reply.seconds < REDIS_BOUND_S + SLACK_S, (name, reply)
    assert replies["health"].status == 200
    assert replies["me"].status == 200 and replies["me"].body["id"] == player["id"]
    for i in range(4):
        spin = replies[f"spin{i}"]
        assert spin.status == 200, spin
    assert_unavailable(replies["dashboard"])
    assert_unavailable(replies["login"])
    ready = replies["ready"]
    assert ready.status == 503 and ready.body["checks"]["postgres"] == "ok", ready
    assert ready.body["checks"]["redis"].startswith("error"), ready

    # the same process recovers by itself
    wait_for(lambda: api.call("GET", "/api/dashboard").status == 200, 10, "dashboard back")
    assert api.call("GET", "/ready").status == 200
    assert api.call("POST", "/api/auth/login", login).status == 200
    assert proc.poll() is None
    rounds = fault_stack.scalar(
        "SELECT count(*) FROM game_rounds WHERE user_id = %s", (player["id"],)
    )
    assert rounds == 5  # the warm-up spin and the four played while Redis hung
    assert ledger_matches_balance(fault_stack, player["id"])


def test_paused_postgres_answers_503_within_the_bound_then_recovers(fault_stack: FaultStack):
    """PostgreSQL SIGSTOPped (postmaster and backends: existing connections hang too, new
    ones are accepted by the kernel and never answered). Requests that need it answer 503
    within the pool wait plus one round trip's bound — also those that find both pooled
    connections stuck — while /health still answers. After SIGCONT the same process
    serves again (the connections it gave up on were discarded, not reused), and the
    player's ledger still explains the balance."""
    proc, port = fault_stack.start_server(**TIMEOUTS)
    api = Api(port)
    player = api.signup()
    for warm in (api.call("GET", "/api/auth/me"), api.spin(), api.call("GET", "/ready")):
        assert warm.status == 200, warm

    fault_stack.pg.pause()
    try:
        replies = concurrently(
            {
                "health": lambda: api.call("GET", "/health"),
                "ready": lambda: api.call("GET", "/ready"),
                **{f"me{i}": (lambda: api.call("GET", "/api/auth/me")) for i in range(3)},
                **{f"spin{i}": (lambda i=i: api.spin(key=f"pg-paused-{i}")) for i in range(3)},
            }
        )
    finally:
        fault_stack.pg.resume()

    for name, reply in replies.items():
        assert reply.seconds < PG_BOUND_S + SLACK_S, (name, reply)
    assert replies["health"].status == 200
    for name in ("me0", "me1", "me2", "spin0", "spin1", "spin2"):
        assert_unavailable(replies[name])
    ready = replies["ready"]
    assert ready.status == 503 and ready.body["checks"]["postgres"].startswith("error"), ready

    wait_for(lambda: api.call("GET", "/api/auth/me").status == 200, 15, "PostgreSQL back")
    assert api.spin(key="after-thaw").status == 200
    assert api.call("GET", "/ready").status == 200
    assert proc.poll() is None
    # a statement sent before the pause may have run when the server thawed (the client
    # had given up): whatever ran, it ran whole
    assert ledger_matches_balance(fault_stack, player["id"])


def test_a_request_that_finds_the_pool_exhausted_waits_briefly_then_gets_503(
    fault_stack: FaultStack,
):
    """One pooled connection per pool, held by a spin that waits on a row lock this test
    holds: another request waits CC_DB_POOL_TIMEOUT_S for a connection and answers 503 —
    it does not queue behind the stuck one. Once the lock is released the spin completes
    and the next request is served."""
    proc, port = fault_stack.start_server(
        **{
            **TIMEOUTS,
            "CC_DB_POOL_SIZE": "1",
            "CC_DB_STATEMENT_TIMEOUT_MS": "20000",  # the blocked spin must outlast the test
        }
    )
    api = Api(port)
    player = api.signup()
    assert api.spin().status == 200  # warm: seeds and round ids cached

    lock = psycopg2.connect(fault_stack.database_url, connect_timeout=5)
    try:
        with lock.cursor() as cur:  # a transaction holding the player's row
            cur.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (player["id"],))
        blocked: dict[str, Reply] = {}
        spinner = threading.Thread(target=lambda: blocked.update(spin=api.spin(key="held")))
        spinner.start()
        wait_for(
            lambda: fault_stack.scalar(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND application_name LIKE 'casino-club%%'"
            ),
            10,
            "the spin to wait on the row lock",
        )
        starved = api.call("GET", "/api/auth/me")
        assert_unavailable(starved)
        assert starved.seconds < DB_POOL_TIMEOUT_S + SLACK_S, starved
    finally:
        lock.rollback()
        lock.close()
    spinner.join(HTTP_TIMEOUT_S)
    assert blocked["spin"].status == 200, blocked
    assert api.call("GET", "/api/auth/me").status == 200
    assert proc.poll() is None


def test_worker_blocking_reads_outlast_the_redis_timeout_and_it_rides_out_a_pause(
    fault_stack: FaultStack,
):
    """The worker blocks in XREADGROUP for CC_WORKER_BLOCK_MS, longer than the Redis
    timeout here: an idle read that lasts the whole block is not a timeout (its client's
    bound is block + timeout). While Redis is paused its reads time out instead of hanging
    for good; after SIGCONT the same worker process handles new events."""
    worker = fault_stack.start_worker(
        CC_REDIS_TIMEOUT_S="0.3", CC_WORKER_BLOCK_MS="1000", CC_WORKER_RECLAIM_IDLE_MS="1000"
    )
    _, port = fault_stack.start_server(**TIMEOUTS)
    api = Api(port)
    player = api.signup()

    def activity() -> int:
        n = fault_stack.scalar(
            "SELECT COALESCE(sum(events), 0) FROM user_daily_activity WHERE user_id = %s",
            (player["id"],),
        )
        return int(n)  # type: ignore[call-overload]

    wait_for(lambda: activity() >= 1, 15, "the signup event handled")
    time.sleep(2.5)  # idle: a few reads block for their full second and return nothing
    assert "TimeoutError" not in log_text(worker), log_text(worker)[-3000:]

    fault_stack.redis.pause()
    time.sleep(1.5)  # reads and reclaims time out meanwhile
    fault_stack.redis.resume()

    before = activity()
    assert api.spin().status == 200
    wait_for(lambda: activity() > before, 15, "a spin after the pause handled")
    assert worker.poll() is None, log_text(worker)[-3000:]
