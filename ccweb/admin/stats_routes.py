"""Admin stats (issue 13, being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin_stats", __name__)
