"""Cached per-player views, valid while the player's version is unchanged.

Writers never touch this module: they say "player N changed" through their unit of
work's effects (:mod:`ccweb.effects`), which bump the version after commit
(:mod:`ccweb.player_versions`); a reader that sees the new version also sees the
committed data. Readers cache rendered views together with the version they read
*before* rendering; a stale version means re-render.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

from ccweb import redis_flush
from ccweb.player_versions import content_key, version_key
from ccweb.redis_client import get_redis, key


def view_key(user_id: int, view: str) -> str:
    return key("dash", view, user_id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or 0)


VIEW_TTL_S = 60  # upper bound on a cached view's life when nothing changes


def cached_view(
    user_id: int,
    view: str,
    today: str,
    build: Callable[[], tuple[Any, float | None]],
) -> tuple[str, str]:
    """Return ``(json_body, etag)`` of a per-player view, rendering it only when the
    player's version (or the UTC day) changed since it was cached.

    The version is read BEFORE rendering: a change committed while we render bumps the
    version past the one we store, so the next read renders again instead of serving
    the stale copy. ``build()`` returns the view and, optionally, how many seconds it stays
    right by the clock alone (e.g. until an event window opens or closes): the cached
    copy lives no longer than that.
    """
    client = get_redis()
    vkey, ckey = version_key(user_id), view_key(user_id, view)
    version, content, cached = client.mget(vkey, content_key(), ckey)
    version = f"{_text(version)}.{_text(content)}"
    if cached:
        # "version\nday\netag\nbody": no JSON parse of the body on a hit (compact JSON
        # never contains a raw newline)
        parts = _text(cached).split("\n", 3)
        if len(parts) == 4 and parts[0] == version and parts[1] == today:
            return parts[3], parts[2]  # (an entry in another format is simply a miss)
    data, limit = build()
    ttl_ms = VIEW_TTL_S * 1000
    if limit is not None:
        ttl_ms = max(1, min(ttl_ms, math.ceil(limit * 1000)))
    body = json.dumps(data, separators=(",", ":"), default=str)
    etag = hashlib.sha256(body.encode()).hexdigest()[:24]
    entry = f"{version}\n{today}\n{etag}\n{body}"
    # Not waited for: a late or lost fill only costs a render, and an entry stored after
    # a newer bump carries its older version, so it is never served.
    redis_flush.run([lambda pipe: pipe.set(ckey, entry, px=ttl_ms)], wait=False)
    return body, etag
