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
from sqlalchemy import text

from ccweb.db import autocommit
from ccweb.games import config, config_document, fairness
from ccweb.games.engines import crash, gacha, rps, slot
from tests.factories import auth_headers, create_user

URL = "/api/games/config"


@pytest.fixture(autouse=True)
def _fresh_registry():
    """The tables were just emptied: forget which config versions this process stored,
    so each test's first round stores its document again (as a new process would)."""
    config_document.forget()
    yield
    config_document.forget()


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
    assert len(rounds) == len(plays)
    for r in rounds:
        _assert_rederives(r, seed, doc)


def _rederive(r: dict[str, Any], seed: str, doc: dict[str, Any]) -> Any:
    """Round ``r`` drawn again by the server's engines fed only the document ``doc``."""
    cfg = _configs(doc)
    rng = fairness.floats(seed, r["client_seed"], r["nonce"])
    d = r["detail"]
    if r["game_type"] == "slot":
        return slot.play(cfg["slot"], rng, d["bet"])
    if r["game_type"] == "gacha":
        return gacha.play(cfg["gacha"], rng, d["count"], d["pity_before"])
    if r["game_type"] == "rps":
        u = fairness.digest_floats(fairness.digest(seed, r["client_seed"], r["nonce"]))[0]
        house = doc["rps"]["choices"][int(u * 3) % 3]  # the engine's CHOICES are published
        assert house == d["house_choice"]
        return rps.play(cfg["rps"], rng, d["bet"], d["choice"])
    return crash.play(cfg["crash"], rng, d["bet"], d["auto_cashout"])


def _assert_rederives(r: dict[str, Any], seed: str, doc: dict[str, Any]) -> None:
    again = _rederive(r, seed, doc)
    assert json.loads(json.dumps(again.to_dict())) == r["detail"]
    assert (again.payout, again.outcome) == (r["payout"], r["outcome"])


def test_openapi_documents_a_public_endpoint(client):
    op = client.get("/api/openapi.json").get_json()["paths"]["/api/games/config"]["get"]
    assert "security" not in op and "401" not in op["responses"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/GamesConfigOut")
    assert any(p["name"] == "version" and p["in"] == "query" for p in op.get("parameters", []))
    assert {"400", "404"} <= set(op["responses"])
    spec = client.get("/api/openapi.json").get_json()
    rounds = spec["paths"]["/api/games/rounds/recent"]["get"]["responses"]["200"]["content"]
    assert rounds["application/json"]["schema"]["$ref"].endswith("/RoundsOut")
    assert "config_version" in spec["components"]["schemas"]["RoundOut"]["properties"]


# --- versions: every round records the config it was played with -------------------------


def _stored_rows() -> dict[str, Any]:
    with autocommit() as conn:
        rows = conn.execute(text("SELECT version, document FROM game_configs")).all()
    return {r.version: r.document for r in rows}


def _spin_and_rounds(client, headers, n: int = 1) -> list[dict[str, Any]]:
    for _ in range(n):
        resp = client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers)
        assert resp.status_code == 200, resp.get_json()
    return client.get("/api/games/rounds/recent?limit=50", headers=headers).get_json()["items"]


def _slot_with_seven_paying_more() -> config.SlotConfig:
    """Sevens pay one bet more (two or three of them)."""
    s = config.DEFAULT_SLOT
    pays = dict(s.paytable)
    pays["seven"] = config.SlotPay(three=pays["seven"].three + 1, two=pays["seven"].two + 1)
    return config.SlotConfig(strips=s.strips, paytable=pays)


def test_a_round_stores_its_config_version_and_the_document_once(client):
    """The round's ``config_version`` is the current version, and the document stored
    under it (by the round's own statement) equals the published one; later rounds of
    the same version store nothing more."""
    current = client.get(URL).get_json()
    user = create_user(gold=100_000)
    headers = auth_headers(client, user)
    assert _stored_rows() == {}
    rounds = _spin_and_rounds(client, headers, 3)
    assert [r["config_version"] for r in rounds] == [current["version"]] * 3
    with autocommit() as conn:
        in_db = conn.execute(text("SELECT DISTINCT config_version FROM game_rounds")).scalars()
        assert list(in_db) == [current["version"]]
    stored = _stored_rows()
    assert stored == {current["version"]: current}

    # served by version: the same document, immutable for a year
    resp = client.get(f"{URL}?version={current['version']}")
    assert resp.status_code == 200 and resp.get_json() == current
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["ETag"] == f'"{current["version"]}"'


def test_an_old_round_verifies_with_its_stored_config_after_a_change(client, monkeypatch):
    """A paytable change in-process (as a deploy would) gives new rounds a new version,
    while a round played before it still re-derives — with the server's engines — from
    the document stored under ITS version, served by ``?version=`` from the database
    (not from memory: the current config is no longer that one)."""
    user = create_user(gold=1_000_000)
    headers = auth_headers(client, user)
    old_version = client.get(URL).get_json()["version"]
    # play until a round paid a line with a seven: the changed pay would re-derive it wrong
    for _ in range(400):
        rounds = _spin_and_rounds(client, headers)
        old = rounds[0]
        if any(line["symbol"] == "seven" for line in old["detail"]["lines"]):
            break
    else:
        pytest.fail("no winning seven in 400 spins")
    assert old["config_version"] == old_version

    monkeypatch.setattr(config, "DEFAULT_SLOT", _slot_with_seven_paying_more())
    new_doc = client.get(URL).get_json()
    assert new_doc["version"] != old_version
    new = _spin_and_rounds(client, headers)[0]
    assert new["round_id"] > old["round_id"]
    assert new["config_version"] == new_doc["version"]
    assert set(_stored_rows()) == {old_version, new_doc["version"]}

    seed = client.post("/api/games/fairness/rotate", json={}, headers=headers).get_json()[
        "previous_server_seed"
    ]
    old_doc = client.get(f"{URL}?version={old['config_version']}").get_json()
    assert old_doc["version"] == old_version
    assert old_doc["slot"]["paytable"]["seven"] != new_doc["slot"]["paytable"]["seven"]
    _assert_rederives(old, seed, old_doc)  # verified with the config it was played with
    _assert_rederives(new, seed, new_doc)
    # with the current config the old round would be a false mismatch
    assert _rederive(old, seed, new_doc).payout != old["payout"]


def test_unknown_version_is_404_and_garbage_is_400(client):
    missing = client.get(f"{URL}?version=0123456789abcdef")
    assert missing.status_code == 404
    body = missing.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == "NOT_FOUND"
    assert body["error"]["details"] == {"version": "0123456789abcdef"}
    for bad in ("xyz", "0123456789ABCDEF", "0123456789abcdef0", "'; DROP TABLE x; --", ""):
        resp = client.get(URL, query_string={"version": bad})
        assert resp.status_code == 400, bad
        assert resp.get_json()["error"]["code"] == "VALIDATION_ERROR"
