"""The in-process denylist stays correct across processes (two instances = two web
processes sharing one Redis) and never misses a revocation while it is catching up."""

from __future__ import annotations

import time

from ccweb.auth.denylist import Denylist
from ccweb.redis_client import get_redis


def wait_until(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def make(settings) -> Denylist:
    return Denylist(get_redis(settings), settings)


def test_revocation_on_one_process_reaches_another(settings):
    a, b = make(settings), make(settings)
    try:
        assert not b.is_revoked("j1", "f1")  # starts b's listener
        assert wait_until(b._healthy.is_set)
        a.add("jti", "j1", time.time() + 60)
        assert wait_until(lambda: b.is_revoked("j1", None))
        a.add("fam", "f9", time.time() + 60)
        assert wait_until(lambda: b.is_revoked("other-jti", "f9"))
        assert not b.is_revoked("j2", "f2")
    finally:
        a.stop()
        b.stop()


def test_a_new_process_loads_earlier_revocations_and_checks_redis_until_ready(settings):
    a = make(settings)
    a.add("jti", "old", time.time() + 60)
    late = make(settings)
    try:
        # the very first check happens before the listener is ready: answered by Redis
        assert not late._healthy.is_set()
        assert late.is_revoked("old", None)
        assert wait_until(late._healthy.is_set)
        assert late.is_revoked("old", None)  # now from memory, loaded at start
    finally:
        a.stop()
        late.stop()


def test_expired_entries_do_not_count(settings):
    d = make(settings)
    try:
        d.add("jti", "gone", time.time() - 1)
        assert not d.is_revoked("gone", None)
        assert wait_until(d._healthy.is_set)
        assert not d.is_revoked("gone", None)
    finally:
        d.stop()
