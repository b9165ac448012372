"""Outbox rows, written inside the caller's transaction (rows only: no publishing).

The event of a change is a row in the same transaction as the change, so it exists if
and only if the change committed. Publishing it right after commit (the fast path) is an
after-commit effect of the unit of work (:func:`ccweb.effects.emit` / ``add`` write the
row AND schedule the publish; a caller that attaches the row to a money statement with
:func:`attachment` schedules the publish itself, once the statement says the row was
written). If the process dies before publishing, the relay finds the row and publishes it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ccweb import pg
from ccweb.config import get_settings
from ccweb.cte import Attachment
from ccweb.events import partition_of

_INSERT = text(
    """
    INSERT INTO outbox (event_id, event_type, user_id, partition, envelope)
    VALUES (CAST(:event_id AS uuid), :event_type, :user_id, :partition, :envelope)
    """
).bindparams(bindparam("envelope", type_=JSONB))


def insert(session: Session, envelope: dict[str, Any]) -> None:
    session.execute(
        _INSERT,
        {
            "event_id": envelope["event_id"],
            "event_type": envelope["event_type"],
            "user_id": envelope["user_id"],
            "partition": partition_of(envelope["user_id"], get_settings()),
            "envelope": envelope,
        },
    )


_INSERT_MANY = """
    INSERT INTO outbox (event_id, event_type, user_id, partition, envelope)
    SELECT CAST(e ->> 'event_id' AS uuid), e ->> 'event_type', CAST(e ->> 'user_id' AS bigint),
           p, e
    FROM unnest(CAST(:envs AS jsonb[]), CAST(:parts AS int[])) AS t(e, p)
"""  # a prepared statement (ccweb.pg): consumers emit with it every batch


def insert_many(session: Session, envelopes: list[dict[str, Any]]) -> None:
    """:func:`insert` for a whole batch in one statement."""
    if not envelopes:
        return
    settings = get_settings()
    pg.execute(
        session,
        _INSERT_MANY,
        {
            "envs": [json.dumps(e, default=str) for e in envelopes],
            "parts": [partition_of(e["user_id"], settings) for e in envelopes],
        },
        {"envs": "text[]", "parts": "int[]"},
    )


def attachment(
    envelope: dict[str, Any],
    name: str = "ob",
    *,
    when: str | None = None,
    from_upd: dict[str, str] | None = None,
) -> Attachment:
    """The outbox INSERT as a CTE of a ledger statement (written only if the balance
    moved). The caller publishes the envelope through its unit of work's effects once the
    statement has returned.

    ``when`` is an extra SQL condition on ``upd`` (e.g. ``upd.level > upd.old_level``);
    ``from_upd`` sets payload keys from ``upd`` columns (``{"level": "upd.level"}``), so
    the stored envelope carries values only the statement knows. The caller must set the
    same values in its Python copy before publishing it.
    """
    env_sql = f":{name}_env"
    for key, expr in (from_upd or {}).items():
        env_sql = f"jsonb_set({env_sql}, '{{payload,{key}}}', to_jsonb({expr}))"
    return Attachment(
        name=name,
        sql=f"""INSERT INTO outbox (event_id, event_type, user_id, partition, envelope)
            SELECT CAST(:{name}_eid AS uuid), :{name}_type, :{name}_uid, :{name}_p, {env_sql}
            FROM upd{f" WHERE {when}" if when else ""}""",
        params={
            f"{name}_eid": envelope["event_id"],
            f"{name}_type": envelope["event_type"],
            f"{name}_uid": envelope["user_id"],
            f"{name}_p": partition_of(envelope["user_id"], get_settings()),
            f"{name}_env": envelope,
        },
        types={f"{name}_env": "jsonb", f"{name}_uid": "bigint"},
    )
