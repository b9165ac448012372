"""Each player's push stream: an increasing ``seq``, an ``epoch``, a bounded history, and the
fan-out channel — all in Redis, written by ONE Lua script so that numbering, storing and
announcing a message is atomic (Centrifugo's offset + epoch, on plain Redis).

Keys of player ``u`` (partition ``p`` = ``events.partition_of(u)``, in the hash tag so a
Redis Cluster keeps a player's keys and the partition's stream on one shard):

* ``<prefix>:rt:{p}:epoch:<u>`` — the stream's epoch. Created when missing; when it is
  missing the history behind it is gone too (Redis restarted empty, the keys expired
  after ``HISTORY_TTL_S`` of silence, or were evicted), so the script starts a new epoch
  and drops whatever is left of the old history and counter: a client that resumes with
  the old epoch is told to resync instead of silently missing messages.
* ``<prefix>:rt:{p}:seq:<u>`` — the last ``seq`` given out (INCR).
* ``<prefix>:rt:{p}:hist:<u>`` — a Redis Stream of the last ``HISTORY_LEN`` messages,
  entry id ``<seq>-1``, so ``XRANGE (since`` reads exactly the messages after ``since``.
* ``<prefix>:rt:{p}:seen:<event_id>:<n>`` — the n-th push of an event was made (SET NX
  with the publish dedupe TTL): a redelivered or re-published event pushes nothing twice.

Announcement: ``PUBLISH <prefix>:rt:ch:{p} "<user_id> <epoch> <seq> <message-json>"``; each
web process's hub subscribes to every partition channel and forwards the JSON text
untouched to the player's sockets (no parse per socket). The message JSON already carries
its ``seq``.
"""

from __future__ import annotations

from typing import Any

import redis

from ccweb.config import Settings, get_settings
from ccweb.events import partition_of
from ccweb.redis_client import script_sha

HISTORY_LEN = 200  # messages kept per player for reconnects
HISTORY_TTL_S = 24 * 3600  # a silent player's stream (and epoch) is forgotten after this

_PUSH_LUA = """
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[4]) then
  return false
end
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  local t = redis.call('TIME')
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('SET', KEYS[1], epoch)
end
local seq = redis.call('INCR', KEYS[2])
local msg = string.sub(ARGV[1], 1, -2) .. ',"seq":' .. seq .. '}'
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[2], seq .. '-1', 'm', msg)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('PUBLISH', KEYS[5], ARGV[5] .. ' ' .. epoch .. ' ' .. seq .. ' ' .. msg)
return seq
"""
_PUSH_SHA = script_sha(_PUSH_LUA)


def _base(user_id: int, settings: Settings) -> str:
    return f"{settings.redis_prefix}:rt:{{{partition_of(user_id, settings)}}}"


def epoch_key(user_id: int, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    return f"{_base(user_id, s)}:epoch:{user_id}"


def seq_key(user_id: int, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    return f"{_base(user_id, s)}:seq:{user_id}"


def history_key(user_id: int, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    return f"{_base(user_id, s)}:hist:{user_id}"


def channel(partition: int, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    return f"{s.redis_prefix}:rt:ch:{{{partition}}}"


def all_channels(settings: Settings | None = None) -> list[str]:
    s = settings or get_settings()
    return [channel(p, s) for p in range(s.stream_partitions)]


def queue_push(
    pipe: Any,
    user_id: int,
    message_json: str,
    dedupe_id: str,
    settings: Settings | None = None,
) -> None:
    """Queue one push on a Redis pipeline: number it, keep it in the history, announce it.
    ``message_json`` is a JSON object without ``seq`` (the script adds it);
    ``dedupe_id`` names this push (``<event_id>:<n>``) so a repeat is a no-op (result
    None instead of the seq)."""
    s = settings or get_settings()
    base = _base(user_id, s)
    pipe.evalsha(
        _PUSH_SHA,
        5,
        f"{base}:epoch:{user_id}",
        f"{base}:seq:{user_id}",
        f"{base}:hist:{user_id}",
        f"{base}:seen:{dedupe_id}",
        channel(partition_of(user_id, s), s),
        message_json,
        HISTORY_LEN,
        HISTORY_TTL_S,
        s.publish_dedupe_ttl_s,
        user_id,
    )


def position(client: redis.Redis, user_id: int) -> tuple[str | None, int]:
    """The player's ``(epoch, last seq)``; epoch None when the stream has none yet (the
    first push will create one)."""
    epoch, seq = client.mget(epoch_key(user_id), seq_key(user_id))
    return (_text(epoch) if epoch else None), int(seq or 0)


def read_since(
    client: redis.Redis, user_id: int, epoch: str | None, since: int
) -> tuple[str | None, list[tuple[int, str]]] | None:
    """What a client that saw up to ``since`` in ``epoch`` missed: ``(current epoch,
    [(seq, message_json), …])`` in order, or None when that cannot be told exactly (a
    different or lost epoch, or ``since`` older than the history): the client must resync.
    """
    pipe = client.pipeline(transaction=False)
    pipe.get(epoch_key(user_id))
    pipe.get(seq_key(user_id))
    pipe.xrange(history_key(user_id), min=f"({since}-1", max="+")
    current, last, entries = pipe.execute()
    current = _text(current) if current else None
    last = int(last or 0)
    if current is None:
        return None if since > 0 or epoch else (None, [])
    if epoch != current or since > last:
        return None
    got = [
        (int(_text(eid).split("-")[0]), _text(fields.get("m") or fields.get(b"m")))
        for eid, fields in entries
    ]
    if since < last and (not got or got[0][0] != since + 1):
        return None  # the history was trimmed past what the client saw
    return current, got


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
