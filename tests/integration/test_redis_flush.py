"""Group flushing of after-commit Redis work (ccweb.redis_flush), as the gevent web
server runs it: many waiting requests, one pipeline, and each request returns only
once its own commands are in Redis (the next read must see the bumped version)."""

from __future__ import annotations

import time

import gevent
import pytest

from ccweb import redis_flush
from ccweb.config import set_settings
from ccweb.redis_client import key


@pytest.fixture
def group_flush():
    redis_flush.enable_group_flush()
    try:
        yield redis_flush.flusher()
    finally:
        redis_flush.enable_group_flush(False)


def test_waiting_requests_share_a_pipeline_and_see_their_own_writes(rds, group_flush):
    counter = key("test", "flush", "counter")
    seen_after_return: list[int] = []

    def request(i: int) -> None:
        own = key("test", "flush", "own", i)
        redis_flush.run([lambda pipe: pipe.incr(counter), lambda pipe: pipe.set(own, i)])
        assert rds.get(own) == str(i)  # its own write is there when run() returns
        seen_after_return.append(int(rds.get(counter)))

    gevent.joinall([gevent.spawn(request, i) for i in range(20)], raise_error=True)
    assert int(rds.get(counter)) == 20
    assert len(seen_after_return) == 20 and min(seen_after_return) >= 1
    assert group_flush.submitted == 20
    assert group_flush.flushes <= 2  # all twenty waited together: one or two round trips


def test_a_failing_fill_or_command_costs_nobody_else_their_commands(rds, group_flush):
    counter = key("test", "flush", "robust")
    rds.set(key("test", "flush", "not-a-number"), "x")

    def broken(pipe: object) -> None:
        raise RuntimeError("bad fill")

    def request(fills: list) -> None:
        redis_flush.run(fills)  # never raises: after-commit work is best effort

    gevent.joinall(
        [
            gevent.spawn(request, [lambda pipe: pipe.incr(counter)]),
            gevent.spawn(request, [broken]),
            gevent.spawn(request, [lambda pipe: pipe.incr(key("test", "flush", "not-a-number"))]),
            gevent.spawn(request, [lambda pipe: pipe.incr(counter)]),
        ],
        raise_error=True,
    )
    assert int(rds.get(counter)) == 2


def test_without_gevent_server_run_executes_inline(rds):
    counter = key("test", "flush", "inline")
    redis_flush.run([lambda pipe: pipe.incr(counter)])
    assert int(rds.get(counter)) == 1


def test_a_killed_flusher_is_replaced(rds, group_flush):
    counter = key("test", "flush", "revived")
    group_flush._greenlet.kill()
    assert group_flush.dead
    redis_flush.run([lambda pipe: pipe.incr(counter)])
    assert int(rds.get(counter)) == 1
    assert redis_flush.flusher() is not group_flush and not redis_flush.flusher().dead


@pytest.mark.parametrize("grouped", [True, False], ids=["gevent-server", "inline"])
def test_redis_that_does_not_answer_costs_a_request_at_most_the_redis_timeout(
    rds, settings, grouped
):
    """Redis holds a BLPOP's answer (here for 5 s), as a hung server holds every answer:
    the request that sent it waits CC_REDIS_TIMEOUT_S, not until Redis answers, and
    raises nothing (after-commit work is best effort). The timed-out connection is
    dropped — reused, its late reply would be read as the answer to the next command —
    so the next request's commands work."""
    set_settings(settings.with_overrides(redis_timeout_s=0.3))
    redis_flush.enable_group_flush(grouped)
    try:
        started = time.monotonic()
        redis_flush.run([lambda pipe: pipe.blpop([key("test", "flush", "never")], timeout=5)])
        waited = time.monotonic() - started
        counter = key("test", "flush", "after-hang")
        redis_flush.run([lambda pipe: pipe.incr(counter), lambda pipe: pipe.incr(counter)])
    finally:
        redis_flush.enable_group_flush(False)
    assert waited < 0.3 + 1.5  # the timeout plus scheduling slack; Redis held it for 5 s
    assert rds.get(counter) == "2"
