"""Response shapes shared by the player API, the dashboard and the admin API."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ccweb.events import iso
from ccweb.liveops.rules import period_end, progress_out


def event_status(status: str | None, ends_at: datetime, now: datetime) -> str | None:
    """The stored status, or ``expired`` once the window closed on an unclaimed row."""
    if status is not None and status != "claimed" and ends_at <= now:
        return "expired"
    return status


def event_out(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An event definition (the admin and player shape, without participation)."""
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "type": row["type"],
        "starts_at": iso(row["starts_at"]),
        "ends_at": iso(row["ends_at"]),
        "requirements": row["requirements"],
        "reward_items": row["reward_items"],
        "tier_required": row["tier_required"],
    }


def participation_out(
    requirements: list[Mapping[Any, Any]], p: Mapping[Any, Any], ends_at: datetime, now: datetime
) -> dict[str, Any]:
    """``{status, progress:[{type, current, target}], progress_version, ...}``; ``p`` has
    ``status``, ``progress``, ``progress_version``, ``joined_at``, ``last_progress_at``,
    ``claimed_at``."""
    return {
        "status": event_status(p["status"], ends_at, now),
        "progress": progress_out(requirements, p["progress"]),
        "progress_version": p["progress_version"],
        "joined_at": iso(p["joined_at"]),
        "last_progress_at": iso(p["last_progress_at"]),
        "claimed_at": iso(p["claimed_at"]),
    }


def mission_out(
    row: Mapping[Any, Any], start: date, um: Mapping[Any, Any] | None
) -> dict[str, Any]:
    """A mission for the current period; ``um`` is the player's row (None: not started)."""
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "period": row["period"],
        "requirements": row["requirements"],
        "reward_items": row["reward_items"],
        "period_start": start.isoformat(),
        "resets_at": period_end(row["period"], start).isoformat() + "T00:00:00Z",
        "status": um["status"] if um else "active",
        "progress": progress_out(row["requirements"], um["progress"] if um else None),
        "progress_version": um["progress_version"] if um else 0,
        "claimed_at": iso(um["claimed_at"]) if um else None,
    }
