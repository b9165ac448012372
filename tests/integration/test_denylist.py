"""The in-process denylist stays correct across processes (two instances = two web
processes sharing one Redis) and never misses a revocation while it is catching up."""

from __future__ import annotations

from ccweb import clock as app_clock
from ccweb.auth.denylist import Denylist
from ccweb.redis_client import get_redis
from tests.processes import wait_for


def make(settings) -> Denylist:
    return Denylist(get_redis(settings), settings)


def test_revocation_on_one_process_reaches_another(settings):
    a, b = make(settings), make(settings)
    try:
        assert not b.is_revoked("j1", "f1")  # starts b's listener
        wait_for(b._healthy.is_set)
        a.add("jti", "j1", app_clock.time() + 60)
        wait_for(lambda: b.is_revoked("j1", None))
        a.add("fam", "f9", app_clock.time() + 60)
        wait_for(lambda: b.is_revoked("other-jti", "f9"))
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
        wait_for(late._healthy.is_set)
        assert late.is_revoked("old", None)  # now from memory, loaded at start
    finally:
        a.stop()
        late.stop()


def test_expired_entries_do_not_count(settings):
    d = make(settings)
    try:
        d.add("jti", "gone", app_clock.time() - 1)
        assert not d.is_revoked("gone", None)
        wait_for(d._healthy.is_set)
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
        wait_for(late._healthy.is_set)
        clock.advance(29)
        assert late.is_revoked("short", None)  # from memory
        clock.advance(1)
        assert not late.is_revoked("short", None)
        fresh = make(settings)  # loads only what still matters, asks Redis meanwhile
        try:
            assert not fresh.is_revoked("short", None)
            wait_for(fresh._healthy.is_set)
            assert not fresh.is_revoked("short", None)
        finally:
            fresh.stop()
    finally:
        writer.stop()
        late.stop()
