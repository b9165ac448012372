"""Consumer groups: name → batch handler.

The core groups always run. A sink's group (``kafka``, ``analytics``) runs only when its
sink is configured (``KAFKA_BOOTSTRAP_SERVERS``, ``CLICKHOUSE_URL``): a group exists on
the streams from the first time it runs, and the streams are trimmed only behind the
slowest group, so a group that nobody consumes would keep every entry forever. (A sink
that is switched off for good leaves its group behind: delete it with ``XGROUP
DESTROY`` on each stream.) Their modules are imported only then, so a worker without
sinks never loads the Kafka or ClickHouse clients."""

from __future__ import annotations

import importlib

from ccweb.config import Settings
from worker.handlers import activity, progress, realtime, segments
from worker.runner import Handler

GROUPS: dict[str, Handler] = {
    activity.GROUP: activity.handle,
    progress.GROUP: progress.handle,
    realtime.GROUP: realtime.handle,
    segments.GROUP: segments.handle,
}

# Per-group override of CC_WORKER_LINGER_MS (the wait that lets a small batch fill up):
# realtime pushes are waited for by a person, and its batches are cheap (one Redis
# pipeline, no transaction), so it handles a trickle at once.
# analytics: ClickHouse wants big, rare inserts — a trickle waits 0.5 s for more (so at
# most about two INSERTs a second, and commit → queryable p95 stays well under the 2 s
# target: bench/pipeline.py measured p95 1.2–1.9 s with 1 s here). SPEC §4: flush at
# 1 s, 5 000 rows or 1 MB; the handler also splits its INSERTs at 1 MB.
# activity, segments and kafka have no person waiting (DAU; a segment within 2 minutes;
# Kafka consumers downstream): at ~100 events/s a 50 ms linger gave batches of a few
# entries, each paying the read, the transaction and the ack — longer waits make fuller
# batches and cost the worker less CPU per event (make loadtest, loadtests/RESULTS.md).
LINGER_MS: dict[str, int] = {
    realtime.GROUP: 0,
    "analytics": 500,
    activity.GROUP: 1000,
    "segments": 1000,
    "kafka": 250,
}

# Per-group override of CC_WORKER_BATCH: entries per read of EACH stream (XREADGROUP's
# COUNT is per stream), so one handler call may get up to this × the partitions.
# kafka: 500 per produce-and-flush measured best on the dev broker (≈ 5 000 msg/s; 200 →
# 4 300/s, 1 000 no faster).
BATCH: dict[str, int] = {"kafka": 500, "analytics": 5000}

# Lanes (``python -m worker --lane live|bulk``): the groups a person waits for — a push,
# an event's progress bar — run in the ``live`` lane together with the outbox relay
# (every event passes it), at normal CPU priority; everything else (DAU, segments, the
# sinks, the scheduled jobs) runs in the ``bulk`` lane, which may be niced. In one process
# both compete for one interpreter lock and one niceness: at 500 players the niced
# single worker let gameplay → progress visible reach 680 ms p95, while un-nicing it
# took the CPU from the requests instead (loadtests/RESULTS.md). ``all`` (the default)
# runs both lanes in one process.
LIVE_GROUPS = (progress.GROUP, realtime.GROUP)
LANES = ("all", "live", "bulk")


def in_lane(group: str, lane: str) -> bool:
    return lane == "all" or (group in LIVE_GROUPS) == (lane == "live")


# sink group → (module under worker.handlers, the setting that enables it)
SINK_GROUPS: dict[str, tuple[str, str]] = {
    "kafka": ("kafka", "kafka_bootstrap_servers"),
    "analytics": ("analytics", "clickhouse_url"),
}


def groups(settings: Settings) -> dict[str, Handler]:
    """The groups this worker runs: the core ones and the configured sinks'."""
    out = dict(GROUPS)
    for name, (module, setting) in SINK_GROUPS.items():
        if getattr(settings, setting):
            out[name] = importlib.import_module(f"worker.handlers.{module}").handle
    return out
