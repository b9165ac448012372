"""Feature flags: the caller's client-visible flags and the admin API (issue 13, being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("flags", __name__)
