"""The process Redis client and key naming.

All keys start with ``settings.redis_prefix`` so several deployments (or test runs)
can share one Redis. Stream partitions use a hash tag (``{p}``) so that a Redis Cluster
keeps a partition's stream and its dedupe keys on one shard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from ccweb.config import Settings, get_settings

_clients: dict[tuple[str, float, float, int], redis.Redis] = {}


def redis_options(settings: Settings, blocking_ms: int = 0) -> dict[str, object]:
    """Keyword arguments for every Redis client of the project (also handed to the
    ``limits`` library's storage), so that no client can wait on Redis without bound.

    Why each one:

    * ``socket_timeout`` — a Redis that stops answering (SIGSTOP, a stalled VM, a full
      network buffer) is not noticed by TCP for minutes; without this a command and the
      request that sent it wait forever. A client that issues blocking reads
      (``XREADGROUP BLOCK``) passes ``blocking_ms`` so the read may last that long plus
      the normal bound.
    * ``socket_connect_timeout`` — a SYN to a host that is gone is retried by the kernel
      for over a minute.
    * ``retry`` — redis-py retries a failed command ten times with backoff by default, on
      timeouts too, which turns a 1 s bound into 10+ s. Here a command is retried once,
      at once, and only after a connection error (a pooled connection that died when
      Redis restarted: the retry reconnects); a timeout is never retried.
    """
    return {
        "socket_timeout": settings.redis_timeout_s + blocking_ms / 1000,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "health_check_interval": 30,
    }


# Connections one client may open in a process (redis-py's own default is 100, which
# 200 concurrent requests of one process exceed: MaxConnectionsError).
MAX_CONNECTIONS = 256


def get_redis(settings: Settings | None = None, *, blocking_ms: int = 0) -> redis.Redis:
    """The process client for ``settings.redis_url`` (one per URL and timeout: the worker,
    which blocks in XREADGROUP for ``blocking_ms``, gets a client of its own)."""
    settings = settings or get_settings()
    ident = (
        settings.redis_url,
        settings.redis_timeout_s,
        settings.redis_connect_timeout_s,
        blocking_ms,
    )
    client = _clients.get(ident)
    if client is None:
        client = _clients[ident] = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            max_connections=MAX_CONNECTIONS,
            **redis_options(settings, blocking_ms),  # type: ignore[arg-type]
        )
    return client


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


class PerRedis(Generic[S]):
    """One long-lived object per process for the current Redis URL and key prefix (a
    listener greenlet, an in-process cache), made by ``make(client, settings)``; made
    anew — the old one stopped — when the settings point elsewhere (tests do)."""

    def __init__(self, make: Callable[[redis.Redis, Settings], S]) -> None:
        self._make = make
        self._current: tuple[str, S] | None = None

    def get(self) -> S:
        s = get_settings()
        ident = f"{s.redis_url}|{s.redis_prefix}"
        if self._current is None or self._current[0] != ident:
            if self._current is not None:
                self._current[1].stop()
            self._current = (ident, self._make(get_redis(s), s))
        return self._current[1]

    def current(self) -> S | None:
        """The object if one was made (without making one)."""
        return None if self._current is None else self._current[1]


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
