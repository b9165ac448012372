"""Publish envelopes to the partitioned Redis Streams, at most once per event id.

Both the fast path (right after a commit) and the relay (for whatever the fast path
missed) go through the same Lua script, which atomically remembers the event id
(``SET NX EX``) and appends the entry. A relay that dies after XADD but before
marking its rows published therefore re-publishes nothing when it restarts; consumers
also dedupe by ``event_id``, so even past the memory window nothing counts twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import redis
from redis.exceptions import NoScriptError

from ccweb.config import Settings, get_settings
from ccweb.events import partition_of, stream_key
from ccweb.metrics import OUTBOX_PUBLISHED
from ccweb.redis_client import reload_scripts, script_sha

log = logging.getLogger(__name__)

_PUBLISH_LUA = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], '*', 'event_id', ARGV[2], 'event_type', ARGV[3],
                    'user_id', ARGV[4], 'data', ARGV[5])
end
return false
"""


_PUBLISH_SHA = script_sha(_PUBLISH_LUA)


class Publisher:
    """Queues the publish script as EVALSHA (no SCRIPT EXISTS round trip per pipeline,
    which redis-py's registered scripts would add). A Redis that forgot the script
    answers NOSCRIPT; whoever sends the pipeline reloads it (``reload_scripts``) and
    sends those commands again."""

    def __init__(self, client: redis.Redis, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.redis = client

    def queue_raw(
        self,
        pipe: Any,
        partition: int,
        event_id: str,
        event_type: str,
        user_id: int | None,
        data: str,
    ) -> None:
        """Add one publish of an already-serialized envelope to ``pipe`` (its result:
        the entry id, or None if the event was already seen)."""
        stream = stream_key(partition, self.settings)
        pipe.evalsha(
            _PUBLISH_SHA,
            2,
            stream,
            f"{stream}:seen:{event_id}",
            self.settings.publish_dedupe_ttl_s,
            event_id,
            event_type,
            "" if user_id is None else str(user_id),
            data,
        )

    def queue(self, pipe: Any, partition: int, envelope: dict[str, Any] | str) -> None:
        env = json.loads(envelope) if isinstance(envelope, str) else envelope
        data = envelope if isinstance(envelope, str) else json.dumps(envelope, default=str)
        self.queue_raw(
            pipe, partition, env["event_id"], env["event_type"], env.get("user_id"), data
        )

    def queue_envelopes(self, pipe: Any, envelopes: list[dict[str, Any]]) -> None:
        for e in envelopes:
            self.queue(pipe, partition_of(e["user_id"], self.settings), e)
        OUTBOX_PUBLISHED.labels(path="fast", result="sent").inc(len(envelopes))

    def _run(self, fill: Callable[[Any], None], path: str) -> list[bool]:
        """Execute one pipeline of publishes (reloading the script once if Redis lost it);
        per publish, whether it was new to the stream."""
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            fill(pipe)
            results = pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                reload_scripts(self.redis)  # Redis restarted or flushed its scripts
                continue
            for r in results:
                if isinstance(r, Exception):
                    raise r
            break
        fresh = [bool(r) for r in results]
        OUTBOX_PUBLISHED.labels(path=path, result="new").inc(sum(fresh))
        OUTBOX_PUBLISHED.labels(path=path, result="duplicate").inc(len(fresh) - sum(fresh))
        return fresh

    def publish(self, items: Iterable[tuple[int, dict[str, Any] | str]], path: str) -> list[bool]:
        """Publish ``(partition, envelope)`` pairs in order, in one pipeline; returns, per
        item, whether it was new to the stream (False = already published earlier)."""
        items = list(items)
        if not items:
            return []

        def fill(pipe: Any) -> None:
            for partition, envelope in items:
                self.queue(pipe, partition, envelope)

        return self._run(fill, path)

    def publish_rows(
        self,
        rows: list[tuple[int, str, str, int | None, int]],
        envelopes: Callable[[list[int]], dict[int, str]],
        path: str,
    ) -> int:
        """Publish outbox rows ``(partition, event_id, event_type, user_id, row_id)`` that
        were probably published already (the relay's case): one cheap EXISTS per row on
        the dedupe keys first; only for what Redis has not seen are the envelopes loaded
        (``envelopes(row_ids)``) and the full script run — still atomic, so a race with
        the fast path publishes once. Returns how many were new to the stream."""
        if not rows:
            return 0
        check = self.redis.pipeline(transaction=False)
        for partition, event_id, *_ in rows:
            check.exists(f"{stream_key(partition, self.settings)}:seen:{event_id}")
        missing = [r for r, seen in zip(rows, check.execute(), strict=True) if not seen]
        OUTBOX_PUBLISHED.labels(path=path, result="duplicate").inc(len(rows) - len(missing))
        if not missing:
            return 0
        data = envelopes([r[4] for r in missing])

        def fill(pipe: Any) -> None:
            for partition, event_id, event_type, user_id, row_id in missing:
                self.queue_raw(pipe, partition, event_id, event_type, user_id, data[row_id])

        return sum(self._run(fill, path))

    def publish_envelopes(self, envelopes: list[dict[str, Any]], path: str = "fast") -> list[bool]:
        return self.publish(
            ((partition_of(e["user_id"], self.settings), e) for e in envelopes), path
        )
