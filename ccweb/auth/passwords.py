"""Password hashing with argon2id (argon2-cffi). Costs come from settings so tests can
run cheap hashes while production keeps OWASP-level parameters.

In the gevent web server a hash (≈ 40 ms of CPU at the default cost, by design) would
hold the process's only event loop: every request of that process waits behind each
login or signup. So under gevent the hash runs in the hub's thread pool — a real OS
thread; argon2's C code releases the GIL — and the loop goes on serving the others
(``make loadtest``: logins at the ramp-up were the only 503s before).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ccweb.config import get_settings


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hasher() -> PasswordHasher:
    s = get_settings()
    return _hasher(s.argon2_time_cost, s.argon2_memory_kib)


T = TypeVar("T")


def off_loop(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in gevent's thread pool when this process runs gevent (monkey-
    patched), else right here."""
    if "gevent" in sys.modules:
        from gevent import get_hub, monkey

        if monkey.is_module_patched("threading"):
            result: T = get_hub().threadpool.apply(fn, args)
            return result
    return fn(*args)


def hash_password(password: str) -> str:
    return off_loop(hasher().hash, password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("not-a-real-password")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-ish time: an unknown user still pays for one hash verification."""
    try:
        ok = off_loop(hasher().verify, password_hash or _dummy_hash(), password)
        return bool(ok) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:  # cheap: parses the parameters
    return hasher().check_needs_rehash(password_hash)
