"""A Redis pub/sub subscription that outlives Redis: subscribe, hand every poll to a
callback, and on any error close, wait a doubling backoff and subscribe again.

Why one helper: each process has long-lived listeners (the feature-flag cache, the
realtime hub) with the same survival rules — a Redis restart must not kill the thread,
reconnects must not hammer a Redis that is coming back, and a listener must be told when
its subscription was lost (announcements published meanwhile are gone, so it has to catch
up by other means). What each listener does with a message stays with it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis

log = logging.getLogger(__name__)

POLL_S = 1.0  # get_message timeout: how often the callback is polled with no message


def listen_with_backoff(
    client: redis.Redis,
    channels: Sequence[str],
    stop: threading.Event,
    on_poll: Callable[[dict[str, Any] | None], bool],
    on_lost: Callable[[], None],
    *,
    name: str,
    backoff_s: tuple[float, float],
) -> None:
    """Run until ``stop`` is set. ``on_poll(message or None)`` is called after every poll
    (None: nothing arrived within ``POLL_S``); it returns True once the subscription is
    confirmed, which resets the backoff. ``on_lost()`` runs whenever a subscription ends
    (error or stop), before the wait. ``backoff_s`` is (first wait, longest wait)."""
    wait = backoff_s[0]
    while not stop.is_set():
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(*channels)
            while not stop.is_set():
                if on_poll(pubsub.get_message(timeout=POLL_S)):
                    wait = backoff_s[0]
        except Exception:
            log.warning("%s: lost Redis; reconnecting", name, exc_info=True)
        finally:
            on_lost()
            with contextlib.suppress(Exception):
                pubsub.close()
        stop.wait(wait)
        wait = min(wait * 2, backoff_s[1])
