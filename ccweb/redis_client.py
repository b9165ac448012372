"""The process Redis client and key naming.

All keys start with ``settings.redis_prefix`` so several deployments (or test runs)
can share one Redis. Stream partitions use a hash tag (``{p}``) so that a Redis Cluster
keeps a partition's stream and its dedupe keys on one shard.
"""

from __future__ import annotations

import hashlib

import redis

from ccweb.config import Settings, get_settings

_client: redis.Redis | None = None
_client_url: str | None = None


def get_redis(settings: Settings | None = None) -> redis.Redis:
    global _client, _client_url
    settings = settings or get_settings()
    if _client is None or _client_url != settings.redis_url:
        _client = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            health_check_interval=30,
            socket_keepalive=True,
            max_connections=256,
        )
        _client_url = settings.redis_url
    return _client


def key(*parts: object, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return ":".join([settings.redis_prefix, *(str(p) for p in parts)])


_SCRIPTS: dict[str, str] = {}


def script_sha(body: str) -> str:
    """The name Redis gives a Lua script (its SHA1) for EVALSHA, computed here without a
    round trip; the script is remembered so :func:`reload_scripts` can give it back to a
    Redis that forgot it (restart, failover, SCRIPT FLUSH)."""
    sha = hashlib.sha1(body.encode()).hexdigest()
    _SCRIPTS[sha] = body
    return sha


def reload_scripts(client: redis.Redis) -> None:
    pipe = client.pipeline(transaction=False)
    for body in _SCRIPTS.values():
        pipe.script_load(body)
    pipe.execute()
