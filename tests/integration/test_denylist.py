"""The in-process denylist stays correct across processes (two instances = two web
processes sharing one Redis) and never misses a revocation while it is catching up."""

from __future__ import annotations

import time

from ccweb import clock as app_clock
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
        a.add("jti", "j1", app_clock.time() + 60)
        assert wait_until(lambda: b.is_revoked("j1", None))
        a.add("fam", "f9", app_clock.time() + 60)
        assert wait_until(lambda: b.is_revoked("other-jti", "f9"))
        assert not b.is_revoked("j2", "f2")
    finally:
        a.stop()
        b.stop()


def test_a_new_process_loads_earlier_revocations_and_checks_redis_until_ready(settings):
    a = make(settings)
    a.add("jti", "old", app_clock.time() + 60)
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
        d.add("jti", "gone", app_clock.time() - 1)
        assert not d.is_revoked("gone", None)
        assert wait_until(d._healthy.is_set)
        assert not d.is_revoked("gone", None)
    finally:
        d.stop()


def test_an_entry_stops_counting_when_the_clock_passes_it(settings, clock):
    """A revocation lasts until the moment it was given (the covered token's expiry), on
    the clock that judges expiry: from memory and from Redis alike."""
    writer, late = make(settings), make(settings)
    try:
        writer.add("jti", "short", clock.time() + 30)
        assert late.is_revoked("short", None)  # before its listener is ready: Redis
        assert wait_until(late._healthy.is_set)
        clock.advance(29)
        assert late.is_revoked("short", None)  # from memory
        clock.advance(1)
        assert not late.is_revoked("short", None)
        fresh = make(settings)  # loads only what still matters, asks Redis meanwhile
        try:
            assert not fresh.is_revoked("short", None)
            assert wait_until(fresh._healthy.is_set)
            assert not fresh.is_revoked("short", None)
        finally:
            fresh.stop()
    finally:
        writer.stop()
        late.stop()
