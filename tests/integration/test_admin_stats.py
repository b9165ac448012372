"""``GET /api/admin/stats`` against the real PostgreSQL and Redis: every number on data
built for it (players, DAU, purchases and their success rate, gold against the ledger,
replays of real keyed requests, outbox rows behind the relay, stream groups' lag), the
ledger fold that keeps the sum bounded, the shared 5 s cache with one computing process,
a part over its time budget, admin-only access, and the replay totals of a real pre-fork
server whichever process answers."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from ccweb import db
from ccweb.admin import ledger_fold, stats
from ccweb.db import in_transaction
from ccweb.events import stream_key
from ccweb.outbox.relay import relay_once
from ccweb.shop import settlement_stub
from ccweb.wallet import ledger
from tests.factories import auth_headers, create_product, create_user
from tests.processes import start_server, stop, wait_for
from tests.web_processes import children_of, owner

URL = "/api/admin/stats"


def fresh(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    resp = client.get(URL + "?fresh=1", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    assert body["cached"] is False and body["incomplete"] == []
    return body


def sql(statement: str, **params: Any) -> Any:
    return in_transaction(lambda s: s.execute(text(statement), params))


def total_gold() -> int:
    return int(sql("SELECT sum(delta_gold) FROM wallet_ledger").scalar_one())


@pytest.fixture
def admin(client: Any) -> dict[str, str]:
    return auth_headers(client, create_user(is_admin=True, gold=0), admin=True)


def test_admin_only(client: Any, admin: dict[str, str]) -> None:
    assert client.get(URL).status_code == 401
    assert client.get(URL).get_json()["error"]["code"] == "UNAUTHORIZED"
    player = auth_headers(client, create_user())
    resp = client.get(URL, headers=player)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "FORBIDDEN"
    assert client.get(URL, headers=admin).status_code == 200


def test_players_dau_and_new_today(client: Any, admin: dict[str, str]) -> None:
    """Three players (one signed up yesterday) and the admin; activity rows as the
    worker's activity group writes them: two players today, one only yesterday."""
    a, b, c = (create_user()["id"] for _ in range(3))
    sql("UPDATE users SET created_at = now() - interval '1 day' WHERE id = :u", u=c)
    sql(
        "INSERT INTO user_daily_activity (user_id, day, events) VALUES"
        " (:a, current_date, 3), (:b, current_date, 1), (:c, current_date - 1, 5)",
        a=a,
        b=b,
        c=c,
    )
    players = fresh(client, admin)["players"]
    assert players == {"total": 3, "active_today": 2, "new_today": 2}


def buy(client: Any, headers: dict[str, str], product_id: int, key: str | None = None) -> Any:
    return client.post(
        "/api/shop/purchase",
        json={"product_id": product_id, "idempotency_key": key or uuid.uuid4().hex},
        headers=headers,
    )


def test_purchases_success_rate_and_settlements(client: Any, admin: dict[str, str]) -> None:
    """Three purchases through the real route (an item, two conversions — one voided by a
    signed provider callback) and one refused for gold: 3 of 4 attempts succeeded."""
    player = auth_headers(client, create_user(gold=1000))
    item = create_product(price_gold=300)
    dear = create_product(price_gold=50_000)
    conversion = create_product(
        category="conversion", price_gold=0, points_price=100, gold_amount=500
    )
    assert buy(client, player, item["id"]).status_code == 200
    assert buy(client, player, dear["id"]).status_code == 409  # INSUFFICIENT_GOLD
    assert buy(client, player, conversion["id"]).status_code == 200
    voided = buy(client, player, conversion["id"]).get_json()
    raw, headers = settlement_stub.signed(settlement_stub.build_callback(voided["tx_id"], "voided"))
    assert client.post("/api/shop/webhook/settlement", data=raw, headers=headers).status_code == 200

    purchases = fresh(client, admin)["purchases"]
    assert purchases == {
        "total": 3,
        "today": 3,
        "failed_today": 1,
        "failed_complete": True,
        "attempts_today": 4,
        "success_rate": 75.0,
        "settlement_pending": 1,
        "settlement_voided": 1,
    }


def test_gold_matches_the_ledger_until_a_balance_is_tampered_with(
    client: Any, admin: dict[str, str]
) -> None:
    player = create_user(gold=1500)
    create_user(gold=700)
    headers = auth_headers(client, player)
    assert client.post("/api/streak/claim", headers=headers).status_code == 200
    assert (
        client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers).status_code == 200
    )
    gold = fresh(client, admin)["gold"]
    assert gold == {
        "in_circulation": total_gold(),
        "ledger_sum": total_gold(),
        "consistent": True,
        "difference": 0,
        "ledger_catching_up": False,
    }
    assert gold["in_circulation"] >= 1500 + 700 + 1000 - 100  # grants, streak day 1, bet

    # a balance written past the wallet service: the ledger no longer explains it
    sql("UPDATE users SET gold_balance = gold_balance + 7 WHERE id = :u", u=player["id"])
    gold = fresh(client, admin)["gold"]
    assert gold["consistent"] is False
    assert gold["difference"] == 7
    assert gold["in_circulation"] == gold["ledger_sum"] + 7 == total_gold() + 7


def compute(settings: Any) -> dict[str, Any]:
    doc = stats.compute(settings)
    assert doc["incomplete"] == []
    return doc


def fold_state(rds: Any, settings: Any) -> stats.LedgerFold:
    return stats.LedgerFold.load(rds, settings)


def test_ledger_fold_never_passes_an_open_transaction(settings: Any, rds: Any) -> None:
    """A ledger row whose transaction is still open when the fold moves on must be
    counted once it commits: the fold stops below it until PostgreSQL's oldest running
    transaction is past it, and the sum is right at every step."""
    users = [create_user(gold=100)["id"] for _ in range(3)]
    assert compute(settings)["gold"]["ledger_sum"] == 300

    session = db.session_factory()()  # a money transaction left open
    try:
        ledger.apply(
            session, user_id=users[0], delta=50, source_type="test", idempotency_key="open"
        )
        open_id = session.execute(
            text("SELECT id FROM wallet_ledger WHERE idempotency_key = 'open'")
        ).scalar_one()
        for _ in range(3):  # ids after it commit meanwhile, and the fold is asked to move
            ledger_apply(users[1], 10)
            gold = compute(settings)["gold"]
            assert gold["consistent"] is True and gold["ledger_sum"] == total_gold()
            assert fold_state(rds, settings).upto < open_id
        session.commit()
    finally:
        session.close()

    def folded_past_it() -> bool:
        gold = compute(settings)["gold"]
        assert gold["consistent"] is True and gold["ledger_sum"] == total_gold() == 380
        return fold_state(rds, settings).upto >= open_id

    # xmin is the whole server's: another database's transaction may hold it a moment
    wait_for(folded_past_it, timeout=10, what="the fold past the committed row")


def ledger_apply(user_id: int, delta: int) -> None:
    in_transaction(
        lambda s: ledger.apply(
            s, user_id=user_id, delta=delta, source_type="test", idempotency_key=uuid.uuid4().hex
        )
    )


def test_the_ledger_sequence_hands_out_ids_one_at_a_time() -> None:
    """The fold's premise (stats.LedgerFold): an id at or below the sequence's last value
    is already in use. A sequence CACHE above 1 lets a session hold ids it uses later."""
    cache = sql(
        "SELECT cache_size FROM pg_sequences"
        " WHERE schemaname || '.' || sequencename = pg_get_serial_sequence('wallet_ledger', 'id')"
    ).scalar_one()
    assert cache == 1


def test_ledger_fold_catches_up_in_chunks(
    settings: Any, rds: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the fold lost (Redis flushed) and more unfolded ids than one computation may
    sum, the sum is null ("catching up") until the fold has walked the ledger chunk by
    chunk; then it is exact. A ledger sequence that went back (a truncate or restore)
    starts the fold again."""
    monkeypatch.setattr(ledger_fold, "MAX_TAIL", 4)
    monkeypatch.setattr(ledger_fold, "FOLD_CHUNK", 3)
    for _ in range(10):
        create_user(gold=10)
    seen = []

    def caught_up() -> dict[str, Any] | None:
        gold: dict[str, Any] = compute(settings)["gold"]
        seen.append(gold["ledger_sum"])
        if gold["ledger_sum"] is None:
            assert gold["ledger_catching_up"] is True and gold["consistent"] is None
            return None
        return gold

    gold = wait_for(caught_up, timeout=10, what="the fold caught up")
    assert seen[0] is None and len(seen) >= 4 and seen[-1] == 100 == total_gold()
    assert gold["consistent"] is True and gold["ledger_catching_up"] is False

    stats.LedgerFold(upto=10**9, total=123).save(rds, settings)  # ahead of the sequence
    gold = compute(settings)["gold"]
    assert gold["ledger_sum"] is None  # started again from nothing (10 ids > MAX_TAIL)
    assert fold_state(rds, settings).upto < 10**9


def test_replay_ratio_counts_real_replays(client: Any, admin: dict[str, str]) -> None:
    """A streak claim and a purchase each sent twice with one key: two replays of four
    keyed requests (the counters are the process's, so the test reads differences). A
    key sent to an endpoint that is not idempotent counts nothing."""
    before = fresh(client, admin)["idempotency"]
    player = auth_headers(client, create_user(gold=1000))
    keyed = {**player, "X-Idempotency-Key": "claim-1"}
    first = client.post("/api/streak/claim", headers=keyed)
    again = client.post("/api/streak/claim", headers=keyed)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    assert first.get_json() == again.get_json()
    product = create_product(price_gold=100)
    assert buy(client, player, product["id"], key="buy-1").status_code == 200
    assert buy(client, player, product["id"], key="buy-1").headers["Idempotent-Replay"] == "true"
    assert client.get("/api/auth/me", headers=keyed).status_code == 200

    after = fresh(client, admin)["idempotency"]
    delta = {k: after[k] - before[k] for k in after if k != "replay_ratio"}
    assert delta == {"replays": 2, "keyed_requests": 4, "purchase_replays": 1, "purchase_keyed": 2}
    assert after["replay_ratio"] == round(100 * after["replays"] / after["keyed_requests"], 2)


def test_outbox_pending_until_the_relay_passes(
    client: Any, admin: dict[str, str], settings: Any, rds: Any
) -> None:
    player = auth_headers(client, create_user())
    assert client.post("/api/streak/claim", headers=player).status_code == 200
    rows = int(sql("SELECT count(*) FROM outbox").scalar_one())
    assert rows >= 1
    outbox = fresh(client, admin)["outbox"]
    assert outbox["pending"] == rows  # no relay has run: every row is after its cursor
    assert outbox["oldest_pending_age_s"] >= 0

    def relayed() -> dict[str, Any] | None:
        # the relay takes rows of finished transactions only (below the server-wide
        # xmin): another database's open transaction may hold it back a moment
        relay_once(rds, settings, grace_s=0)
        outbox: dict[str, Any] = fresh(client, admin)["outbox"]
        return outbox if outbox["pending"] == 0 else None

    outbox = wait_for(relayed, timeout=10, what="the relay past every row")
    assert outbox == {"pending": 0, "oldest_pending_age_s": None}


def test_stream_group_lag_and_dead_letters(settings: Any, rds: Any) -> None:
    """A real consumer group (created by the worker's own code) with entries nobody
    consumed on two partitions, three of them delivered and not acknowledged; a second
    group created at the end of the streams; two dead letters. The sums agree with the
    worker's own per-stream lag metrics."""
    from prometheus_client import REGISTRY

    from tests.worker._support import progress_consumer
    from worker.runner import dlq_key

    consumer = progress_consumer(rds, settings)
    for p, n in ((0, 5), (1, 2)):
        for i in range(n):
            rds.xadd(stream_key(p, settings), {"i": str(i)})
    rds.xgroup_create(stream_key(0, settings), "late", id="$")
    rds.xreadgroup("progress", "c1", {stream_key(0, settings): ">"}, count=3)
    rds.xadd(dlq_key(settings), {"e": "1"})
    rds.xadd(dlq_key(settings), {"e": "2"})

    streams = compute(settings)["streams"]
    assert streams == {
        "groups": {"late": {"lag": 0, "pending": 0}, "progress": {"lag": 4, "pending": 3}},
        "dead_letters": 2,
    }
    consumer.update_lag_metrics()
    worker_lag = sum(
        REGISTRY.get_sample_value("cc_worker_lag", {"group": "progress", "stream": s}) or 0
        for s in consumer.streams
    )
    assert worker_lag == streams["groups"]["progress"]["lag"]


def test_cached_for_five_seconds(
    client: Any, admin: dict[str, str], rds: Any, settings: Any
) -> None:
    """The second call within the TTL is the first's document even though the data
    changed; the cache key carries a 5 s Redis TTL (no sleeping: its expiry is Redis's);
    once it is gone the numbers are new, and fresh=1 bypasses it."""
    create_user()
    first = client.get(URL, headers=admin).get_json()
    assert first["cached"] is False and first["players"]["total"] == 1
    create_user()
    second = client.get(URL, headers=admin).get_json()
    assert second["cached"] is True
    assert second["players"] == first["players"] and second["generated_at"] == first["generated_at"]
    assert 0 < rds.pttl(stats.cache_key(settings)) <= stats.CACHE_TTL_MS == 5000
    assert 0 < rds.ttl(stats.cache_key(settings) + ":last") <= stats.LAST_TTL_S

    assert fresh(client, admin)["players"]["total"] == 2
    create_user()
    rds.delete(stats.cache_key(settings))  # what the TTL does after 5 s
    third = client.get(URL, headers=admin).get_json()
    assert third["cached"] is False and third["players"]["total"] == 3


def test_one_process_computes_the_others_serve_the_cache(
    settings: Any, rds: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight concurrent readers of an empty cache: one computation, everyone gets its
    document. While another process holds the lock, the previous document is served; with
    none at all, a reader waits WAIT_S and then computes itself."""
    calls = Counter[str]()
    real = stats.compute

    def counted(s: Any) -> dict[str, Any]:
        calls["compute"] += 1
        return real(s)

    monkeypatch.setattr(stats, "compute", counted)
    create_user()
    docs: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: docs.append(stats.get(settings))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls["compute"] == 1
    assert len(docs) == 8 and len({d["generated_at"] for d in docs}) == 1
    assert sorted(d["cached"] for d in docs) == [False] + [True] * 7

    rds.delete(stats.cache_key(settings))
    rds.set(stats.cache_key(settings) + ":lock", "another process", ex=10)
    served = stats.get(settings)
    assert served["cached"] is True and served["generated_at"] == docs[0]["generated_at"]
    assert calls["compute"] == 1

    rds.delete(stats.cache_key(settings) + ":last")
    monkeypatch.setattr(stats, "WAIT_S", 0.2)
    assert stats.get(settings)["cached"] is False
    assert calls["compute"] == 2


def test_a_part_over_its_budget_is_null_and_named(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement that cannot finish within BUDGET_MS (here: the activity table locked by
    another transaction) leaves its fields null and names the part; the rest is there."""
    create_user()
    monkeypatch.setattr(stats, "BUDGET_MS", 200)
    with db.engine().connect() as locker:
        locker.execute(text("LOCK TABLE user_daily_activity IN ACCESS EXCLUSIVE MODE"))
        doc = stats.compute(settings)
        locker.rollback()
    assert doc["incomplete"] == ["dau"]
    assert doc["players"] == {"total": 1, "active_today": None, "new_today": 1}
    assert doc["gold"]["consistent"] is True


def _request(
    port: int, kids: set[int], method: str, path: str, headers: dict[str, str]
) -> tuple[int | None, int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        assert conn.sock is not None
        return owner(conn.sock, kids), resp.status, dict(resp.getheaders()), body
    finally:
        conn.close()


def test_replays_are_the_whole_servers_whichever_process_answers(
    subprocess_env: dict[str, str],
) -> None:
    """A pre-fork server with two web processes: keyed streak claims and their replays on
    fresh connections until both processes served some; then every stats document,
    computed by either process, reports all of them (the multiprocess collector)."""
    admin = create_user(is_admin=True, gold=0)
    proc, port = start_server(subprocess_env, processes=2)
    try:
        kids = wait_for(
            lambda: children_of(proc.pid) if len(children_of(proc.pid)) == 2 else None,
            timeout=20,
            what="two web processes",
        )

        def login(user: dict[str, Any], path: str) -> dict[str, str]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = json.dumps({"site_id": user["site_id"], "password": user["password"]})
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            token = json.loads(conn.getresponse().read())["access_token"]
            conn.close()
            return {"Authorization": f"Bearer {token}"}

        admin_headers = login(admin, "/api/auth/admin/login")
        replayed_by: Counter[int | None] = Counter()
        while min(replayed_by[k] for k in kids) < 1 or sum(replayed_by.values()) < 4:
            assert sum(replayed_by.values()) < 100, replayed_by
            headers = {**login(create_user(), "/api/auth/login"), "X-Idempotency-Key": "k"}
            assert _request(port, kids, "POST", "/api/streak/claim", headers)[1] == 200
            who, status, resp_headers, _ = _request(
                port, kids, "POST", "/api/streak/claim", headers
            )
            assert status == 200 and resp_headers.get("Idempotent-Replay") == "true"
            replayed_by[who] += 1
        replays = sum(replayed_by.values())

        answered: Counter[int | None] = Counter()
        while min(answered[k] for k in kids) < 1:
            assert sum(answered.values()) < 100, answered
            who, status, _, body = _request(port, kids, "GET", URL + "?fresh=1", admin_headers)
            assert status == 200
            doc = json.loads(body)["idempotency"]
            assert (doc["replays"], doc["keyed_requests"]) == (replays, 2 * replays), who
            answered[who] += 1
    finally:
        assert stop(proc) == 0
