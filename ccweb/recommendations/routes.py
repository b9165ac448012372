"""Recommendations per RFM segment (issue 13, being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("recommendations", __name__)
