"""Write events into the outbox inside the caller's transaction.

``emit()`` inserts the outbox row and schedules the fast-path publish for after the
commit. If the process dies before publishing, the relay finds the row (its
``published_at`` is still NULL) and publishes it; if the transaction rolls back, the
row and the publish vanish together. Call it outside savepoints (``begin_nested``):
rolling back only a savepoint would remove the row but not the scheduled publish.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ccweb import pg
from ccweb.config import get_settings
from ccweb.db import after_commit_redis
from ccweb.events import make_envelope, partition_of

log = logging.getLogger(__name__)

_INSERT = text(
    """
    INSERT INTO outbox (event_id, event_type, user_id, partition, envelope)
    VALUES (CAST(:event_id AS uuid), :event_type, :user_id, :partition, :envelope)
    """
).bindparams(bindparam("envelope", type_=JSONB))

# Set to False to model a process that dies right after commit (tests), or to leave all
# publishing to the relay.
FAST_PATH_ENABLED = True


def add(session: Session, envelope: dict[str, Any]) -> dict[str, Any]:
    settings = get_settings()
    session.execute(
        _INSERT,
        {
            "event_id": envelope["event_id"],
            "event_type": envelope["event_type"],
            "user_id": envelope["user_id"],
            "partition": partition_of(envelope["user_id"], settings),
            "envelope": envelope,
        },
    )
    _schedule_publish(session, envelope)
    return envelope


_INSERT_MANY = """
    INSERT INTO outbox (event_id, event_type, user_id, partition, envelope)
    SELECT CAST(e ->> 'event_id' AS uuid), e ->> 'event_type', CAST(e ->> 'user_id' AS bigint),
           p, e
    FROM unnest(CAST(:envs AS jsonb[]), CAST(:parts AS int[])) AS t(e, p)
"""  # a prepared statement (ccweb.pg): consumers emit with it every batch


def add_many(session: Session, envelopes: list[dict[str, Any]]) -> None:
    """:func:`add` for a whole batch in one statement (consumers that emit per batch)."""
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
    for e in envelopes:
        _schedule_publish(session, e)


def attachment(session: Session, envelope: dict[str, Any], name: str = "ob") -> Any:
    """The outbox row as a :class:`ccweb.wallet.ledger.Attachment`, for callers that
    settle money and write their event in one statement. The fast-path publish is
    scheduled like :func:`add` does; if the statement writes nothing (insufficient gold)
    the transaction is rolled back by the caller and nothing is published."""
    _schedule_publish(session, envelope)
    return row_attachment(envelope, name)


def row_attachment(
    envelope: dict[str, Any],
    name: str = "ob",
    *,
    when: str | None = None,
    from_upd: dict[str, str] | None = None,
) -> Any:
    """The outbox INSERT as an attachment, without scheduling any publish (callers on an
    autocommit connection publish themselves once the statement has returned).

    ``when`` is an extra SQL condition on ``upd`` (e.g. ``upd.level > upd.old_level``);
    ``from_upd`` sets payload keys from ``upd`` columns (``{"level": "upd.level"}``), so
    the stored envelope carries values only the statement knows. The caller must set the
    same values in its Python copy before publishing it.
    """
    from ccweb.wallet.ledger import Attachment

    settings = get_settings()
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
            f"{name}_p": partition_of(envelope["user_id"], settings),
            f"{name}_env": envelope,
        },
        types={f"{name}_env": "jsonb", f"{name}_uid": "bigint"},
    )


def _schedule_publish(session: Session, envelope: dict[str, Any]) -> None:
    pending = session.info.get("outbox_pending")
    if pending is None:
        pending = session.info["outbox_pending"] = []
        after_commit_redis(session, lambda pipe: queue_fast_path(pipe, pending))
    pending.append(envelope)


def queue_fast_path(pipe: Any, envelopes: list[dict[str, Any]]) -> None:
    """Fast path: publish right after commit, in the unit of work's Redis pipeline. If it
    fails (Redis down, script flushed) the relay publishes the rows a moment later."""
    if not FAST_PATH_ENABLED or not envelopes:
        return
    from ccweb.outbox.publisher import Publisher
    from ccweb.redis_client import get_redis

    try:
        Publisher(get_redis()).queue_envelopes(pipe, envelopes)
    except Exception:
        log.warning(
            "fast-path publish not queued; leaving %d events to the relay",
            len(envelopes),
            exc_info=True,
        )


def emit(
    session: Session,
    event_type: str,
    user_id: int | None,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    trace_id: str | None = None,
    service: str = "ccweb",
) -> dict[str, Any]:
    """Build an envelope (SPEC §4) and add it to the outbox of this transaction."""
    envelope = make_envelope(
        event_type, user_id, payload, dedupe_key=dedupe_key, trace_id=trace_id, service=service
    )
    return add(session, envelope)
