"""The one error the game engines raise for bad player input.

It is a plain ``Exception`` (not a ``ccweb.errors.DomainError``) so the engines stay
importable without Flask; the HTTP layer maps it to 400 ``VALIDATION_ERROR`` using
:meth:`GameInputError.details`, which has the same ``fields`` shape as request-schema
failures.
"""

from __future__ import annotations

from typing import Any


class GameInputError(Exception):
    """A player-supplied value (bet, choice, count, auto_cashout, client seed) is invalid."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def details(self) -> dict[str, Any]:
        """Field details in the shape ``ccweb.http.validation`` uses for 400 responses."""
        return {"fields": [{"field": self.field, "message": self.message, "type": "game_input"}]}
