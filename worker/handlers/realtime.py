"""``realtime`` group: turn committed events into the players' push messages.

Reading the event streams (rather than pushing from each request) makes the push path the
same for every producer — web requests, the worker's own progress events, the relay
re-publishing after a crash — and keeps the request path free of it. Each push goes
through :func:`realtime.history.queue_push` (number, keep, announce — atomically, once
per event thanks to its dedupe key), all of a batch in one Redis pipeline. No database.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.exceptions import NoScriptError

from ccweb.redis_client import get_redis, reload_scripts
from realtime.history import queue_push
from realtime.messages import PUSHED_EVENT_TYPES, to_messages
from worker.entries import Entry

GROUP = "realtime"


def handle(entries: Sequence[Entry]) -> None:
    wanted = [e for e in entries if e.event_type in PUSHED_EVENT_TYPES]
    if not wanted:
        return
    client = get_redis()
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        for entry in wanted:
            for n, message in enumerate(to_messages(entry.envelope)):
                queue_push(pipe, entry.envelope["user_id"], message, f"{entry.event_id}:{n}")
        results = pipe.execute(raise_on_error=False)
        errors = [r for r in results if isinstance(r, Exception)]
        if attempt == 1 and any(isinstance(r, NoScriptError) for r in errors):
            reload_scripts(client)  # Redis restarted or flushed its scripts: send again
            continue
        if errors:
            raise errors[0]
        return
