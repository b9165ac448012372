"""RFM segments have no routes of their own: the operator's endpoints
(``/api/admin/segments``…) are :mod:`ccweb.admin.segment_routes`. ``ccweb.segments`` is
read by flag targeting and ``ccweb.auth`` (through flags), so it must not import
``ccweb.auth`` or ``ccweb.admin`` (import-linter: no cycles between sibling packages).
This empty blueprint stays only while ``create_app`` registers it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("segments", __name__)
