"""The level rule (SPEC §3: level = floor(experience_points / 500) + 1), defined once.

The ledger statement computes the level in SQL in the same UPDATE that adds the XP, and
Python code (responses, tests) computes it from a number: both come from here, and a
test checks that they agree.
"""

from __future__ import annotations

XP_PER_LEVEL = 500


def level_for_xp(xp: int) -> int:
    return xp // XP_PER_LEVEL + 1


def level_sql(xp_expr: str) -> str:
    """The same rule as a SQL expression over an integer expression ``xp_expr``."""
    return f"({xp_expr}) / {XP_PER_LEVEL} + 1"
