"""The player's inventory of non-gold items (``user_items``): granted by event, mission
and achievement rewards and by shop purchases, always inside the money statement that
pays for them (so an item exists if and only if its payment or claim committed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from ccweb import pg
from ccweb.cte import Attachment

_GRANT = """INSERT INTO user_items (user_id, item_code, quantity)
    SELECT :it_uid, t.code, t.qty
    FROM unnest(CAST(:it_codes AS text[]), CAST(:it_qty AS bigint[])) AS t(code, qty), upd
    ON CONFLICT (user_id, item_code) DO UPDATE
        SET quantity = user_items.quantity + EXCLUDED.quantity, updated_at = now()"""


def grant_attachment(user_id: int, items: Mapping[str, int]) -> Attachment:
    """Add ``items`` (code → quantity) to the inventory in the same statement as a
    ledger :func:`~ccweb.wallet.ledger.settle` (only if its balance change happened)."""
    return Attachment(
        name="it",
        sql=_GRANT,
        params={"it_uid": user_id, "it_codes": list(items), "it_qty": list(items.values())},
        types={"it_codes": "text[]", "it_qty": "bigint[]"},
    )


# Player :uid's items with a positive quantity, by code, as one JSON column (for
# :func:`items_of` and statements that read several sections at once: the profile).
ITEMS_SQL = """(SELECT coalesce(json_agg(x ORDER BY x.item_code), '[]')
    FROM (SELECT item_code, quantity FROM user_items WHERE user_id = :uid AND quantity > 0) x)
    AS item_rows"""


def items_of(conn: Connection, user_id: int) -> list[dict[str, Any]]:
    """The player's items with a positive quantity, by code."""
    return items_from_row(pg.execute(conn, f"SELECT {ITEMS_SQL}", {"uid": user_id})[0])


def items_from_row(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"item_code": r["item_code"], "quantity": int(r["quantity"])} for r in row["item_rows"]]
