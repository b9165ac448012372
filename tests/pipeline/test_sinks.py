"""The sinks the pipeline tests run against are real and behave as the fixtures promise:
this run's own ClickHouse database, a broker that stores and returns keyed messages
read with manual partition assignment (no consumer group: Tansu's group joins hang),
private servers that stop and start, and ``/ready`` telling up, down and disabled apart
without failing on a sink."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from ccweb.config import Settings, set_settings
from scripts import services
from tests.conftest import RUN_ID
from tests.pipeline.sinks import LocalClickHouse, LocalTansu
from tests.processes import ROOT, free_port


def test_clickhouse_url_is_this_runs_own_database(clickhouse_url: str, ch: Any) -> None:
    assert clickhouse_url.endswith(f"/cc_test_{RUN_ID}")
    assert ch.execute("SELECT currentDatabase()") == [(f"cc_test_{RUN_ID}",)]
    ch.execute("CREATE TABLE fixture_probe (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    try:
        ch.execute("INSERT INTO fixture_probe (id, name) VALUES", [(2, "b"), (1, "a")])
        assert ch.execute("SELECT id, name FROM fixture_probe ORDER BY id") == [(1, "a"), (2, "b")]
        tables = ch.execute(
            "SELECT name FROM system.tables WHERE database = %(db)s",
            {"db": f"cc_test_{RUN_ID}"},
        )
        assert ("fixture_probe",) in tables  # in this run's database, not in `default`
    finally:
        ch.execute("DROP TABLE IF EXISTS fixture_probe")


def _produce_and_read(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> list:
    """Create ``topic`` (2 partitions), produce keyed messages to partition 1 with
    acks=all, and read partition 1 back from offset 0 by manual assignment."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value, partition=1).get(timeout=10)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10_000
    )
    try:
        tp = TopicPartition(topic, 1)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got: list = []
        deadline = time.monotonic() + 15
        while len(got) < len(messages) and time.monotonic() < deadline:
            got.extend(consumer.poll(timeout_ms=500).get(tp, []))
        return got
    finally:
        consumer.close()


def test_broker_stores_keyed_messages_in_order(kafka_bootstrap: str, topic_prefix: str) -> None:
    assert topic_prefix.startswith("cct") and topic_prefix.endswith(".")
    sent = [(b"user:1", b"first"), (b"user:2", b"second"), (b"user:1", b"third")]
    got = _produce_and_read(kafka_bootstrap, f"{topic_prefix}sinks.roundtrip", sent)
    assert [(r.key, r.value) for r in got] == sent
    assert [r.offset for r in got] == [0, 1, 2]


def test_private_clickhouse_stops_and_starts_with_its_data(
    local_clickhouse: LocalClickHouse,
) -> None:
    url = local_clickhouse.create_database("faults")
    client = local_clickhouse.client("faults")
    client.execute("CREATE TABLE kept (id UInt64) ENGINE = MergeTree ORDER BY id")
    client.execute("INSERT INTO kept (id) VALUES", [(1,), (2,)])
    client.disconnect()

    local_clickhouse.stop()
    assert not local_clickhouse.running
    assert not services.ch_answers(url, timeout=1)

    t0 = time.monotonic()
    local_clickhouse.start()
    started_in = time.monotonic() - t0
    assert services.ch_answers(url, timeout=1)
    again = local_clickhouse.client("faults")
    assert again.execute("SELECT count() FROM kept") == [(2,)]  # acknowledged rows survive
    again.disconnect()
    assert started_in < 30, f"ClickHouse took {started_in:.1f}s to start"

    local_clickhouse.kill()  # a crash: the data directory is still there after start()
    assert not local_clickhouse.running
    local_clickhouse.start()
    crashed = local_clickhouse.client("faults")
    assert crashed.execute("SELECT count() FROM kept") == [(2,)]
    crashed.disconnect()


def test_private_tansu_restarts_empty(local_tansu: LocalTansu) -> None:
    topic = f"cct{RUN_ID}.private"
    got = _produce_and_read(local_tansu.bootstrap, topic, [(b"k", b"before")])
    assert [r.value for r in got] == [b"before"]

    local_tansu.stop()
    assert not local_tansu.running and not local_tansu.answers()
    local_tansu.start()
    assert local_tansu.answers()
    # in-memory storage: the restarted broker lost the topic, so creating it works again
    # and its offsets start at 0 (what outage tests must expect)
    got = _produce_and_read(local_tansu.bootstrap, topic, [(b"k", b"after")])
    assert [(r.value, r.offset) for r in got] == [(b"after", 0)]


@pytest.fixture
def ready_with(client: Any, settings: Settings) -> Any:
    """GET /ready with the sinks of this process's settings replaced; settings restored
    after the test by tests/conftest.py's clean_state."""

    def get(clickhouse_url: str, kafka: str) -> tuple[int, dict, float]:
        set_settings(
            replace(settings, clickhouse_url=clickhouse_url, kafka_bootstrap_servers=kafka)
        )
        t0 = time.monotonic()
        resp = client.get("/ready")
        return resp.status_code, resp.get_json(), time.monotonic() - t0

    return get


def test_ready_reports_sinks_up_down_disabled(
    ready_with: Any, clickhouse_url: str, kafka_bootstrap: str
) -> None:
    status, body, _ = ready_with(clickhouse_url, kafka_bootstrap)
    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["clickhouse"] == "up" and body["checks"]["kafka"] == "up"
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"] == "ok"

    refused = free_port()
    status, body, _ = ready_with(
        f"clickhouse://127.0.0.1:{refused}/default", f"127.0.0.1:{refused}"
    )
    assert status == 200 and body["status"] == "ready"  # optional sinks never fail readiness
    assert body["checks"]["clickhouse"] == "down" and body["checks"]["kafka"] == "down"

    status, body, _ = ready_with("", "")
    assert status == 200
    assert body["checks"]["clickhouse"] == "disabled" and body["checks"]["kafka"] == "disabled"

    # a server that answers the other protocol is not "up"
    kafka_port = int(kafka_bootstrap.rsplit(":", 1)[1])
    ch_port = services.ch_target(clickhouse_url)[1]
    _, body, _ = ready_with(f"clickhouse://127.0.0.1:{kafka_port}/default", f"127.0.0.1:{ch_port}")
    assert body["checks"]["clickhouse"] == "down" and body["checks"]["kafka"] == "down"


def test_ready_is_bounded_when_sinks_hang(
    ready_with: Any, local_clickhouse: LocalClickHouse, local_tansu: LocalTansu
) -> None:
    """SIGSTOPped sinks accept connections but never answer: each probe gives up after
    its 1 s budget, and readiness still reports the stores as ready."""
    status, body, _ = ready_with(local_clickhouse.url, local_tansu.bootstrap)
    assert body["checks"]["clickhouse"] == "up" and body["checks"]["kafka"] == "up"
    local_clickhouse.pause()
    local_tansu.pause()
    status, body, elapsed = ready_with(local_clickhouse.url, local_tansu.bootstrap)
    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["clickhouse"] == "down" and body["checks"]["kafka"] == "down"
    assert elapsed < 3.0, f"/ready took {elapsed:.2f}s with hung sinks"
    local_clickhouse.resume()
    local_tansu.resume()
    _, body, _ = ready_with(local_clickhouse.url, local_tansu.bootstrap)
    assert body["checks"]["clickhouse"] == "up" and body["checks"]["kafka"] == "up"


@pytest.mark.parametrize("var", ["CLICKHOUSE_URL", "KAFKA_BOOTSTRAP_SERVERS"])
def test_unreachable_sink_fails_the_tests_that_need_it(var: str) -> None:
    """No silent skip: with the sink refusing, a test using its fixture errors with a
    message naming the variable and `make test`."""
    target = {
        "CLICKHOUSE_URL": "test_clickhouse_url_is_this_runs_own_database",
        "KAFKA_BOOTSTRAP_SERVERS": "test_broker_stores_keyed_messages_in_order",
    }[var]
    refused = free_port()
    value = (
        f"clickhouse://127.0.0.1:{refused}/default"
        if var == "CLICKHOUSE_URL"
        else f"127.0.0.1:{refused}"
    )
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"{__file__}::{target}"],
        cwd=ROOT,
        env={**os.environ, var: value},
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert "1 error" in p.stdout and "skipped" not in p.stdout
    assert f"{var}={value!r} does not answer" in p.stdout and "make test" in p.stdout
