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
from collections.abc import Iterable
from typing import Any

import redis

from ccweb.config import Settings, get_settings
from ccweb.events import partition_of, stream_key
from ccweb.metrics import OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

_PUBLISH_LUA = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], '*', 'event_id', ARGV[2], 'event_type', ARGV[3],
                    'user_id', ARGV[4], 'data', ARGV[5])
end
return false
"""


class Publisher:
    def __init__(self, client: redis.Redis, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.redis = client
        self._script = client.register_script(_PUBLISH_LUA)

    def _keys(self, partition: int, event_id: str) -> list[str]:
        stream = stream_key(partition, self.settings)
        return [stream, f"{stream}:seen:{event_id}"]

    def publish(self, items: Iterable[tuple[int, dict[str, Any] | str]], path: str) -> list[bool]:
        """Publish ``(partition, envelope)`` pairs in order; returns, per item, whether it
        was new to the stream (False = already published earlier)."""
        items = list(items)
        if not items:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for partition, envelope in items:
            env = json.loads(envelope) if isinstance(envelope, str) else envelope
            data = envelope if isinstance(envelope, str) else json.dumps(envelope, default=str)
            user_id = "" if env.get("user_id") is None else str(env["user_id"])
            self._script(
                keys=self._keys(partition, env["event_id"]),
                args=[
                    self.settings.publish_dedupe_ttl_s,
                    env["event_id"],
                    env["event_type"],
                    user_id,
                    data,
                ],
                client=pipe,
            )
        results = [bool(r) for r in pipe.execute()]
        fresh = sum(results)
        OUTBOX_PUBLISHED.labels(path=path, result="new").inc(fresh)
        OUTBOX_PUBLISHED.labels(path=path, result="duplicate").inc(len(results) - fresh)
        return results

    def publish_envelopes(self, envelopes: list[dict[str, Any]], path: str = "fast") -> list[bool]:
        return self.publish(
            ((partition_of(e["user_id"], self.settings), e) for e in envelopes), path
        )
