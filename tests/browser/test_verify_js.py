"""The browser's fairness verifier (``ccweb/play/static/js/games/verify.js``) computes
exactly what the server's engines compute, bit for bit, in Chromium's Web Crypto.

Why this matters: a player's "verified" is only worth something if the JavaScript
derivation is the server's. The server's code is the reference here: rounds are drawn
by ``ccweb.games.engines`` from ``ccweb.games.fairness.floats`` with random seeds,
nonces and inputs (every game, both gacha counts, pity about to trigger, the crash
edges), and the module must reproduce every field using the games' configuration it
FETCHED from the running server (``GET /api/games/config``, through the client's own
``Api``) — the module holds no copy of the strips, paytable, rarities or edge. A config
with a changed paytable, altered rounds or a wrong seed must not verify.
"""

from __future__ import annotations

import json
import random
import secrets
from typing import Any

import pytest

from ccweb.games import config, fairness, routes
from ccweb.games.engines import crash, gacha, rps, slot

MODULE = "/play/static/js/games/verify.js"
API_MODULE = "/play/static/js/api.js"
CONFIG_PATH = "/api/games/config"


def _open(page: Any) -> Any:
    """A page on the server's origin (a secure context: 127.0.0.1) with the module
    loaded as ``window.V`` (no config loaded yet)."""
    page.goto("/health")
    page.evaluate(f"async () => {{ window.V = await import('{MODULE}'); }}")
    return page


def _load_config(page: Any) -> dict[str, Any]:
    """``loadGameConfig`` with the client's real ``Api`` (as the fairness view calls it),
    kept as ``window.CFG``; asserts the document came over the network from the
    server's endpoint. Returns the document the page holds."""
    with page.expect_response(lambda r: r.url.endswith(CONFIG_PATH)) as response:
        doc = page.evaluate(
            f"""async () => {{
                const {{ Api }} = await import('{API_MODULE}');
                window.CFG = await window.V.loadGameConfig(new Api());
                return window.CFG;
            }}"""
        )
    assert response.value.status == 200
    assert response.value.request.method == "GET"
    return dict(doc)


@pytest.fixture
def verify_page(page: Any) -> Any:
    """``_open`` + ``_load_config``: the module with the server's fetched config."""
    _open(page)
    page.fetched_config = _load_config(page)
    return page


def _round(game: str, rnd: random.Random) -> dict[str, Any]:
    server_seed = fairness.new_server_seed()
    client_seed = secrets.token_hex(rnd.randint(1, 16))
    nonce = rnd.choice([0, 1, 7, rnd.randint(0, 10**7)])
    rng = fairness.floats(server_seed, client_seed, nonce)
    result: Any
    if game == "slot":
        result = slot.play(config.DEFAULT_SLOT, rng, rnd.choice([1, 7, 100, 333, 10_000]))
    elif game == "gacha":
        pity = rnd.choice([0, 3, 50, 58, 59])  # 59: the first pull is forced
        result = gacha.play(config.DEFAULT_GACHA, rng, rnd.choice([1, 10]), pity)
    elif game == "rps":
        result = rps.play(
            config.DEFAULT_RPS,
            rng,
            rnd.choice([1, 55, 100, 9_999]),
            rnd.choice(["rock", "paper", "scissors"]),
        )
    else:
        result = crash.play(
            config.DEFAULT_CRASH,
            rng,
            rnd.choice([1, 55, 100, 9_999]),
            rnd.choice([1.01, 1.5, 2.0, 2.37, 10.0, 1000.0]),
        )
    detail = json.loads(json.dumps(result.to_dict()))  # as stored and served (JSON)
    return {
        "round_id": rnd.randint(1, 10**9),
        "game_type": game,
        "bet": result.bet,
        "payout": result.payout,
        "outcome": result.outcome,
        "server_seed_hash": fairness.seed_hash(server_seed),
        "client_seed": client_seed,
        "nonce": nonce,
        "detail": detail,
        "seed": server_seed,
    }


def _verify_all(page: Any, rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(
        page.evaluate(
            """async (rounds) => {
                const out = [];
                for (const r of rounds) {
                    const v = await window.V.verifyRound(r, r.seed, window.CFG);
                    out.push({ok: v.ok, commitmentOk: v.commitmentOk,
                              fields: v.mismatches.map((m) => m.field),
                              text: window.V.describeVerification(v, r)});
                }
                return out;
            }""",
            rounds,
        )
    )


def _rounds(seed: int, n: int = 60) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    return [_round(game, rnd) for _ in range(n) for game in ("slot", "gacha", "rps", "crash")]


def test_every_game_derives_the_servers_outcome(verify_page: Any) -> None:
    """Random seeds, nonces and inputs: with the config fetched from the server, the
    module reproduces every recorded field of 240 rounds the engines played."""
    rounds = _rounds(20261215)
    assert len(rounds) == 240
    # the draws must cover wins, losses, ten-pulls and forced pity pulls (else a
    # branch of the JavaScript would go untested)
    assert {r["outcome"] for r in rounds} >= {"win", "lose"}
    assert any(r["game_type"] == "gacha" and r["detail"]["count"] == 10 for r in rounds)
    assert any(
        item["guaranteed"]
        for r in rounds
        if r["game_type"] == "gacha"
        for item in r["detail"]["items"]
    )
    assert any(r["game_type"] == "crash" and r["detail"]["cashed_out_at"] for r in rounds)
    results = _verify_all(verify_page, rounds)
    failed = [
        (r["game_type"], v["text"]) for r, v in zip(rounds, results, strict=True) if not v["ok"]
    ]
    assert not failed, failed[:3]
    assert all(v["text"].startswith("verified") for v in results)


def test_stream_floats_match_the_servers(verify_page: Any) -> None:
    """digest_0, digest_1, digest_2: the 24 first floats of a stream, exactly."""
    seed, client, nonce = fairness.new_server_seed(), "client-seed", 42
    stream = fairness.floats(seed, client, nonce)
    expected = [next(stream) for _ in range(24)]
    got = verify_page.evaluate(
        "([s, c, n]) => window.V.roundFloats(s, c, n, 24)", [seed, client, nonce]
    )
    assert got == expected
    assert verify_page.evaluate("(s) => window.V.sha256Hex(s)", seed) == fairness.seed_hash(seed)


@pytest.mark.parametrize("k", [0, 1, 2**31, 2**32 - 2**25, 2**32 - 100, 2**32 - 1])
def test_crash_point_is_exact_at_the_edges(verify_page: Any, k: int) -> None:
    """The crash point is integer arithmetic on k / 2³²; the largest k are where a
    floating-point shortcut would go wrong."""
    expected = crash.crash_point_cents(config.DEFAULT_CRASH, k / 2**32)
    assert verify_page.evaluate("(k) => window.V.crashPointCents(k, window.CFG.crash)", k) == (
        expected
    )


def test_the_config_is_fetched_once_from_the_server_and_is_its_own(page: Any) -> None:
    """The module has no copy: before loading there is nothing to derive with, the
    document comes from the endpoint (one request for any number of loads) and is the
    server's current config (same version, same derivation values)."""
    _open(page)
    error = page.evaluate(
        """async () => {
            try { await window.V.deriveOutcome(
                {game_type: "slot", bet: 1, nonce: 0, client_seed: "c", detail: {}}, "s");
                  return null; } catch (e) { return e.message; }
        }"""
    )
    assert error and "loadGameConfig" in error
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.url.endswith(CONFIG_PATH) else None)
    doc = _load_config(page)
    again = page.evaluate(
        f"""async () => {{
            const {{ Api }} = await import('{API_MODULE}');
            const second = await window.V.loadGameConfig(new Api());
            return second === window.CFG;
        }}"""
    )
    assert again is True and len(requests) == 1  # fetched once per page
    body, version = routes.games_config_document()
    assert doc == json.loads(body) and doc["version"] == version
    assert page.evaluate("() => 'GAME_CONFIG' in window.V") is False  # no copy left


def test_a_config_with_a_changed_paytable_does_not_verify(page: Any) -> None:
    """The server's rounds checked against a config whose slot paytable differs (each
    pay one hundredth higher, served in place of the real document): every winning
    spin is a mismatch naming the pays, and spins without a line still verify — the
    paytable the module derives with is the one it fetched."""
    doc_holder: dict[str, Any] = {}

    def tamper(route: Any) -> None:
        doc = route.fetch().json()
        for pays in doc["slot"]["paytable"].values():
            pays["two_cents"] += 1
            pays["three_cents"] += 1
        doc_holder["doc"] = doc
        route.fulfill(json=doc)

    page.route(f"**{CONFIG_PATH}", tamper)
    _open(page)
    loaded = _load_config(page)
    assert loaded == doc_holder["doc"]
    assert loaded["slot"]["paytable"]["seven"]["three_cents"] == (
        config.DEFAULT_SLOT.pay_cents["seven"][1] + 1
    )
    rounds = [r for r in _rounds(99, 40) if r["game_type"] == "slot"]
    won = [r for r in rounds if r["detail"]["lines"]]
    blank = [r for r in rounds if not r["detail"]["lines"]]
    assert won and blank
    results = _verify_all(page, won + blank)
    for v in results[: len(won)]:
        assert v["ok"] is False and v["commitmentOk"] is True
        assert v["text"].startswith("mismatch: ")
        assert {"lines", "multiplier"} <= set(v["fields"])
    assert all(v["ok"] for v in results[len(won) :])


def test_tampered_rounds_and_wrong_seeds_do_not_verify(verify_page: Any) -> None:
    """A changed payout, house hand, item, crash point or reel — or the seed of another
    round — is reported as a mismatch naming what differs."""
    rnd = random.Random(7)
    base = {g: _round(g, rnd) for g in ("slot", "gacha", "rps", "crash")}
    other_seed = fairness.new_server_seed()

    slot_r = json.loads(json.dumps(base["slot"]))
    slot_r["detail"]["reels"][1][1] = (
        "seven" if slot_r["detail"]["reels"][1][1] != "seven" else "bar"
    )
    rps_r = json.loads(json.dumps(base["rps"]))
    flip = {"rock": "paper", "paper": "scissors", "scissors": "rock"}
    rps_r["detail"]["house_choice"] = flip[rps_r["detail"]["house_choice"]]
    gacha_r = json.loads(json.dumps(base["gacha"]))
    gacha_r["detail"]["items"][0]["item_id"] += 1
    crash_r = json.loads(json.dumps(base["crash"]))
    crash_r["detail"]["crash_point"] = round(crash_r["detail"]["crash_point"] + 0.01, 2)
    paid_r = json.loads(json.dumps(base["slot"]))
    paid_r["payout"] += 1
    wrong_seed = {**base["rps"], "seed": other_seed}

    cases = [slot_r, rps_r, gacha_r, crash_r, paid_r, wrong_seed]
    results = _verify_all(verify_page, cases)
    assert [v["ok"] for v in results] == [False] * 6
    assert all(v["text"].startswith("mismatch: ") for v in results)
    assert "reels" in results[0]["fields"]
    assert "house_choice" in results[1]["fields"]
    assert "items" in results[2]["fields"]
    assert "crash_point" in results[3]["fields"]
    assert results[4]["fields"] == ["round payout"]
    assert results[4]["commitmentOk"] is True
    assert results[5]["commitmentOk"] is False  # sha256(other seed) ≠ the commitment


def test_a_rounds_config_version_is_fetched_once_and_unknown_ones_fail(page: Any) -> None:
    """``configForRound`` loads the round's ``config_version`` by ``?version=`` (one
    request however many rounds share it), falls back to the current document for a
    round without one (``current: true``), and an unknown version is an error naming
    it — never a silent fallback to the current config."""
    _open(page)
    body, version = routes.games_config_document()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if CONFIG_PATH in r.url else None)
    out = page.evaluate(
        f"""async (version) => {{
            const {{ Api }} = await import('{API_MODULE}');
            const api = new Api();
            const a = await window.V.configForRound(api, {{config_version: version}});
            const b = await window.V.configForRound(api, {{config_version: version}});
            const legacy = await window.V.configForRound(api, {{config_version: null}});
            let error = null;
            try {{ await window.V.loadGameConfig(api, "0123456789abcdef"); }}
            catch (e) {{ error = e.message; }}
            return {{a: a.config, aCurrent: a.current, same: a.config === b.config,
                     legacyVersion: legacy.config.version, legacyCurrent: legacy.current,
                     error}};
        }}""",
        version,
    )
    assert out["a"] == json.loads(body) and out["aCurrent"] is False and out["same"] is True
    assert out["legacyVersion"] == version and out["legacyCurrent"] is True
    assert out["error"] and "0123456789abcdef" in out["error"]
    assert sorted(u.split(CONFIG_PATH, 1)[1] for u in requests) == [
        "",
        "?version=0123456789abcdef",
        f"?version={version}",
    ]
