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
