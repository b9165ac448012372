"""Moving-window rate limits in Redis (the ``limits`` library), shared by every process.

Used for failed logins (lockout) and purchase velocity. The storage is the library's
Redis storage with its two moving-window calls stamped by :mod:`ccweb.clock` instead of
``time.time()`` read inside the library, so a window passes when the application's
clock says so (tests move the clock rather than wait out the window). The Lua scripts
and keys are the library's own.
"""

from __future__ import annotations

import threading

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from ccweb import clock
from ccweb.config import get_settings
from ccweb.redis_client import MAX_CONNECTIONS, redis_options


class _ClockedRedisStorage(RedisStorage):
    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        args = [clock.time(), limit, expiry, amount]
        return bool(self.lua_acquire_moving_window([self.prefixed_key(key)], args))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = clock.time()
        window = self.lua_moving_window([self.prefixed_key(key)], [now - expiry, limit])
        return (float(window[0]), int(window[1])) if window else (now, 0)


_limiter: tuple[str, MovingWindowRateLimiter] | None = None
_lock = threading.Lock()


def limiter() -> MovingWindowRateLimiter:
    """The process's limiter for the configured Redis URL and key prefix."""
    global _limiter
    s = get_settings()
    ident = s.redis_url + s.redis_prefix
    with _lock:
        if _limiter is None or _limiter[0] != ident:
            storage = _ClockedRedisStorage(
                s.redis_url,
                key_prefix=f"{s.redis_prefix}:limits",
                max_connections=MAX_CONNECTIONS,  # redis-py's default (100) is too few
                **redis_options(s),  # type: ignore[arg-type]  # bounded waits, as every client
            )
            _limiter = (ident, MovingWindowRateLimiter(storage))
        return _limiter[1]


def per_window(limit: int, window_s: int) -> RateLimitItem:
    return RateLimitItemPerSecond(limit, window_s)


def retry_after_s(item: RateLimitItem, *identifiers: str) -> int:
    """Whole seconds until the window lets one more through (at least 1)."""
    reset_at = limiter().get_window_stats(item, *identifiers).reset_time
    return max(1, int(reset_at - clock.time()) + 1)
