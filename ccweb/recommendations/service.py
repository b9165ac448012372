"""Recommendations for one player: the candidates in one statement, then the rules.

One round trip reads the player's segment label, the packages they may buy now and the
LiveOps sections (active events with their participation, the current missions — the
dashboard's own :data:`ccweb.liveops.service.SECTIONS_SQL`); :mod:`.rules` picks from
them. The dashboard folds :data:`CANDIDATES_SQL` into its own statement and calls
:func:`from_row` with the sections it rendered anyway, so its recommendations are the
same as this API's and cost it no extra round trip.

The label is read straight from ``user_segments`` (the RFM batch and the incremental
recompute write it); a player without a row has no segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ccweb import pg
from ccweb.liveops import service as liveops
from ccweb.recommendations import rules
from ccweb.shop.catalog import BUYABLE

# What the rules read of a package (the whole catalog shape would cost the dashboard's
# statement more JSON to build and parse for nothing).
_OFFER_COLUMNS = """p.id, p.sku, p.name, p.price_gold, p.gold_amount, p.limit_once,
    p.stock_remaining, p.ends_at"""
# Two columns for a statement that also selects SECTIONS_SQL (params: sections_params()
# and :uid): the label and the packages the player may buy now.
CANDIDATES_SQL = f"""
    (SELECT label FROM user_segments WHERE user_id = :uid) AS reco_label,
    (SELECT coalesce(json_agg(x ORDER BY x.id), '[]')
     FROM (SELECT {_OFFER_COLUMNS} FROM shop_products p
           WHERE p.category = 'package' AND {BUYABLE}) x) AS reco_products"""

_RECOMMENDATIONS = f"SELECT {liveops.SECTIONS_SQL}, {CANDIDATES_SQL}"


def from_row(row: Mapping[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    """``{segment, result, items}`` from a row carrying :data:`CANDIDATES_SQL` and the
    LiveOps sections rendered from the same row (``liveops.render_sections``)."""
    return rules.recommend(
        rules.Candidates(
            label=row["reco_label"],
            products=row["reco_products"],
            missions=sections["missions"],
            events=sections["active_events"],
        )
    )


def recommendations(conn: Connection, user_id: int, now: datetime) -> dict[str, Any]:
    """``{segment, result: "ok"|"fallback", items}`` for ``user_id`` at ``now`` (UTC)."""
    today = now.date()
    row = pg.execute(
        conn, _RECOMMENDATIONS, {"uid": user_id, **liveops.sections_params(now, today)}
    )[0]
    return from_row(row, liveops.render_sections(row, now, today))
