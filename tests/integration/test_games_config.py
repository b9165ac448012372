"""``GET /api/games/config``: the parameters a verifier needs, public and cacheable.

Why these tests: the browser verifier (and any third party) re-derives rounds from this
document instead of a copy of ``ccweb.games.config``, so the document must be complete
(configs rebuilt from it alone reproduce rounds played over HTTP), equal to the server's
configs, identical for everyone without a token, and revalidated by its ETag.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccweb.games import config, fairness, routes
from ccweb.games.engines import crash, gacha, rps, slot
from tests.factories import auth_headers, create_user

URL = "/api/games/config"


@pytest.fixture(autouse=True)
def _fresh_document():
    """The document is built once per process; a test that swaps a config rebuilds it."""
    routes.games_config_document.cache_clear()
    yield
    routes.games_config_document.cache_clear()


def _configs(doc: dict[str, Any]) -> dict[str, Any]:
    """The engines' configs rebuilt from the published document alone."""
    s, ga, r, c = doc["slot"], doc["gacha"], doc["rps"], doc["crash"]
    return {
        "slot": config.SlotConfig(
            strips=tuple(tuple(strip) for strip in s["strips"]),
            paytable={
                sym: config.SlotPay(three=p["three_cents"] / 100, two=p["two_cents"] / 100)
                for sym, p in s["paytable"].items()
            },
            paylines=tuple(tuple(line) for line in s["paylines"]),
            rows=s["rows"],
        ),
        "gacha": config.GachaConfig(
            rarities=tuple(
                config.Rarity(
                    t["name"], t["weight"], t["value"], tuple(t["item_ids"]), t["bonus_items"]
                )
                for t in ga["rarities"]
            ),
            cost=ga["cost"],
            pity_threshold=ga["pity_threshold"],
        ),
        "rps": config.RpsConfig(
            win_multiplier=r["win_cents"] / 100, draw_multiplier=r["draw_cents"] / 100
        ),
        "crash": config.CrashConfig(house_edge=c["edge_bp"] / 10_000),
    }


def test_public_document_equals_the_servers_configs(client):
    """No token needed; every derivation parameter equals ``ccweb.games.config``."""
    resp = client.get(URL)
    assert resp.status_code == 200, resp.get_json()
    assert resp.mimetype == "application/json"
    doc = resp.get_json()
    assert set(doc) == {"version", "slot", "gacha", "rps", "crash"}

    s = config.DEFAULT_SLOT
    assert doc["slot"]["rows"] == s.rows == 3
    assert doc["slot"]["strips"] == [list(strip) for strip in s.strips]
    assert doc["slot"]["paylines"] == [list(line) for line in s.paylines]
    assert {k: (v["two_cents"], v["three_cents"]) for k, v in doc["slot"]["paytable"].items()} == (
        s.pay_cents
    )
    g = config.DEFAULT_GACHA
    assert (doc["gacha"]["cost"], doc["gacha"]["pity_threshold"]) == (g.cost, g.pity_threshold)
    assert doc["gacha"]["rarities"] == [
        {
            "name": t.name,
            "weight": t.weight,
            "value": t.value,
            "bonus_items": t.bonus_items,
            "item_ids": list(t.item_ids),
        }
        for t in g.rarities
    ]
    assert doc["rps"] == {
        "choices": list(rps.CHOICES),
        "beats": rps.BEATS,
        "win_cents": config.cents(config.DEFAULT_RPS.win_multiplier),
        "draw_cents": config.cents(config.DEFAULT_RPS.draw_multiplier),
    }
    assert doc["crash"] == {"edge_bp": config.DEFAULT_CRASH.edge_bp}

    # the rebuilt configs are the calibrated ones (what the engines actually read)
    rebuilt = _configs(doc)
    assert rebuilt["slot"].pay_cents == s.pay_cents
    assert rebuilt["slot"].windows == s.windows
    assert rebuilt["gacha"].rarities == g.rarities
    assert config.cents(rebuilt["rps"].win_multiplier) == config.cents(
        config.DEFAULT_RPS.win_multiplier
    )
    assert rebuilt["crash"].edge_bp == config.DEFAULT_CRASH.edge_bp

    # a token (even a bad one) changes nothing: the same bytes for everyone
    user = create_user()
    with_token = client.get(URL, headers=auth_headers(client, user))
    garbage = client.get(URL, headers={"Authorization": "Bearer not-a-token"})
    assert with_token.status_code == garbage.status_code == 200
    assert with_token.data == garbage.data == resp.data


def test_etag_is_the_version_and_revalidates_with_304(client):
    resp = client.get(URL)
    version = resp.get_json()["version"]
    assert len(version) == 16 and int(version, 16) >= 0
    assert resp.headers["ETag"] == f'"{version}"'
    assert resp.headers["Cache-Control"] == "public, max-age=300"

    for tag in (f'"{version}"', f'W/"{version}"', f'"other", "{version}"', "*"):
        again = client.get(URL, headers={"If-None-Match": tag})
        assert again.status_code == 304, tag
        assert again.data == b""
        assert again.headers["ETag"] == f'"{version}"'
        assert again.headers["Cache-Control"] == "public, max-age=300"
    stale = client.get(URL, headers={"If-None-Match": '"0000000000000000"'})
    assert stale.status_code == 200 and stale.data == resp.data


def test_a_changed_paytable_changes_version_and_etag(client, monkeypatch):
    """A deploy that recalibrates a pay must reach clients: new version, new ETag, and
    the old ETag no longer gets a 304."""
    old = client.get(URL)
    old_tag = old.headers["ETag"]
    s = config.DEFAULT_SLOT
    pays = dict(s.paytable)
    pays["seven"] = config.SlotPay(three=pays["seven"].three + 1, two=pays["seven"].two)
    monkeypatch.setattr(config, "DEFAULT_SLOT", config.SlotConfig(strips=s.strips, paytable=pays))
    routes.games_config_document.cache_clear()

    new = client.get(URL, headers={"If-None-Match": old_tag})
    assert new.status_code == 200
    doc = new.get_json()
    assert doc["slot"]["paytable"]["seven"]["three_cents"] == s.pay_cents["seven"][1] + 100
    assert doc["version"] != old.get_json()["version"]
    assert new.headers["ETag"] == f'"{doc["version"]}"' != old_tag


def test_configs_rebuilt_from_the_document_reproduce_played_rounds(client):
    """Completeness: play every game over HTTP, rotate, then re-derive each round with
    the engines fed only the published document (not ``ccweb.games.config``)."""
    user = create_user(gold=100_000)
    headers = auth_headers(client, user)
    plays = [
        ("/api/games/slot/spin", {"bet": 100}),
        ("/api/games/slot/spin", {"bet": 7}),
        ("/api/games/gacha/pull", {"count": 10}),
        ("/api/games/gacha/pull", {"count": 1}),
        ("/api/games/rps/play", {"bet": 100, "choice": "paper"}),
        ("/api/games/crash/bet", {"bet": 100, "auto_cashout": 1.5}),
    ]
    for path, body in plays:
        assert client.post(path, json=body, headers=headers).status_code == 200
    rounds = client.get("/api/games/rounds/recent?limit=10", headers=headers).get_json()["items"]
    seed = client.post("/api/games/fairness/rotate", json={}, headers=headers).get_json()[
        "previous_server_seed"
    ]
    doc = client.get(URL).get_json()  # anonymous, as a third-party verifier would
    cfg = _configs(doc)
    assert len(rounds) == len(plays)
    for r in rounds:
        rng = fairness.floats(seed, r["client_seed"], r["nonce"])
        d = r["detail"]
        if r["game_type"] == "slot":
            again: Any = slot.play(cfg["slot"], rng, d["bet"])
        elif r["game_type"] == "gacha":
            again = gacha.play(cfg["gacha"], rng, d["count"], d["pity_before"])
        elif r["game_type"] == "rps":
            u = fairness.digest_floats(fairness.digest(seed, r["client_seed"], r["nonce"]))[0]
            house = doc["rps"]["choices"][int(u * 3) % 3]  # the engine's CHOICES are published
            assert house == d["house_choice"]
            again = rps.play(cfg["rps"], rng, d["bet"], d["choice"])
        else:
            again = crash.play(cfg["crash"], rng, d["bet"], d["auto_cashout"])
        assert json.loads(json.dumps(again.to_dict())) == d
        assert (again.payout, again.outcome) == (r["payout"], r["outcome"])


def test_openapi_documents_a_public_endpoint(client):
    op = client.get("/api/openapi.json").get_json()["paths"]["/api/games/config"]["get"]
    assert "security" not in op and "401" not in op["responses"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/GamesConfigOut")
