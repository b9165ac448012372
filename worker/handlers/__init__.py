"""Consumer groups: name → batch handler. Later capabilities register kafka and analytics
here."""

from __future__ import annotations

from worker.handlers import activity, progress, realtime
from worker.runner import Handler

GROUPS: dict[str, Handler] = {
    activity.GROUP: activity.handle,
    progress.GROUP: progress.handle,
    realtime.GROUP: realtime.handle,
}

# Per-group override of CC_WORKER_LINGER_MS (the wait that lets a small batch fill up):
# realtime pushes are waited for by a person, and its batches are cheap (one Redis
# pipeline, no transaction), so it handles a trickle at once.
LINGER_MS: dict[str, int] = {realtime.GROUP: 0}

# Per-group override of CC_WORKER_BATCH (entries per read, hence per handler call).
BATCH: dict[str, int] = {}
