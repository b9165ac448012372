"""Helpers shared by the worker/outbox tests: real PostgreSQL and Redis, no mocks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from prometheus_client import REGISTRY
from sqlalchemy import text

from ccweb import events
from ccweb.config import Settings
from ccweb.db import in_transaction, unit_of_work
from ccweb.effects import emit
from ccweb.events import partition_of, stream_key
from tests.processes import wait_for
from worker.runner import GroupConsumer


def step_until(
    consumer: GroupConsumer, predicate: Callable[[], Any], timeout: float = 10.0, what: str = ""
) -> None:
    """Run ``consumer.run_once`` (non-blocking) until ``predicate()`` holds."""

    def step() -> Any:
        consumer.run_once(None)
        return predicate()

    wait_for(step, timeout, what or "consumer to reach the expected state")


def emit_event(
    user_id: int | None, event_type: str = events.GAME_ROUND, **payload: Any
) -> dict[str, Any]:
    """Commit one event through the real unit of work + outbox writer."""
    with unit_of_work() as session:
        return emit(session, event_type, user_id, payload or {"n": 1})


def outbox_rows() -> list[dict[str, Any]]:
    return in_transaction(
        lambda s: [
            dict(r)
            for r in s.execute(
                text(
                    "SELECT o.id, o.event_id::text AS event_id, o.event_type, o.user_id,"
                    " o.partition, o.envelope, coalesce((o.txid, o.id) <= (c.txid, c.last_id),"
                    " false) AS published FROM outbox o LEFT JOIN outbox_relay_cursor c"
                    " ON c.name = 'default' ORDER BY o.id"
                )
            ).mappings()
        ]
    )


def activity_events(user_id: int) -> int:
    """Events counted for ``user_id`` by the ``activity`` group (all days)."""
    return int(
        in_transaction(
            lambda s: s.execute(
                text("SELECT coalesce(sum(events), 0) FROM user_daily_activity WHERE user_id = :u"),
                {"u": user_id},
            ).scalar()
        )
    )


def processed_ids(consumer: str = "activity") -> list[str]:
    return in_transaction(
        lambda s: list(
            s.execute(
                text("SELECT event_id::text FROM processed_events WHERE consumer = :c"),
                {"c": consumer},
            ).scalars()
        )
    )


def user_stream(settings: Settings, user_id: int) -> str:
    return stream_key(partition_of(user_id, settings), settings)


def stream_entries(rds: redis.Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    return list(rds.xrange(stream))  # type: ignore[arg-type]


def all_entries(rds: redis.Redis, settings: Settings) -> list[tuple[str, str, dict[str, str]]]:
    """Every entry of every partition stream as ``(stream, id, fields)``."""
    out = []
    for p in range(settings.stream_partitions):
        stream = stream_key(p, settings)
        out.extend((stream, eid, fields) for eid, fields in rds.xrange(stream))  # type: ignore[union-attr]
    return out


def pending_total(rds: redis.Redis, settings: Settings, group: str = "activity") -> int:
    total = 0
    for p in range(settings.stream_partitions):
        stream = stream_key(p, settings)
        if rds.exists(stream) and any(g["name"] == group for g in rds.xinfo_groups(stream)):  # type: ignore[union-attr]
            total += int(rds.xpending(stream, group)["pending"])  # type: ignore[index]
    return total


def group_info(rds: redis.Redis, stream: str, group: str = "activity") -> dict[str, Any]:
    for info in rds.xinfo_groups(stream):  # type: ignore[union-attr]
        if info["name"] == group:
            return dict(info)
    raise AssertionError(f"group {group} missing on {stream}")


def run_burst(consumer: GroupConsumer, timeout: float = 20.0) -> None:
    """``consumer.run(stop, burst=True)`` with a deadline (a hang fails, not blocks)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run(stop, burst=True)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        stop.set()
        t.join(5)
        raise AssertionError(f"burst run of {consumer.group} did not finish in {timeout}s")
    if errors:
        raise errors[0]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def progress_consumer(rds: redis.Redis, settings: Settings, name: str = "p1") -> GroupConsumer:
    """A real ``progress`` group consumer (groups ensured)."""
    from worker.handlers import progress

    consumer = GroupConsumer(rds, settings, progress.GROUP, progress.handle, name)
    consumer.ensure_groups()
    return consumer


def relay_exactly(rds, settings, n: int, timeout: float = 10.0, **kwargs) -> list[int]:  # type: ignore[no-untyped-def]
    """``relay_once`` until ``n`` rows were published; returns the non-zero batch sizes.

    The relay publishes only rows of transactions older than every transaction still
    running anywhere on the PostgreSQL server (the snapshot's xmin is cluster-wide), so a
    neighbour's open transaction — another test run, ``make run`` serving players — can
    hold it back for a moment: by design it waits, and so does this."""
    from ccweb.outbox.relay import relay_once

    batches: list[int] = []
    deadline = time.monotonic() + timeout
    while sum(batches) < n and time.monotonic() < deadline:
        got = relay_once(rds, settings, **kwargs)
        if got:
            batches.append(got)
        else:
            time.sleep(0.05)
    assert sum(batches) == n, (batches, n)
    return batches
