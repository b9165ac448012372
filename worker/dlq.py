"""``python -m worker.dlq list|replay``: look at dead letters and hand them back.

  python -m worker.dlq list [--group G] [--limit N] [--json]
  python -m worker.dlq replay (--id DLQ_ID ... | --all) [--group G]

A dead letter is an entry one consumer group gave up on (``<prefix>:dlq``, written by
:meth:`worker.runner.GroupConsumer.dead_letter` with the group, the original stream and
entry id, the envelope and the last error). Once the cause is fixed (a handler bug
deployed, the data repaired), ``replay`` appends the entry to that group's own retry
stream ``<prefix>:retry:<group>`` and deletes it from the dead-letter stream in one
script, so an entry is never in both or in neither.

Why a per-group retry stream rather than the original partition stream: every group
reads the partition streams, so putting the entry back there would hand it to the groups
that already handled it, trusting their event-id memory (``processed_events``) to drop
it — which is forgotten after ``CC_PROCESSED_RETENTION_H``, and a sink without such a
memory (analytics, Kafka) would count the event twice. Only the group that failed reads
its retry stream; its entries are deleted once acked, and one that fails again goes
back to the dead-letter stream with a fresh failure count. Entries replayed together
keep their dead-letter order; relative to the partition stream they are late (an event
that failed for a day is applied a day late), which the handlers accept: they key their
effects by event time and id, not by arrival order.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import redis

from ccweb.config import Settings, get_settings
from ccweb.redis_client import get_redis
from worker.runner import dlq_key, ensure_group, retry_key

# Move one dead letter: append to the retry stream only if this call deleted it from the
# dead-letter stream, so two operators replaying at once cannot both hand it back.
_MOVE_LUA = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then
  return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
end
return false
"""

# Fields of a stream entry as published (ccweb.outbox.publisher): what a replay restores.
ENTRY_FIELDS = ("event_id", "event_type", "user_id", "data")


def dead_letters(
    client: redis.Redis, settings: Settings, group: str | None = None, limit: int | None = None
) -> list[tuple[str, dict[str, str]]]:
    """Dead letters oldest first, optionally of one group, at most ``limit``."""
    out: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while limit is None or len(out) < limit:
        page: Any = client.xrange(dlq_key(settings), min=start, count=500)
        if not page:
            break
        out.extend((i, f) for i, f in page if group is None or f.get("group") == group)
        start = "(" + page[-1][0]
    return out[:limit] if limit is not None else out


def replay(
    client: redis.Redis,
    settings: Settings,
    ids: list[str] | None = None,
    group: str | None = None,
) -> list[tuple[str, str, str]]:
    """Replay the dead letters named by ``ids`` (all of them when ``None``), limited to
    ``group`` if given. Returns ``(dead-letter id, group, new retry-stream entry id)`` per
    replayed entry; unknown ids are skipped (another operator replayed them already)."""
    if ids is None:
        selected = dead_letters(client, settings, group)
    else:
        selected = []
        for dlq_id in ids:
            found: Any = client.xrange(dlq_key(settings), min=dlq_id, max=dlq_id)
            selected.extend((i, f) for i, f in found if group is None or f.get("group") == group)
    done = []
    ensured: set[str] = set()
    for dlq_id, fields in selected:
        target = fields["group"]
        stream = retry_key(settings, target)
        if target not in ensured:  # the group may not have run since this key was added
            ensure_group(client, stream, target)
            ensured.add(target)
        entry = {k: fields.get(k, "") for k in ENTRY_FIELDS}
        entry["replay_of"] = f"{fields.get('stream', '')} {fields.get('entry_id', '')}"
        flat = [x for kv in entry.items() for x in kv]
        new_id = client.eval(_MOVE_LUA, 2, dlq_key(settings), stream, dlq_id, *flat)
        if new_id:  # else replayed concurrently by someone else
            done.append((dlq_id, target, str(new_id)))
    return done


def _describe(dlq_id: str, f: dict[str, str]) -> str:
    at = f.get("dead_lettered_at")
    when = datetime.fromtimestamp(float(at), UTC).isoformat(timespec="seconds") if at else "?"
    error = " ".join((f.get("error") or "").split())[:160]
    return (
        f"{dlq_id}  group={f.get('group')}  {f.get('event_type')}  event={f.get('event_id')}"
        f"  user={f.get('user_id') or '-'}  failures={f.get('failures', '?')}"
        f"  deliveries={f.get('deliveries')}  at={when}\n    {error}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.dlq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="show dead letters, oldest first")
    ls.add_argument("--group", help="only this consumer group's")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    rp = sub.add_parser("replay", help="hand dead letters back to their group")
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", action="append", dest="ids", help="dead-letter id (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter (of --group)")
    rp.add_argument("--group", help="only this consumer group's")
    args = parser.parse_args(argv)

    settings = get_settings()
    client = get_redis(settings)
    if args.command == "list":
        rows = dead_letters(client, settings, args.group, args.limit)
        for dlq_id, fields in rows:
            print(json.dumps({"id": dlq_id, **fields}) if args.json else _describe(dlq_id, fields))
        if not args.json:
            print(f"{len(rows)} dead letter(s) shown, {client.xlen(dlq_key(settings))} in total")
        return 0
    replayed = replay(client, settings, None if args.all else args.ids, args.group)
    for dlq_id, group, new_id in replayed:
        print(f"replayed {dlq_id} to {retry_key(settings, group)} as {new_id}")
    print(f"{len(replayed)} dead letter(s) replayed")
    return 0 if replayed or args.all else 1


if __name__ == "__main__":
    sys.exit(main())
