"""Fixtures for the worker/outbox tests (on top of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from ccweb import effects
from ccweb.config import Settings, set_settings
from tests.factories import create_user
from worker.handlers import activity
from worker.runner import GroupConsumer, Handler


@pytest.fixture
def user_id() -> int:
    return int(create_user()["id"])


@pytest.fixture
def fast_path_off() -> None:
    """Model a web process that died right after commit: only the relay publishes.
    (clean_state switches the fast path back on before the next test.)"""
    effects.FAST_PATH_ENABLED = False


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """Reclaim after 30 ms instead of 30 s so retries and dead-lettering run in a test
    (clean_state restores the run's settings afterwards)."""
    s = settings.with_overrides(worker_reclaim_idle_ms=30)
    set_settings(s)
    return s


@pytest.fixture
def make_consumer(rds: redis.Redis, settings: Settings) -> Callable[..., GroupConsumer]:
    """Build an ``activity`` GroupConsumer (groups ensured) against the real Redis."""

    def make(
        name: str = "c1",
        s: Settings | None = None,
        handler: Handler = activity.handle,
        group: str = activity.GROUP,
    ) -> GroupConsumer:
        consumer = GroupConsumer(rds, s or settings, group, handler, name)
        consumer.ensure_groups()
        return consumer

    return make
