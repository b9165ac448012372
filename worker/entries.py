"""A stream entry as handlers see it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass
class Entry:
    stream: str
    id: str
    fields: dict[str, str]
    deliveries: int = 1  # Redis's count (XPENDING times_delivered)
    failures: int = 0  # handler errors recorded for it so far (not store outages)
    error: str | None = field(default=None, repr=False)

    @property
    def event_id(self) -> str:
        return self.fields.get("event_id", "")

    @property
    def event_type(self) -> str:
        return self.fields.get("event_type", "")

    @cached_property
    def envelope(self) -> dict[str, Any]:
        """The full SPEC §4 envelope (raises on a malformed entry: that is a poison entry)."""
        value: dict[str, Any] = json.loads(self.fields["data"])
        return value
