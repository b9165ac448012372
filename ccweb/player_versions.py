"""Per-player and content version numbers in Redis, bumped after every committed change.

Cached per-player views (dashboard, profile) are stored with the versions they were
rendered at (:mod:`ccweb.dashboard.cache`); a writer never touches a cache, it only says
"player N changed" through its unit of work's effects (:mod:`ccweb.effects`), which bump
``<prefix>:dash:ver:<uid>`` after commit. Works across processes (web and worker) because
the number lives in Redis. Content every player sees (events, missions) has one shared
version.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ccweb.redis_client import key


def version_key(user_id: int) -> str:
    return key("dash", "ver", user_id)


def content_key() -> str:
    return key("dash", "content")


def shop_stock_key() -> str:
    """Bumped whenever a limited product's stock changes (the catalog shows it)."""
    return key("shop", "stock")


def queue_bumps(
    pipe: Any, user_ids: Iterable[int], content: bool = False, keys: Iterable[str] = ()
) -> None:
    """Queue the version bumps on a Redis pipeline (``keys``: other version keys)."""
    for uid in user_ids:
        pipe.incr(version_key(uid))
    if content:
        pipe.incr(content_key())
    for k in keys:
        pipe.incr(k)
