"""The ``kafka`` worker group against a real Kafka-protocol broker (Tansu).

Events are produced through the application where practical (signup, login, rounds
with and without a session, session start/end, streak claim, shop purchase) and with
the real outbox writer for the remaining types, forwarded by the real handler through
``worker.runner.GroupConsumer`` on the real Redis streams, and consumed back with manual
partition assignment (no consumer group: Tansu's group joins hang).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from ccweb import events
from ccweb.config import Settings, set_settings
from ccweb.events import all_stream_keys, partition_of, stream_key
from ccweb.kafka import producer as kproducer
from ccweb.kafka.provision import provision, specs
from tests.factories import auth_headers, create_product, create_user
from tests.pipeline.sinks import LocalTansu
from tests.processes import free_port
from tests.worker._support import (
    all_entries,
    emit_event,
    group_info,
    pending_total,
    step_until,
)
from worker.handlers import kafka as kafka_handler
from worker.runner import GroupConsumer, StoreUnavailable, dlq_key, failures_key


@pytest.fixture
def prefix(topic_prefix: str) -> str:
    """A prefix of this test's own under the run's (``cct<hex>.<hex>.``): tests read
    topics from the beginning, so they must not share them."""
    return f"{topic_prefix}{secrets.token_hex(3)}."


def use_broker(settings: Settings, bootstrap: str, prefix: str, monkeypatch: Any) -> Settings:
    """Point this process's forwarder at ``bootstrap`` with topic ``prefix``."""
    monkeypatch.setenv(kproducer.TOPIC_PREFIX_ENV, prefix)
    s = settings.with_overrides(kafka_bootstrap_servers=bootstrap)
    set_settings(s)
    return s


@pytest.fixture
def kafka_settings(
    settings: Settings, kafka_bootstrap: str, prefix: str, monkeypatch: Any
) -> Settings:
    s = use_broker(settings, kafka_bootstrap, prefix, monkeypatch)
    provision(kafka_bootstrap, specs(prefix))
    return s


@pytest.fixture(autouse=True)
def _close_producer() -> Iterator[None]:
    yield
    kproducer.close(timeout_s=1)


def drained(rds: redis.Redis, s: Settings) -> bool:
    """Every entry of every partition stream delivered to the kafka group and acked."""
    for stream in all_stream_keys(s):
        if not rds.exists(stream):
            continue
        last = rds.xinfo_stream(stream)["last-generated-id"]  # type: ignore[index]
        info = group_info(rds, stream, kafka_handler.GROUP)
        if info["last-delivered-id"] != last or info["pending"]:
            return False
    return True


def drain(consumer: GroupConsumer, rds: redis.Redis, s: Settings) -> None:
    step_until(consumer, lambda: drained(rds, s), 30, "the kafka group to drain")


def kafka_consumer(rds: redis.Redis, settings: Settings, name: str = "k1") -> GroupConsumer:
    consumer = GroupConsumer(rds, settings, kafka_handler.GROUP, kafka_handler.handle, name)
    consumer.ensure_groups()
    return consumer


def consume(
    bootstrap: str, names: list[str], expected: int, timeout: float = 15.0, idle: float = 1.0
) -> list[Any]:
    """Every message on ``names`` from the beginning: waits until ``expected`` arrived,
    then ``idle`` seconds more so that extra (duplicate) messages would be seen too."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=200
    )
    try:
        parts = [
            TopicPartition(t, p) for t in names for p in (consumer.partitions_for_topic(t) or {0})
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            got = consumer.poll(timeout_ms=200)
            batch = [m for msgs in got.values() for m in msgs]
            out.extend(batch)
            if len(out) >= expected:
                if batch or quiet_until is None:
                    quiet_until = time.monotonic() + idle
                elif time.monotonic() >= quiet_until:
                    break
        return out
    finally:
        consumer.close()


def all_topics(prefix: str) -> list[str]:
    return [s.name for s in specs(prefix)]


def header(msg: Any, name: str) -> str | None:
    for k, v in msg.headers or []:
        if k == name:
            return bytes(v).decode()
    return None


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- what the test expects, written out independently of ccweb.kafka.topics --------------
EXPECTED_TOPIC = {
    events.AUTH_SIGNUP: "auth.events",
    events.AUTH_LOGIN: "auth.events",
    events.EVENT_PARTICIPATE: "event.progress",
    events.EVENT_PROGRESS: "event.progress",
    events.EVENT_CLAIM: "event.claim",
    events.MISSION_PROGRESS: "mission.progress",
    events.MISSION_CLAIM: "mission.claim",
    events.REWARD_GRANTED: "reward.granted",
    events.STREAK_CLAIM: "reward.granted",
    events.ADMIN_ADJUST: "reward.granted",
    events.SHOP_PURCHASE: "shop.purchase",
    events.SHOP_SETTLEMENT: "shop.purchase",
    events.GAME_ROUND: "game.session",
    events.GAME_SESSION_START: "game.session",
    events.GAME_SESSION_END: "game.session",
    events.ACHIEVEMENT_UNLOCKED: "user.events",
    events.USER_LEVEL_UP: "user.events",
    events.USER_ACTION: "user.events",
}


def expected_key(env: dict[str, Any]) -> str:
    t, p = env["event_type"], env["payload"]
    if t == events.EVENT_CLAIM:
        return str(p["event_id"])
    if t == events.MISSION_CLAIM:
        return str(p["mission_id"])
    if t in (events.GAME_SESSION_START, events.GAME_SESSION_END):
        return str(p["session_id"])
    if t == events.GAME_ROUND:
        return str(p["session_id"]) if p.get("session_id") else f"user:{env['user_id']}"
    return str(env["user_id"])


def play_through_the_app(client: Any) -> dict[str, int]:
    """Real requests that emit events: returns the ids the test refers to."""
    signup = client.post(
        "/api/auth/signup",
        json={
            "site_id": "kafka_1",
            "nickname": "Kafka",
            "password": "longpassword",
            "invite_code": "5858",
        },
    )
    assert signup.status_code == 201, signup.get_json()
    user = create_user(gold=5_000)
    headers = auth_headers(client, user)  # auth.login
    spin = client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers)
    assert spin.status_code == 200, spin.get_json()
    sid = client.post(
        "/api/games/sessions/start", json={"game_type": "slot"}, headers=headers
    ).get_json()["session_id"]
    spin = client.post("/api/games/slot/spin", json={"bet": 10, "session_id": sid}, headers=headers)
    assert spin.status_code == 200, spin.get_json()
    client.post(f"/api/games/sessions/{sid}/end", headers=headers)
    assert client.post("/api/streak/claim", headers=headers).status_code == 200
    product = create_product(price_gold=100)
    bought = client.post(
        "/api/shop/purchase",
        json={"product_id": product["id"], "idempotency_key": "kafka-1"},
        headers=headers,
    )
    assert bought.status_code == 200, bought.get_json()
    return {"user_id": int(user["id"]), "session_id": int(sid)}


def emit_the_rest(user_id: int, session_id: int) -> None:
    """Every event type with a payload shaped like its emitter's (ccweb/…)."""
    emit_event(user_id, events.EVENT_PARTICIPATE, event_id=55)
    emit_event(
        user_id,
        events.EVENT_PROGRESS,
        items=[{"event_id": 55, "progress_version": 1}, {"event_id": 56, "progress_version": 1}],
    )
    emit_event(user_id, events.EVENT_CLAIM, event_id=55, source_type="event", source_id=55)
    emit_event(user_id, events.MISSION_PROGRESS, items=[{"mission_id": 3, "progress_version": 2}])
    emit_event(user_id, events.MISSION_CLAIM, mission_id=3, source_type="mission", source_id=3)
    emit_event(user_id, events.REWARD_GRANTED, event_id=55, source_type="event", source_id=55)
    emit_event(user_id, events.ADMIN_ADJUST, admin_id=1, delta=5, reason="test")
    emit_event(user_id, events.SHOP_SETTLEMENT, tx_id="tx-1", status="settled")
    emit_event(user_id, events.GAME_SESSION_START, session_id=session_id, game_type="slot")
    emit_event(user_id, events.GAME_SESSION_END, session_id=session_id, game_type="slot")
    emit_event(user_id, events.ACHIEVEMENT_UNLOCKED, achievement_id=1, code="first")
    emit_event(user_id, events.USER_LEVEL_UP, level=2, previous_level=1)
    emit_event(user_id, events.USER_ACTION, action_id=1, action_type="click")


def stream_envelopes(rds: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(f["data"]) for _, _, f in all_entries(rds, settings)]


# -- tests ------------------------------------------------------------------------------
def test_every_event_type_arrives_once_on_its_topic_with_its_key(
    client: Any,
    seeded: None,
    rds: redis.Redis,
    kafka_settings: Settings,
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    ids = play_through_the_app(client)
    emit_the_rest(ids["user_id"], ids["session_id"])
    sent = stream_envelopes(rds, kafka_settings)
    assert {e["event_type"] for e in sent} == set(events.EVENT_TYPES)  # every type, once at least
    rounds = [e for e in sent if e["event_type"] == events.GAME_ROUND]
    assert sorted(bool(r["payload"]["session_id"]) for r in rounds) == [False, True]

    consumer = kafka_consumer(rds, kafka_settings)
    drain(consumer, rds, kafka_settings)
    got = consume(kafka_bootstrap, all_topics(prefix), len(sent))

    by_event = {}
    for m in got:
        assert m.topic.startswith(prefix) and not m.topic.endswith(".dlq"), m.topic
        env = json.loads(m.value)
        assert env["event_id"] not in by_event, f"{env['event_type']} arrived twice"
        by_event[env["event_id"]] = m
    assert set(by_event) == {e["event_id"] for e in sent}
    for e in sent:
        m = by_event[e["event_id"]]
        assert m.topic == prefix + EXPECTED_TOPIC[e["event_type"]], e["event_type"]
        assert m.key.decode() == expected_key(e), e["event_type"]
        assert json.loads(m.value) == e  # the envelope, unchanged
        assert header(m, "event_id") == e["event_id"]
        assert header(m, "event_type") == e["event_type"]
    assert rds.xlen(dlq_key(kafka_settings)) == 0


def test_a_players_events_stay_in_order_on_one_partition(
    rds: redis.Redis, kafka_settings: Settings, kafka_bootstrap: str, prefix: str
) -> None:
    user_id = int(create_user()["id"])
    sent = [emit_event(user_id, events.USER_ACTION, action_id=i) for i in range(30)]
    consumer = kafka_consumer(rds, kafka_settings)
    drain(consumer, rds, kafka_settings)
    got = consume(kafka_bootstrap, [prefix + "user.events"], len(sent))
    assert len({m.partition for m in got}) == 1
    assert [header(m, "event_id") for m in got] == [e["event_id"] for e in sent]


def test_malformed_entries_land_on_the_dlq_with_the_error(
    rds: redis.Redis, kafka_settings: Settings, kafka_bootstrap: str, prefix: str
) -> None:
    user_id = int(create_user()["id"])
    good = emit_event(user_id, events.USER_ACTION, action_id=1)
    no_ts = events.make_envelope(events.SHOP_PURCHASE, user_id, {"tx_id": "t"})
    del no_ts["ts"]
    unknown = {**events.make_envelope(events.USER_ACTION, user_id, {}), "event_type": "auth.logout"}
    claim_without_event = events.make_envelope(events.EVENT_CLAIM, user_id, {"source_id": 5})
    stream = stream_key(partition_of(user_id, kafka_settings), kafka_settings)
    raw = [
        ("bad-json", events.AUTH_LOGIN, "{not json"),
        (no_ts["event_id"], events.SHOP_PURCHASE, json.dumps(no_ts)),
        (unknown["event_id"], "auth.logout", json.dumps(unknown)),
        (claim_without_event["event_id"], events.EVENT_CLAIM, json.dumps(claim_without_event)),
    ]
    for event_id, event_type, data in raw:
        rds.xadd(
            stream,
            {"event_id": event_id, "event_type": event_type, "user_id": str(user_id), "data": data},
        )
    before = metric("cc_kafka_dlq_total", topic="unrouted.dlq")

    consumer = kafka_consumer(rds, kafka_settings)
    drain(consumer, rds, kafka_settings)
    # handled (acked), not retried and not dead-lettered in Redis
    assert rds.xlen(dlq_key(kafka_settings)) == 0
    assert not rds.hgetall(failures_key(kafka_settings, "kafka"))

    got = consume(kafka_bootstrap, all_topics(prefix), 5)
    by_topic = {m.topic.removeprefix(prefix): m for m in got}
    assert sorted(by_topic) == sorted(
        ["user.events", "auth.events.dlq", "shop.purchase.dlq", "unrouted.dlq", "event.claim.dlq"]
    )
    assert header(by_topic["user.events"], "event_id") == good["event_id"]
    bad_json = by_topic["auth.events.dlq"]
    assert bad_json.value == b"{not json"
    assert (header(bad_json, "error") or "").startswith("invalid JSON")
    missing = by_topic["shop.purchase.dlq"]
    assert header(missing, "error") == "missing required field(s): ts"
    assert header(missing, "event_id") == no_ts["event_id"]
    assert json.loads(missing.value) == no_ts
    assert "unknown event_type 'auth.logout'" in (header(by_topic["unrouted.dlq"], "error") or "")
    assert "no key: payload.event_id" in (header(by_topic["event.claim.dlq"], "error") or "")
    assert metric("cc_kafka_dlq_total", topic="unrouted.dlq") == before + 1


def test_refused_port_is_a_sink_outage_not_the_entries_fault(
    rds: redis.Redis, settings: Settings, prefix: str, monkeypatch: Any
) -> None:
    s = use_broker(settings, f"127.0.0.1:{free_port()}", prefix, monkeypatch)
    user_id = int(create_user()["id"])
    emit_event(user_id, events.USER_ACTION, action_id=1)
    consumer = kafka_consumer(rds, s)
    before = metric("cc_kafka_produce_fail_total", reason="unreachable")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        consumer.run_once(None)
    assert time.monotonic() - started < 10  # bounded: the worker backs off, never hangs
    assert len(consumer.held) == 1 and pending_total(rds, s, "kafka") == 1
    assert not rds.hgetall(failures_key(s, "kafka"))
    assert metric("cc_kafka_produce_fail_total", reason="unreachable") == before + 1


def test_broker_down_holds_the_batch_and_everything_arrives_when_it_returns(
    rds: redis.Redis,
    settings: Settings,
    prefix: str,
    monkeypatch: Any,
    local_tansu: LocalTansu,
) -> None:
    s = use_broker(settings, local_tansu.bootstrap, prefix, monkeypatch)
    user_id = int(create_user()["id"])
    consumer = kafka_consumer(rds, s)
    first = [emit_event(user_id, events.USER_ACTION, action_id=i) for i in range(3)]
    drain(consumer, rds, s)  # the producer is connected now

    local_tansu.stop()
    later = [emit_event(user_id, events.USER_ACTION, action_id=i) for i in range(3, 8)]
    for _ in range(2):  # an outage of any length: held, never counted against the entries
        with pytest.raises(StoreUnavailable):
            consumer.run_once(None)
        assert [e.event_id for e in consumer.held] == [e["event_id"] for e in later]
        assert pending_total(rds, s, "kafka") == len(later)
        assert rds.xlen(dlq_key(s)) == 0 and not rds.hgetall(failures_key(s, "kafka"))

    local_tansu.start()  # memory storage: an empty broker at the same address
    step_until(consumer, lambda: not consumer.held and pending_total(rds, s, "kafka") == 0, 30)
    got = consume(local_tansu.bootstrap, [prefix + "user.events"], len(later))
    ids = [header(m, "event_id") for m in got]
    assert set(ids) == {e["event_id"] for e in later}  # duplicates only as the same event
    first_ids = {e["event_id"] for e in first}
    assert not first_ids & set(ids)  # the restarted broker lost its memory, not our data
    assert rds.xlen(dlq_key(s)) == 0


def test_a_hanging_broker_times_out_and_the_batch_waits(
    rds: redis.Redis,
    settings: Settings,
    prefix: str,
    monkeypatch: Any,
    local_tansu: LocalTansu,
) -> None:
    """A broker that accepts connections but never answers (SIGSTOP) is caught by the
    producer's timeouts: the worker gets an outage within seconds, not a hang."""
    s = use_broker(settings, local_tansu.bootstrap, prefix, monkeypatch)
    user_id = int(create_user()["id"])
    consumer = kafka_consumer(rds, s)
    emit_event(user_id, events.USER_ACTION, action_id=0)
    drain(consumer, rds, s)  # connected, topic known
    event = emit_event(user_id, events.USER_ACTION, action_id=1)
    local_tansu.pause()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        consumer.run_once(None)
    assert time.monotonic() - started < 10
    assert [e.event_id for e in consumer.held] == [event["event_id"]]
    local_tansu.resume()
    step_until(consumer, lambda: not consumer.held and drained(rds, s), 30)
    got = consume(local_tansu.bootstrap, [prefix + "user.events"], 2)
    assert event["event_id"] in {header(m, "event_id") for m in got}
    assert rds.xlen(dlq_key(s)) == 0


def test_provisioning_creates_every_topic_and_its_dlq(kafka_bootstrap: str, prefix: str) -> None:
    wanted = specs(prefix, partitions=3, retention_hours=2)
    report = provision(kafka_bootstrap, wanted)
    assert sorted(report.created) == sorted(s.name for s in wanted)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        listed = {t for t in admin.list_topics() if t.startswith(prefix)}
        assert listed == {s.name for s in wanted}
        parts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(sorted(listed))}
    finally:
        admin.close()
    assert parts[prefix + "auth.events"] == 3
    assert parts[prefix + "auth.events.dlq"] == 1
    assert parts[prefix + "unrouted.dlq"] == 1
    again = provision(kafka_bootstrap, wanted)  # idempotent
    assert again.created == [] and set(again.existing) == listed
    assert again.too_few_partitions == []
    bigger = provision(kafka_bootstrap, specs(prefix, partitions=5))
    assert prefix + "auth.events" in bigger.too_few_partitions  # reported, not changed
