"""Per-player cache versioning: any change of a player bumps ``<prefix>:dash:ver:<uid>``.

Writers call :func:`touch` inside their unit of work; the bump happens after commit, so
a reader that sees the new version also sees the committed data. Readers cache rendered
views together with the version they read *before* rendering; a stale version means
re-render. Works across processes (web and worker) because the version lives in Redis.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ccweb.db import after_commit
from ccweb.redis_client import get_redis, key


def version_key(user_id: int) -> str:
    return key("dash", "ver", user_id)


def view_key(user_id: int, view: str) -> str:
    return key("dash", view, user_id)


def touch(session: Session, user_id: int) -> None:
    touched: set[int] | None = session.info.get("touched_players")
    if touched is None:
        touched = session.info["touched_players"] = set()
        after_commit(session, lambda: bump(touched))
    touched.add(user_id)


def bump(user_ids: set[int]) -> None:
    if not user_ids:
        return
    pipe = get_redis().pipeline(transaction=False)
    for uid in user_ids:
        pipe.incr(version_key(uid))
    pipe.execute()
