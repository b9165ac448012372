"""RFM segments against the real PostgreSQL and Redis: the rules at their boundaries
(pure, and the SQL the batch runs agreeing with them), labels on constructed purchase
histories, the batch's idempotence and removals, the once-a-day schedule under racing
runners, the command, and the admin routes (401/403)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from ccweb import db
from ccweb.db import in_transaction
from ccweb.segments import jobs, rfm, rules, store
from ccweb.segments.models import LABELS
from tests.factories import auth_headers, create_product, create_user
from tests.processes import ROOT

# A fixed "now" at noon UTC: purchases k days before it are exactly k calendar days old.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_keys = itertools.count(1)


def q(sql: str, **params: Any) -> list[dict[str, Any]]:
    return in_transaction(lambda s: [dict(r) for r in s.execute(text(sql), params).mappings()])


_product: dict[str, int] = {}


def product_id() -> int:
    """One catalog product for the purchase rows' foreign key (tables are emptied per test)."""
    if not q("SELECT 1 FROM shop_products WHERE id = :p", p=_product.get("id", 0)):
        _product["id"] = create_product(price_gold=10)["id"]
    return _product["id"]


def buy(
    user_id: int,
    at: datetime,
    price: int = 10,
    *,
    points: int = 0,
    settlement: str | None = None,
) -> int:
    """Insert one successful purchase row made at ``at`` (the batch reads only the table)."""
    conversion = points > 0
    return int(
        in_transaction(
            lambda s: s.execute(
                text(
                    "INSERT INTO shop_purchases (user_id, product_id, idempotency_key, sku,"
                    " category, quantity, price_gold, points_price, gold_amount, gold_delta,"
                    " items, limit_once, status, settlement_status, receipt, integrity_hash,"
                    " signature, signature_version, response, created_at)"
                    " VALUES (:u, :p, :k, 'sku', :cat, 1, :price, :points, 0, 0, '[]', false,"
                    " 'success', :settle, '{}', 'h', 's', 1, '{}', :at) RETURNING id"
                ),
                {
                    "u": user_id,
                    "p": product_id(),
                    "k": f"k{next(_keys)}",
                    "cat": "conversion" if conversion else "item",
                    "price": 0 if conversion else price,
                    "points": points,
                    "settle": settlement,
                    "at": at,
                },
            ).scalar_one()
        )
    )


def days_ago(n: float, now: datetime = NOW) -> datetime:
    return now - timedelta(days=n)


def player(*purchases: tuple[float, int]) -> int:
    """A player with purchases ``(days before NOW, price)``."""
    uid = int(create_user(gold=0)["id"])
    for age, price in purchases:
        buy(uid, days_ago(age), price)
    return uid


def batch(now: datetime = NOW) -> rfm.BatchResult:
    return in_transaction(lambda s: rfm.run_batch(s, now))


def rows() -> dict[int, dict[str, Any]]:
    return {r["user_id"]: r for r in q("SELECT * FROM user_segments")}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- the rules, pure ---------------------------------------------------------------------


def test_rules_labels_are_the_schema_labels():
    assert set(rules.LABELS) == set(LABELS)


@pytest.mark.parametrize(
    ("r_days", "score"),
    [(0, 5), (1, 5), (2, 4), (3, 4), (4, 3), (7, 3), (8, 2), (14, 2), (15, 1), (90, 1)],
)
def test_r_score_cut_offs(r_days, score):
    assert rules.r_score(r_days) == score


def test_quintile_score_counts_cuts_strictly_below():
    cuts = (1, 2, 4, 8)
    assert [rules.quintile_score(v, cuts) for v in (0, 1, 2, 3, 4, 5, 8, 9, 10**12)] == [
        1, 1, 2, 3, 3, 4, 4, 5, 5,
    ]  # fmt: skip
    assert rules.quintile_score(1, (1, 1, 1, 1)) == 1  # ties at the bottom stay at the bottom
    assert rules.quintile_score(2, (1, 1, 1, 1)) == 5


def test_rfm_total_weights():
    assert rules.rfm_total(5, 5, 5) == Decimal("5.00")
    assert rules.rfm_total(1, 1, 1) == Decimal("1.00")
    assert rules.rfm_total(5, 1, 2) == Decimal("2.90")  # 2.0 + 0.3 + 0.6


@pytest.mark.parametrize(
    ("r", "f", "m", "expected"),
    [
        (0, 1, 500, "Whale"),  # at p95
        (0, 1, 499, "Medium"),  # just below p95, above p60
        (30, 0, 0, "AtRisk"),  # M = 0 is never a whale, even with p95 = 0 (below)
        (7, 10, 50, "HighEngaged"),
        (8, 10, 50, "Low"),  # F 10 but not recent, M below p60
        (7, 9, 50, "Medium"),
        (21, 1, 50, "Low"),
        (22, 1, 50, "AtRisk"),
        (22, 10, 50, "AtRisk"),
        (29, 1, 600, "Whale"),  # whale before AtRisk
        (3, 4, 1, "Medium"),
        (3, 3, 1, "Low"),
        (3, 3, 100, "Medium"),  # at p60
        (3, 3, 99, "Low"),
        (0, 1, 1, "Low"),
    ],
)
def test_label_boundaries(r, f, m, expected):
    assert rules.label(r, f, m, 100, 500) == expected


def test_no_whale_when_nobody_spent_in_the_window():
    assert rules.label(40, 0, 0, 0, 0) == "AtRisk"
    assert rules.label(3, 1, 0, 0, 0) == "Low"


def test_sql_and_python_rules_agree_on_boundary_cases():
    """The batch's SQL expressions, evaluated by PostgreSQL on a table of boundary
    cases, give exactly the Python rules' scores, totals and labels."""
    th = rules.Thresholds(m_p60=100, m_p95=500, f_cuts=(1, 2, 4, 9), m_cuts=(0, 10, 100, 499))
    zero = rules.Thresholds(m_p60=0, m_p95=0, f_cuts=(0, 0, 0, 0), m_cuts=(0, 0, 0, 0))
    rs = (0, 1, 2, 3, 4, 7, 8, 14, 15, 21, 22, 29, 30, 31, 90)
    fs = (0, 1, 2, 3, 4, 5, 9, 10, 11)
    ms = (0, 1, 10, 99, 100, 101, 498, 499, 500, 501, 10**12)
    cases = [(r, f, m, t) for t in (th, zero) for r in rs for f in fs for m in ms]
    r, f, m = "c.r", "c.f", "c.m"
    sql = text(
        f"""
        SELECT {rules.r_score_sql(r)} AS rs, {rules.quintile_sql(f, "c.fc")} AS fs,
               {rules.quintile_sql(m, "c.mc")} AS ms,
               {rules.label_sql(r, f, m, "c.p60", "c.p95")} AS label,
               {
            rules.total_sql(
                rules.r_score_sql(r), rules.quintile_sql(f, "c.fc"), rules.quintile_sql(m, "c.mc")
            )
        } AS total
        FROM (SELECT i, r, f, m, p60, p95,
                     ARRAY(SELECT jsonb_array_elements_text(fc)::int) AS fc,
                     ARRAY(SELECT jsonb_array_elements_text(mc)::bigint) AS mc
              FROM jsonb_to_recordset(CAST(:cases AS jsonb))
                   AS x(i int, r int, f int, m bigint, p60 bigint, p95 bigint, fc jsonb,
                        mc jsonb)) c
        ORDER BY c.i
        """
    )
    payload = [
        {"i": i, "r": r_, "f": f_, "m": m_, "p60": t.m_p60, "p95": t.m_p95,
         "fc": list(t.f_cuts), "mc": list(t.m_cuts)}
        for i, (r_, f_, m_, t) in enumerate(cases)
    ]  # fmt: skip
    got = in_transaction(lambda s: s.execute(sql, {"cases": json.dumps(payload)}).mappings().all())
    assert len(got) == len(cases) > 2000
    for (r_, f_, m_, t), row in zip(cases, got, strict=True):
        want = rules.score(r_, f_, m_, t)
        assert (row["rs"], row["fs"], row["ms"], row["total"], row["label"]) == (
            want.r, want.f, want.m, want.total, want.label,
        ), (r_, f_, m_, t)  # fmt: skip
    labels = {row["label"] for row in got}
    assert labels == set(LABELS)  # every branch was reached


# -- labels on constructed histories ----------------------------------------------------


def test_labels_at_their_boundaries_on_constructed_histories():
    """22 buyers (21 of them spent in the window) whose cut-offs are known: m_p60 = 1000
    (the 13th of the 21 sums) and m_p95 = 5000 (the 20th)."""
    he_r7 = player(*[(7 + i, 10) for i in range(10)])  # 10 purchases, the last 7 days ago
    he_r8 = player(*[(8 + i, 10) for i in range(10)])
    r21 = player((21, 10))
    r22 = player((22, 10))
    f4 = player(*[(2, 10)] * 4)
    f3 = player(*[(2, 10)] * 3)
    near = player((1, 4999))
    at_p95 = player((1, 5000))
    top = player((0, 9000))
    p60s = [player((0, 1000)) for _ in range(11)]
    lapsed = player((40, 10))  # bought 40 days ago: F = 0, M = 0
    voided = int(create_user(gold=0)["id"])
    buy(voided, days_ago(1), points=100, settlement="voided")
    mixed = int(create_user(gold=0)["id"])  # a voided conversion and a settled one
    buy(mixed, days_ago(0), points=100, settlement="voided")
    buy(mixed, days_ago(3), points=100, settlement="settled")
    never = int(create_user(gold=0)["id"])

    result = batch()
    got = rows()
    th = store_thresholds()
    assert (th["m_p60"], th["m_p95"], th["population"]) == (1000, 5000, 22)
    assert th["computed_at"] == NOW
    assert {uid: r["label"] for uid, r in got.items()} == {
        he_r7: "HighEngaged",
        he_r8: "Low",  # F = 10 but the last purchase is 8 days old; M below p60
        r21: "Low",
        r22: "AtRisk",
        f4: "Medium",
        f3: "Low",
        near: "Medium",  # 4999: in [p60, p95)
        at_p95: "Whale",
        top: "Whale",
        **{uid: "Medium" for uid in p60s},  # at p60
        lapsed: "AtRisk",
        mixed: "Low",  # the settled conversion only (points count as value)
    }
    assert voided not in got and never not in got  # no segment
    assert got[mixed]["f_count30"] == 1 and got[mixed]["m_sum30"] == 100
    assert got[he_r7]["r_days"] == 7 and got[he_r7]["f_count30"] == 10
    assert got[he_r7]["m_sum30"] == 100
    assert got[lapsed]["f_count30"] == 0 and got[lapsed]["m_sum30"] == 0
    assert got[lapsed]["last_purchase_at"] == days_ago(40)
    assert {r["source"] for r in got.values()} == {"batch"}
    # every row is scored by the Python rules on the stored cut-offs
    cut = rfm.thresholds_of(th)
    for r in got.values():
        want = rules.score(r["r_days"], r["f_count30"], r["m_sum30"], cut)
        assert (r["r_score"], r["f_score"], r["m_score"], r["rfm_total"], r["label"]) == (
            want.r, want.f, want.m, want.total, want.label,
        )  # fmt: skip
    assert result.players == 22 and result.removed == 0 and result.changed == 22
    assert result.labels == {"Whale": 2, "HighEngaged": 1, "Medium": 13, "Low": 4, "AtRisk": 2}


def store_thresholds() -> dict[str, Any]:
    with db.engine().connect() as conn:
        th = store.thresholds(conn)
    assert th is not None
    return th


def test_the_30_day_window_and_calendar_days():
    """F and M count purchases of today and the 29 days before; R is in UTC calendar
    days, so a purchase late yesterday is 1 day old just after midnight."""
    edge = player((29, 7), (30, 11))
    just_after_midnight = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    late = int(create_user(gold=0)["id"])
    buy(late, just_after_midnight - timedelta(hours=1))
    batch(just_after_midnight)
    got = rows()
    assert (got[late]["r_days"], got[late]["r_score"]) == (1, 5)
    # NOW is noon of the same day: the edge player's purchases are 29 and 30 days old
    batch()
    got = rows()
    assert (got[edge]["r_days"], got[edge]["f_count30"], got[edge]["m_sum30"]) == (29, 1, 7)
    assert got[edge]["label"] == "AtRisk"  # R > 21 (M = 7 is nobody's p95 here: late spent 10)


def test_purchases_after_now_are_ignored():
    uid = player((3, 10))
    buy(uid, NOW + timedelta(seconds=1), 999)
    batch()
    row = rows()[uid]
    assert (row["f_count30"], row["m_sum30"], row["r_days"]) == (1, 10, 3)


def test_batch_twice_is_idempotent_and_a_void_removes_the_row():
    a = player((1, 10), (2, 20))
    b = player((5, 10))
    c = int(create_user(gold=0)["id"])
    tx = buy(c, days_ago(2), points=50, settlement="pending")
    first = batch()
    before = rows()
    second = batch()
    after = rows()
    assert second.changed == 0 and second.removed == 0
    assert second.labels == first.labels and second.thresholds == first.thresholds
    strip = ("updated_at",)
    assert {u: {k: v for k, v in r.items() if k not in strip} for u, r in before.items()} == {
        u: {k: v for k, v in r.items() if k not in strip} for u, r in after.items()
    }
    assert set(after) == {a, b, c}

    in_transaction(
        lambda s: s.execute(
            text("UPDATE shop_purchases SET settlement_status = 'voided' WHERE id = :t"),
            {"t": tx},
        )
    )
    third = batch()
    # c is gone; on the smaller population a (M = 30) is now the p95: Medium → Whale
    assert third.removed == 1 and third.changed == 2
    assert third.labels["Whale"] == 1 and rows()[a]["label"] == "Whale"
    assert set(rows()) == {a, b}


def test_a_batch_that_changes_labels_touches_the_content_version(rds):
    from ccweb.player_versions import content_key

    player((1, 10))
    batch()
    assert rds.get(content_key()) == "1"
    batch()  # nothing changed: no bump
    assert rds.get(content_key()) == "1"
    batch(NOW + timedelta(days=30))  # the player's purchase is now 30 days old: AtRisk
    assert rds.get(content_key()) == "2"


def test_incremental_recompute_scores_on_the_stored_cut_offs_before_and_after_a_batch():
    """Before any batch the recompute computes the cut-offs itself (and stores nothing);
    after one it uses the stored ones, even when the population changed since."""
    buyers = [player((0, 100 * (i + 1))) for i in range(20)]  # M = 100..2000
    target = buyers[-1]  # M = 2000: p95 over 20 values is the 19th = 1900
    res = in_transaction(lambda s: rfm.recompute(s, [target], NOW))
    assert res.players == 1 and res.changed == {target: (None, "Whale")}
    assert q("SELECT count(*) AS n FROM segment_thresholds")[0]["n"] == 0
    assert rows()[target]["source"] == "incremental"

    batch()
    # more big spenders arrive; the target's scale stays the batch's until the next batch
    for _ in range(20):
        player((0, 10_000))
    buy(target, days_ago(0), 1)
    res = in_transaction(lambda s: rfm.recompute(s, [target], NOW))
    row = rows()[target]
    assert row["label"] == "Whale" and row["m_sum30"] == 2001 and res.changed == {}
    batch()
    assert rows()[target]["label"] == "Low"  # the new population's p60 and p95 are 10 000


def test_recompute_of_nobody_and_of_a_never_buyer_writes_nothing():
    never = int(create_user(gold=0)["id"])
    assert in_transaction(lambda s: rfm.recompute(s, [], NOW)).players == 0
    assert in_transaction(lambda s: rfm.recompute(s, [never, 10**9], NOW)).players == 0
    assert rows() == {}


# -- the schedule -------------------------------------------------------------------------


def test_due_slot():
    at = dtime(2, 5)
    assert jobs.due_slot(datetime(2026, 11, 20, 2, 5, tzinfo=UTC), at) == datetime(
        2026, 11, 20, 2, 5, tzinfo=UTC
    )
    assert jobs.due_slot(datetime(2026, 11, 20, 2, 4, 59, tzinfo=UTC), at) == datetime(
        2026, 11, 19, 2, 5, tzinfo=UTC
    )
    assert jobs.parse_at("23:30") == dtime(23, 30)
    with pytest.raises(ValueError):
        jobs.parse_at("2h05")


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("CC_SEGMENT_BATCH_AT", "03:15")
    monkeypatch.setenv("CC_SEGMENT_POLL_S", "2.5")
    cfg = jobs.SegmentConfig.from_env()
    assert (cfg.batch_at, cfg.poll_s) == (dtime(3, 15), 2.5)


def race(settings, cfg, now: datetime, n: int = 2) -> list[rfm.BatchResult | None]:  # type: ignore[no-untyped-def]
    """``n`` threads call ``run_if_due`` at the same moment."""
    barrier = threading.Barrier(n)
    out: list[rfm.BatchResult | None] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(5)
            out[i] = jobs.run_if_due(settings, cfg, now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return out


def test_the_nightly_batch_runs_once_a_day_with_racing_runners(settings):
    player((1, 10))
    cfg = jobs.SegmentConfig(batch_at=dtime(2, 5))
    ok = metric("cc_segment_batch_total", result="success")
    day1 = datetime(2026, 11, 20, 2, 5, 1, tzinfo=UTC)

    ran = race(settings, cfg, day1)  # no batch ever: due
    assert sum(r is not None for r in ran) == 1
    assert store_thresholds()["computed_at"] == day1
    assert race(settings, cfg, day1 + timedelta(hours=5)) == [None, None]  # same day: done
    assert race(settings, cfg, day1 + timedelta(hours=23, minutes=58)) == [None, None]  # 02:04
    day2 = day1 + timedelta(days=1)
    ran = race(settings, cfg, day2, n=3)
    assert sum(r is not None for r in ran) == 1
    assert store_thresholds()["computed_at"] == day2
    assert metric("cc_segment_batch_total", result="success") - ok == 2
    assert metric("cc_segment_last_batch_timestamp_seconds") > 0
    assert metric("cc_segment_label_count", label="Whale") == 1  # the only spender


def test_a_held_lock_means_another_process_is_running_it(settings, rds):
    cfg = jobs.SegmentConfig()
    rds.set(jobs.lock_key(), "someone-else", ex=60)
    assert jobs.run_if_due(settings, cfg, NOW) is None
    rds.delete(jobs.lock_key())
    assert jobs.run_if_due(settings, cfg, NOW) is not None


def test_the_scheduler_thread_runs_a_due_batch_and_stops(settings, monkeypatch):
    monkeypatch.setenv("CC_SEGMENT_POLL_S", "0.05")
    player((1, 10))
    stop = threading.Event()
    t = threading.Thread(target=jobs.run_scheduled, args=(settings, stop))
    t.start()
    try:
        from tests.processes import wait_for

        wait_for(lambda: q("SELECT 1 FROM segment_thresholds"), 10, "the first batch")
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert len(rows()) == 1


def test_the_command_prints_a_summary(subprocess_env):
    uid = player((0, 10))
    out = subprocess.run(
        [sys.executable, "-m", "ccweb.segments", "batch"],
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["players"] == 1 and summary["labels"]["Whale"] == 1 and summary["seconds"] >= 0
    out = subprocess.run(
        [sys.executable, "-m", "ccweb.segments", "recompute", "--user", str(uid)],
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1])["players"] == 1
    assert rows()[uid]["source"] == "incremental"


# -- admin routes -------------------------------------------------------------------------


def test_admin_routes_require_an_admin(client):
    user = create_user()
    for method, path in (
        ("get", "/api/admin/segments"),
        ("get", "/api/admin/segments/users/1"),
        ("post", "/api/admin/segments/batch"),
    ):
        resp = getattr(client, method)(path)
        assert resp.status_code == 401, path
        assert resp.get_json()["error"]["code"] == "UNAUTHORIZED"
        resp = getattr(client, method)(path, headers=auth_headers(client, user))
        assert resp.status_code == 403, path
        assert resp.get_json()["error"]["code"] == "FORBIDDEN"


def test_admin_overview_user_row_and_batch_request(client, settings):
    admin = create_user(is_admin=True)
    headers = auth_headers(client, admin, admin=True)
    uid = player((0, 10))
    never = int(create_user(gold=0)["id"])

    body = client.get("/api/admin/segments", headers=headers).get_json()
    assert body["labels"] == dict.fromkeys(LABELS, 0)
    assert body["thresholds"] is None and body["last_batch_at"] is None
    assert body["batch_requested"] is None and body["stale_users"] == 0

    resp = client.post("/api/admin/segments/batch", headers=headers)
    assert resp.status_code == 202
    assert resp.get_json()["requested"]["admin_id"] == admin["id"]
    audit = q("SELECT admin_id, action, target_type FROM admin_audit")
    assert audit == [
        {"admin_id": admin["id"], "action": "segments.batch", "target_type": "segments"}
    ]
    assert client.get("/api/admin/segments", headers=headers).get_json()["batch_requested"]

    # the worker's next poll runs it although the nightly slot is not due
    cfg = jobs.SegmentConfig()
    assert jobs.run_if_due(settings, cfg, NOW) is not None
    assert jobs.run_if_due(settings, cfg, NOW) is None  # the request was consumed
    body = client.get("/api/admin/segments", headers=headers).get_json()
    assert body["labels"]["Whale"] == 1 and body["batch_requested"] is None
    assert body["last_batch_at"] == "2026-11-20T12:00:00Z"
    assert body["thresholds"]["population"] == 1

    row = client.get(f"/api/admin/segments/users/{uid}", headers=headers)
    assert row.status_code == 200
    got = row.get_json()
    assert (got["label"], got["r_days"], got["f_count30"], got["m_sum30"]) == ("Whale", 0, 1, 10)
    assert got["source"] == "batch" and isinstance(got["rfm_total"], float)
    missing = client.get(f"/api/admin/segments/users/{never}", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "NOT_FOUND"


def test_store_reads(settings):
    uid = player((0, 10))
    never = int(create_user(gold=0)["id"])
    batch()
    with db.engine().connect() as conn:
        assert store.label_of(conn, uid) == "Whale"  # the only spender is the p95
        assert store.label_of(conn, never) is None
        seg = store.segment_of(conn, uid)
        assert seg is not None and seg["m_sum30"] == 10
        assert store.segment_of(conn, never) is None
        assert store.label_counts(conn) == {**dict.fromkeys(LABELS, 0), "Whale": 1}
        assert store.stale_users(conn) == 0
        assert store.stale_users(conn, older_than_s=-60) == 1  # every row is "older than soon"
