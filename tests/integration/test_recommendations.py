"""``GET /api/recommendations`` and the dashboard's ``recommendations`` against real
PostgreSQL and Redis: each RFM segment's offer comes from the real (seeded) catalog and
missions, the fallback covers players with no segment and segments with nothing left to
offer, and nothing is offered that the shop or the event would refuse (tier, window,
stock, a ``limit_once`` package already bought). A player is put in a segment by writing
their ``user_segments`` row, as the RFM batch does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from ccweb import clock as app_clock
from ccweb.db import autocommit, in_transaction
from ccweb.liveops.rules import period_start
from ccweb.recommendations import rules
from ccweb.segments.models import LABELS
from ccweb.streak.service import utc_today
from tests.factories import auth_headers, create_event, create_product, create_user

# ------------------------------------------------------------------------------ helpers


def put_in_segment(user_id: int, label: str) -> None:
    in_transaction(
        lambda s: s.execute(
            text(
                "INSERT INTO user_segments (user_id, label, r_days, f_count30, m_sum30,"
                " r_score, f_score, m_score, rfm_total, source)"
                " VALUES (:u, :l, 3, 4, 5000, 4, 3, 3, 3.40, 'batch')"
            ),
            {"u": user_id, "l": label},
        )
    )


def player(
    client: Any, label: str | None = None, *, tier: str = "STANDARD", gold: int = 100_000
) -> tuple[dict[str, Any], dict[str, str]]:
    user = create_user(gold=gold, tier=tier)
    if label is not None:
        put_in_segment(user["id"], label)
    return user, auth_headers(client, user)


def reco(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    resp = client.get("/api/recommendations", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def picks(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(type, sku or title, reason)`` of each item, in order."""
    return [(i["type"], i.get("sku") or i["title"], i["reason"]) for i in body["items"]]


def product_id(sku: str) -> int:
    with autocommit() as conn:
        return int(
            conn.execute(text("SELECT id FROM shop_products WHERE sku = :s"), {"s": sku}).scalar()
        )


def mission_id(title: str, period: str) -> int:
    with autocommit() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM missions WHERE title = :t AND period = :p"),
                {"t": title, "p": period},
            ).scalar()
        )


def buy(client: Any, headers: dict[str, str], pid: int, key: str) -> None:
    resp = client.post(
        "/api/shop/purchase", json={"product_id": pid, "idempotency_key": key}, headers=headers
    )
    assert resp.status_code == 200, resp.get_json()


def package(**fields: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"category": "package", "price_gold": 1000, "gold_amount": 1500}
    return create_product(**{**defaults, **fields})


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("cc_reco_request_total", {"result": result}) or 0.0


# The seeded content a STANDARD player sees (ccweb/seed.py): events all end together, so
# they come in id order; the first one is "Spin Marathon".
FIRST_EVENT = ("event", "Spin Marathon", "join_event")


# ----------------------------------------------------------------------------- segments


def test_at_risk_player_gets_the_return_package(client, seeded):
    _, headers = player(client, "AtRisk")
    body = reco(client, headers)
    assert body["segment"] == "AtRisk" and body["result"] == "ok"
    assert body["items"][0] == {
        "type": "product",
        "id": product_id("pkg_return_welcome_back"),
        "sku": "pkg_return_welcome_back",
        "title": "Welcome Back Pack",
        "reason": "return_package",
        "segment": "AtRisk",
        "cta": rules.RETURN_PACKAGE.cta,
    }
    assert picks(body)[1:] == [FIRST_EVENT]


def test_whale_gets_the_limited_package_then_the_biggest_one(client, seeded):
    _, headers = player(client, "Whale")
    body = reco(client, headers)
    assert body["segment"] == "Whale" and body["result"] == "ok"
    # the PREMIUM-only vault is not for a STANDARD whale; the limited chest is not offered
    # twice; the return pack is AtRisk's alone
    assert picks(body) == [
        ("product", "pkg_limited_weekend", "limited_package"),
        ("product", "pkg_gold_bundle", "top_package"),
    ]
    assert {i["segment"] for i in body["items"]} == {"Whale"}


def test_whale_whose_limited_package_sold_out_gets_the_next_rule(client):
    limited = package(sku="pkg_chest", price_gold=5000, gold_amount=9000, stock=1)
    package(sku="pkg_big", price_gold=3000, gold_amount=3500)
    package(sku="pkg_small", price_gold=500, gold_amount=600)
    _, whale = player(client, "Whale")
    assert picks(reco(client, whale)) == [
        ("product", "pkg_chest", "limited_package"),
        ("product", "pkg_big", "top_package"),
    ]
    _, other = player(client)
    buy(client, other, limited["id"], "last-one")  # sold out now
    body = reco(client, whale)
    assert body["result"] == "ok"
    assert picks(body) == [("product", "pkg_big", "top_package")]


def test_high_engaged_gets_mission_extensions_weekly_first(client, seeded):
    user, headers = player(client, "HighEngaged")
    body = reco(client, headers)
    assert body["segment"] == "HighEngaged" and body["result"] == "ok"
    assert picks(body) == [
        ("mission", "Play 100 rounds", "mission_extension"),
        ("mission", "Win 10,000 gold", "mission_extension"),
        FIRST_EVENT,
    ]
    assert body["items"][0]["id"] == mission_id("Play 100 rounds", "weekly")
    assert body["items"][0]["cta"] == "Keep going: 0/100"
    assert "sku" not in body["items"][0]

    # this week: one weekly mission claimed, the other under way
    week = period_start("weekly", utc_today())
    rows = [("Play 100 rounds", "claimed", 100), ("Win 10,000 gold", "active", 2500)]
    for title, status, progress in rows:
        in_transaction(
            lambda s, title=title, status=status, progress=progress: s.execute(
                text(
                    "INSERT INTO user_missions (user_id, mission_id, period_start, status,"
                    " progress) VALUES (:u, :m, :w, :st, ARRAY[:p]::bigint[])"
                ),
                {
                    "u": user["id"],
                    "m": mission_id(title, "weekly"),
                    "w": week,
                    "st": status,
                    "p": progress,
                },
            )
        )
    body = reco(client, headers)
    assert picks(body) == [
        ("mission", "Win 10,000 gold", "mission_extension"),
        ("mission", "Play 10 rounds", "mission_extension"),  # then the dailies
        FIRST_EVENT,
    ]
    assert body["items"][0]["cta"] == "Keep going: 2500/10000"


def test_medium_gets_the_value_package_and_never_one_already_bought(client, seeded):
    _, headers = player(client, "Medium")
    body = reco(client, headers)
    assert body["segment"] == "Medium" and body["result"] == "ok"
    # most gold per gold paid: the starter pack (2,000 for 500)
    assert picks(body) == [("product", "pkg_starter", "value_package"), FIRST_EVENT]
    buy(client, headers, product_id("pkg_starter"), "starter")
    # limit_once and bought: the next best ratio (12,000 for 5,000)
    assert picks(reco(client, headers)) == [
        ("product", "pkg_limited_weekend", "value_package"),
        FIRST_EVENT,
    ]


def test_low_gets_an_event_to_join_then_the_cheapest_package(client, seeded):
    _, headers = player(client, "Low")
    body = reco(client, headers)
    assert body["segment"] == "Low" and body["result"] == "ok"
    assert picks(body) == [FIRST_EVENT, ("product", "pkg_starter", "entry_package")]
    joined = client.post(f"/api/events/{body['items'][0]['id']}/participate", headers=headers)
    assert joined.status_code == 200
    # a joined event is no longer an event to join
    assert picks(reco(client, headers))[0] == ("event", "Slot Lover", "join_event")


# ----------------------------------------------------------------------------- fallback


def test_player_without_a_segment_gets_the_starter_offers(client, seeded):
    _, headers = player(client)
    before = counted("fallback")
    body = reco(client, headers)
    assert body["segment"] is None and body["result"] == "fallback"
    assert picks(body) == [
        ("product", "pkg_starter", "starter_package"),
        ("product", "pkg_gold_bundle", "entry_package"),
        FIRST_EVENT,
    ]
    assert {i["segment"] for i in body["items"]} == {None}
    assert counted("fallback") == before + 1


def test_segment_with_nothing_left_to_offer_falls_back(client):
    back = package(sku="pkg_return_test", price_gold=200, gold_amount=2000, limit_once=True)
    package(sku="pkg_small", price_gold=500, gold_amount=600)
    _, headers = player(client, "AtRisk")
    assert reco(client, headers)["items"] == [
        {
            "type": "product",
            "id": back["id"],
            "sku": "pkg_return_test",
            "title": "Test product",
            "reason": "return_package",
            "segment": "AtRisk",
            "cta": rules.RETURN_PACKAGE.cta,
        }
    ]
    buy(client, headers, back["id"], "came-back")  # once per player; and no event runs
    body = reco(client, headers)
    assert body["segment"] == "AtRisk" and body["result"] == "fallback"
    assert picks(body) == [("product", "pkg_small", "entry_package")]
    assert body["items"][0]["segment"] is None


def test_nothing_at_all_is_an_empty_fallback(client):
    _, headers = player(client, "Whale")
    assert reco(client, headers) == {"segment": "Whale", "result": "fallback", "items": []}


def test_every_segment_label_has_rules():
    assert set(rules.SEGMENT_RULES) == set(LABELS)


def test_a_label_without_rules_falls_back():
    """A label the rules do not know yet (a new segment) gets the cold-start offers."""
    starter = {"id": 1, "sku": "pkg_s", "name": "S", "price_gold": 100, "gold_amount": 200}
    starter |= {"limit_once": True, "stock_remaining": None, "ends_at": None}
    got = rules.recommend(rules.Candidates("Dormant", [starter], {}, []))
    assert got["result"] == "fallback" and got["segment"] == "Dormant"
    assert [(i["sku"], i["reason"], i["segment"]) for i in got["items"]] == [
        ("pkg_s", "starter_package", None)
    ]


# ------------------------------------------------------------------------- availability


def test_tier_restricted_offers_only_reach_their_tier(client):
    package(sku="pkg_vip_chest", price_gold=9000, stock=5, tier_required="PREMIUM")
    package(sku="pkg_plain", price_gold=1000)
    create_event([{"type": "plays", "target": 5}], title="VIP night", tier_required="VIP")
    _, standard = player(client, "Whale")
    assert picks(reco(client, standard)) == [("product", "pkg_plain", "top_package")]
    _, premium = player(client, "Whale", tier="PREMIUM")
    assert picks(reco(client, premium)) == [
        ("product", "pkg_vip_chest", "limited_package"),
        ("product", "pkg_plain", "top_package"),
    ]
    _, low = player(client, "Low")
    assert picks(reco(client, low)) == [("product", "pkg_plain", "entry_package")]
    _, vip = player(client, "Low", tier="VIP")
    assert picks(reco(client, vip))[0] == ("event", "VIP night", "join_event")


def test_only_packages_on_sale_now_are_offered(client, clock):
    now = app_clock.utcnow()
    package(sku="pkg_soon", stock=5, starts_at=now + timedelta(minutes=10))
    package(sku="pkg_gone", stock=5, ends_at=now - timedelta(seconds=1))
    package(sku="pkg_off", stock=5, is_active=False)
    package(sku="pkg_item", category="item", price_gold=50, gold_amount=0)
    _, headers = player(client, "Whale")
    assert reco(client, headers)["result"] == "fallback"
    clock.advance(601)  # (within the access token's life)
    assert picks(reco(client, headers)) == [("product", "pkg_soon", "limited_package")]


# -------------------------------------------------------------------- metrics, auth, UI


def test_answers_are_counted_by_result_and_timed(client):
    package(sku="pkg_plain")
    _, whale = player(client, "Whale")
    _, newcomer = player(client)
    ok, fallback = counted("ok"), counted("fallback")
    timed = REGISTRY.get_sample_value("cc_reco_latency_seconds_count") or 0.0
    assert reco(client, whale)["result"] == "ok"
    assert reco(client, newcomer)["result"] == "fallback"
    assert reco(client, newcomer)["result"] == "fallback"
    assert (counted("ok"), counted("fallback")) == (ok + 1, fallback + 2)
    assert REGISTRY.get_sample_value("cc_reco_latency_seconds_count") == timed + 3
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'cc_reco_request_total{result="error"}' in scraped


def test_requires_a_token(client):
    resp = client.get("/api/recommendations")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("label", [None, "AtRisk", "Whale", "HighEngaged", "Medium", "Low"])
def test_the_dashboard_shows_the_same_offers(client, seeded, label):
    _, headers = player(client, label)
    items = reco(client, headers)["items"]
    assert items
    assert client.get("/api/dashboard", headers=headers).get_json()["recommendations"] == items


def test_the_dashboard_offers_follow_the_players_purchase(client, seeded):
    """A purchase re-renders the player's cached dashboard, offers included."""
    _, headers = player(client, "Medium")
    first = client.get("/api/dashboard", headers=headers).get_json()["recommendations"]
    assert first[0]["sku"] == "pkg_starter"
    buy(client, headers, product_id("pkg_starter"), "starter")
    after = client.get("/api/dashboard", headers=headers).get_json()["recommendations"]
    assert after == reco(client, headers)["items"]
    assert after[0]["sku"] == "pkg_limited_weekend"
