"""The game engines are pure: these tests need no PostgreSQL or Redis.

``tests/conftest.py`` truncates every table and flushes Redis before each test through
an autouse fixture; overriding it here keeps this folder runnable (and fast) without
the services, and proves the engines never reach for them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ccweb.games import fairness


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """No database or Redis state to reset for pure engine tests."""
    yield


@pytest.fixture
def seeds() -> fairness.SeedPair:
    """A fresh, random seed pair per test: results must hold for any seed, not a lucky one."""
    return fairness.SeedPair.fresh()
