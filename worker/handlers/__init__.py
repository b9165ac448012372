"""Consumer groups: name → batch handler. Later capabilities register progress, kafka and
analytics here."""

from __future__ import annotations

from worker.handlers import activity
from worker.runner import Handler

GROUPS: dict[str, Handler] = {
    activity.GROUP: activity.handle,
}
