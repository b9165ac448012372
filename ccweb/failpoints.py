"""Failpoints: named places where a test can make a real process fail on purpose.

Fault tests must prove that a crash at the worst moment (after the money committed,
before the response or the after-commit effects) loses nothing and applies nothing twice.
A SIGKILL from outside cannot hit that microsecond window reliably, so the code names the
window — ``failpoints.hit("after_commit")`` — and a test process started with
``CC_FAILPOINTS="after_commit=kill"`` dies exactly there (the idea of FreeBSD's and
TiKV's fail points). Unset (production), :func:`hit` is one dict lookup on an empty dict.

Actions: ``kill`` (SIGKILL this process), ``exit`` (``os._exit(1)``), ``raise``
(:class:`FailpointError`), ``sleep:<seconds>``. ``name=action@N`` fires only on the N-th
hit (1-based) of that name in this process, e.g. ``after_commit=kill@3``.
"""

from __future__ import annotations

import os
import signal
import time

from ccweb.config import get_settings


class FailpointError(BaseException):
    """Raised by a ``raise`` failpoint. A ``BaseException``, like ``SystemExit``: it
    models an abort at that place (a crash), so the ``except Exception`` handlers that
    keep a process serving — best-effort after-commit hooks, error-to-500 mapping, a
    consumer's per-entry retry — must not absorb it."""


_parsed: dict[str, tuple[str, int]] | None = None
_hits: dict[str, int] = {}


def parse(spec: str) -> dict[str, tuple[str, int]]:
    """``"a=kill,b=sleep:0.5@2"`` → ``{"a": ("kill", 0), "b": ("sleep:0.5", 2)}``."""
    out: dict[str, tuple[str, int]] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, _, action = item.partition("=")
        action, _, nth = action.partition("@")
        if not name or not action:
            raise ValueError(f"bad failpoint {item!r} (want name=action[@n])")
        out[name.strip()] = (action.strip(), int(nth) if nth else 0)
    return out


def _table() -> dict[str, tuple[str, int]]:
    global _parsed
    if _parsed is None:
        _parsed = parse(get_settings().failpoints)
    return _parsed


def reset(spec: str | None = None) -> None:
    """Forget the parsed table (tests in one process); ``spec`` replaces the setting."""
    global _parsed
    _parsed = None if spec is None else parse(spec)
    _hits.clear()


def hit(name: str) -> None:
    """Run the action configured for ``name``, if any."""
    table = _table()
    if not table or name not in table:
        return
    action, nth = table[name]
    count = _hits[name] = _hits.get(name, 0) + 1
    if nth and count != nth:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "exit":
        os._exit(1)
    elif action == "raise":
        raise FailpointError(f"failpoint {name}")
    elif action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
    else:
        raise ValueError(f"unknown failpoint action {action!r}")
