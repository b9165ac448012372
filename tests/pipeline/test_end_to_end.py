"""The whole pipeline with real processes: a web server and a worker running every group
against a private ClickHouse and a private Kafka-protocol broker. Play goes on while both
sinks are down, the backlog waits in the streams, and when the sinks return every event
arrives: once in ClickHouse, at least once (same event id) on Kafka. A worker SIGKILLed
while it ingests loses nothing either: its successor takes over what it had read."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import text

from ccweb.analytics.migrate import migrate
from ccweb.db import autocommit
from tests.faults.api import Api
from tests.pipeline.sinks import LocalClickHouse, LocalTansu
from tests.processes import start_server, start_worker, stop, wait_for


def round_event_ids(user_id: int) -> set[str]:
    with autocommit() as conn:
        rows = conn.execute(
            text(
                "SELECT event_id::text FROM outbox WHERE user_id = :u AND event_type = 'game.round'"
            ),
            {"u": user_id},
        )
        return {r[0] for r in rows}


def in_clickhouse(ch: LocalClickHouse, database: str, user_id: int) -> dict[str, int]:
    """event_id → stored rows (before merges: a duplicate insert would show as 2)."""
    rows = ch.client(database).execute(
        "SELECT event_id, count() FROM events_raw WHERE user_id = %(u)s"
        " AND event_type = 'game.round' GROUP BY event_id",
        {"u": user_id},
    )
    return {eid: n for eid, n in rows}


def on_kafka(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=1500)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def test_play_goes_on_while_the_sinks_are_down_and_nothing_is_lost(
    seeded: None,
    subprocess_env: dict[str, str],
    local_clickhouse: LocalClickHouse,
    local_tansu: LocalTansu,
) -> None:
    database = f"cc_e2e_{secrets.token_hex(4)}"
    ch_url = local_clickhouse.create_database(database)
    migrate(ch_url)
    prefix = f"e2e{secrets.token_hex(3)}."
    env = {
        **subprocess_env,
        "CLICKHOUSE_URL": ch_url,
        "KAFKA_BOOTSTRAP_SERVERS": local_tansu.bootstrap,
        "CC_KAFKA_TOPIC_PREFIX": prefix,
        "CC_WORKER_BACKOFF_MAX_MS": "500",  # come back quickly once the sinks return
        "CC_WORKER_RECLAIM_IDLE_MS": "2000",  # a killed worker's entries are taken over soon
    }
    server, port = start_server(env)
    worker = start_worker(env)
    try:
        player = Api(port)
        uid = player.signup(prefix="e2e")["id"]
        for _ in range(3):
            assert player.spin().status == 200
        before = round_event_ids(uid)
        wait_for(
            lambda: set(in_clickhouse(local_clickhouse, database, uid)) >= before or None,
            30,
            "the first rounds in ClickHouse",
        )

        local_clickhouse.stop()
        local_tansu.stop()
        started = time.monotonic()
        for _ in range(10):
            reply = player.spin()
            assert reply.status == 200, reply  # play does not wait for the sinks
        assert time.monotonic() - started < 10
        time.sleep(2)  # the worker meets the outage and holds its batches
        assert worker.poll() is None, "the worker must ride out a sink outage"

        local_clickhouse.start()
        local_tansu.start()  # in memory: it comes back empty
        everything = round_event_ids(uid)
        assert len(everything) == 13
        stored = wait_for(
            lambda: (
                got
                if set(got := in_clickhouse(local_clickhouse, database, uid)) >= everything
                else None
            ),
            60,
            "every round in ClickHouse after the outage",
        )
        assert set(stored) == everything
        assert all(n == 1 for n in stored.values()), stored  # once, not once per retry

        during = everything - before
        topic = f"{prefix}game.session"
        seen = wait_for(
            lambda: (
                ids
                if (ids := {e["event_id"] for e in on_kafka(local_tansu.bootstrap, topic)})
                >= during
                else None
            ),
            60,
            "the outage's rounds on Kafka",
        )
        assert during <= seen
        assert worker.poll() is None

        # SIGKILL the worker while it ingests a burst; its successor reclaims what the dead
        # one had read but not acknowledged: still every round once in ClickHouse
        for _ in range(10):
            assert player.spin().status == 200
        worker.kill()
        worker.wait(10)
        worker = start_worker(env)
        everything = round_event_ids(uid)
        assert len(everything) == 23
        stored = wait_for(
            lambda: (
                got
                if set(got := in_clickhouse(local_clickhouse, database, uid)) >= everything
                else None
            ),
            60,
            "every round in ClickHouse after the worker was killed",
        )
        assert set(stored) == everything
        # a batch inserted but not acknowledged before the kill is inserted again by the
        # successor: the copy shares the sorting key and collapses (FINAL / at merge)
        final = local_clickhouse.client(database).execute(
            "SELECT count(), uniqExact(event_id) FROM events_raw FINAL"
            " WHERE user_id = %(u)s AND event_type = 'game.round'",
            {"u": uid},
        )
        assert final == [(23, 23)]
    finally:
        stop(worker)
        stop(server)
