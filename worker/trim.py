"""Trim streams only behind the slowest consumer group (SPEC §4).

For each partition stream the safe point is the oldest entry any group still needs:
its oldest pending entry, or else the last entry it was delivered. ``XTRIM MINID ~``
drops everything before that point.
"""

from __future__ import annotations

import redis

from ccweb.config import Settings
from ccweb.events import all_stream_keys


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def safe_trim_point(client: redis.Redis, stream: str) -> str | None:
    groups = client.xinfo_groups(stream)
    if not groups:
        return None  # no consumer yet: keep everything
    points = []
    for g in groups:
        oldest = None
        if int(g.get("pending") or 0) > 0:
            # None when the group acked everything since XINFO: then the last-delivered
            # id read by XINFO (older than or equal to the current one) is still safe
            oldest = client.xpending(stream, g["name"])["min"]
        points.append(oldest or g["last-delivered-id"])
    return min(points, key=_id_tuple)


def trim_streams(
    client: redis.Redis, settings: Settings, *, approximate: bool = True
) -> dict[str, int]:
    """Trim every partition stream behind its slowest group; returns entries removed per
    stream. ``approximate`` (``MINID ~``, the default) only drops whole radix-tree nodes,
    which is cheap but may remove nothing from a short stream."""
    trimmed = {}
    for stream in all_stream_keys(settings):
        if not client.exists(stream):
            continue
        point = safe_trim_point(client, stream)
        if point and point != "0-0":
            trimmed[stream] = int(client.xtrim(stream, minid=point, approximate=approximate))
    return trimmed
