"""RFM segments: the operator's view (issue 13, being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("segments", __name__)
