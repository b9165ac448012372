"""The games, provable-fairness and shop views of the player client, driven in Chromium
against the real server (issue 15).

What is checked is what a player relies on: every game shows the outcome the server
recorded (compared with the round read back from the API); an error is a human
sentence; a play or purchase whose answer was lost is retried with the same
idempotency key and the server replays it (one round, one purchase, one charge); the
fairness view verifies real rounds in the browser and reports a tampered round or a
wrong seed as a mismatch; the shop shows stock and refuses what it must.

Lost answers are made with Playwright's routing: the request goes to the real server
(``route.fetch()``), then the browser is told the network failed (``route.abort()``) —
the server has applied it, the page does not know.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect
from sqlalchemy import text

from ccweb.config import set_settings
from ccweb.games import config, config_document, fairness
from ccweb.games.engines import slot
from tests.browser import ui
from tests.browser.conftest import Player, Stack

tid = ui.tid


def _player(page: Page) -> Player:
    """The player ``signed_in_page`` logged in as (the fixture sets it on the page)."""
    return page.player  # type: ignore[attr-defined, no-any-return]


def _rounds(stack: Stack, player: Player) -> list[dict[str, Any]]:
    r = stack.api("GET", "/api/games/rounds/recent?limit=50", token=player.access_token)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _gold(stack: Stack, player: Player) -> int:
    r = stack.api("GET", "/api/auth/me", token=player.access_token)
    assert r.status_code == 200, r.text
    return int(r.json()["gold_balance"])


def _purchases(stack: Stack, player: Player) -> list[dict[str, Any]]:
    r = stack.api("GET", "/api/shop/purchases?limit=50", token=player.access_token)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _played(page: Page) -> int:
    """Wait for a finished play in ``game-result``; its round id."""
    result = tid(page, "game-result")
    expect(result).to_have_attribute("data-state", "done")
    return int(result.get_attribute("data-round-id") or "0")


def _open_game(page: Page, game: str) -> None:
    ui.nav(page, "games")
    tid(page, f"game-tab-{game}").click()
    expect(tid(page, f"game-tab-{game}")).to_have_attribute("aria-selected", "true")


def _lose_answers_once(page: Page, pattern: str) -> list[dict[str, Any]]:
    """The next request matching ``pattern`` reaches the server, but the page sees a
    network error. Returns the list the server's answer is appended to."""
    answers: list[dict[str, Any]] = []

    def handler(route: Route) -> None:
        response = route.fetch()
        answers.append(
            {"status": response.status, "body": response.json(), "request": route.request}
        )
        route.abort("failed")

    page.route(pattern, handler, times=1)
    return answers


# --- games ---------------------------------------------------------------------------


def test_each_game_plays_and_shows_the_recorded_outcome(
    signed_in_page: Page, stack: Stack, shoot: Any
) -> None:
    page, player = signed_in_page, _player(signed_in_page)
    stack.grant_gold(player.user_id, 2000)  # a 10-pull costs 1000
    _open_game(page, "slot")
    tid(page, "slot-bet").fill("100")
    tid(page, "slot-spin").click()
    slot_id = _played(page)
    shown_reels = [
        [tid(page, f"slot-cell-{c}-{r}").get_attribute("data-symbol") for r in range(3)]
        for c in range(3)
    ]
    page.wait_for_timeout(600)  # the reels' stop animation (< 1 s) settles
    shoot(page, "games-slot")

    _open_game(page, "gacha")
    tid(page, "gacha-pull").click()
    gacha1_id = _played(page)
    expect(tid(page, "gacha-results").locator("li")).to_have_count(1)
    tid(page, "gacha-pull-10").click()
    expect(tid(page, "gacha-results").locator("li")).to_have_count(10)
    gacha10_id = _played(page)
    assert gacha10_id != gacha1_id
    cards = tid(page, "gacha-results").locator("li")
    shown_rarities = [cards.nth(i).get_attribute("data-rarity") for i in range(10)]
    first_card = cards.nth(0).inner_text()
    shoot(page, "games-gacha")

    _open_game(page, "rps")
    tid(page, "rps-bet").fill("50")
    tid(page, "rps-paper").click()
    expect(tid(page, "game-result")).to_contain_text("Your paper vs the house's")
    rps_id = _played(page)

    _open_game(page, "crash")
    tid(page, "crash-bet").fill("40")
    tid(page, "crash-cashout").fill("1.5")
    tid(page, "crash-play").click()
    expect(tid(page, "game-result")).to_contain_text("Crash point ×")
    crash_id = _played(page)

    rounds = {r["round_id"]: r for r in _rounds(stack, player)}
    assert set(rounds) == {slot_id, gacha1_id, gacha10_id, rps_id, crash_id}

    # the slot window shown was the recorded one (reel-major: reels[c][r])
    slot_round = rounds[slot_id]
    assert shown_reels == slot_round["detail"]["reels"]
    assert slot_round["bet"] == 100

    # gacha: the ten cards were the recorded items, with their rarity
    recorded = rounds[gacha10_id]["detail"]["items"]
    assert shown_rarities == [i["rarity"] for i in recorded]
    assert f"Item #{recorded[0]['item_id']}" in first_card

    # rps and crash: the text names what the server decided
    rps_round = rounds[rps_id]
    assert rps_round["detail"]["choice"] == "paper" and rps_round["bet"] == 50
    crash_round = rounds[crash_id]
    assert crash_round["detail"]["auto_cashout"] == 1.5 and crash_round["bet"] == 40
    text = tid(page, "game-result").inner_text()
    assert f"Crash point ×{crash_round['detail']['crash_point']:.2f}" in text
    assert f"Payout {crash_round['payout']} gold" in text
    expect(tid(page, "crash-meter")).to_have_text(re.compile(r"^×\d+\.\d\d$"))
    shoot(page, "games-crash")


def test_game_tabs_work_from_the_keyboard(signed_in_page: Page) -> None:
    page = signed_in_page
    _open_game(page, "slot")
    tid(page, "game-tab-slot").focus()
    page.keyboard.press("ArrowRight")
    expect(tid(page, "game-tab-gacha")).to_be_focused()
    expect(tid(page, "game-tab-gacha")).to_have_attribute("aria-selected", "true")
    expect(tid(page, "gacha-pull")).to_be_visible()
    expect(tid(page, "slot-spin")).to_be_hidden()
    page.keyboard.press("End")
    expect(tid(page, "game-tab-crash")).to_be_focused()
    page.keyboard.press("ArrowRight")  # wraps around
    expect(tid(page, "game-tab-slot")).to_be_focused()
    expect(tid(page, "game-tab-slot")).to_have_attribute("tabindex", "0")
    expect(tid(page, "game-tab-gacha")).to_have_attribute("tabindex", "-1")
    page.keyboard.press("Tab")  # out of the tablist, into the open panel
    expect(tid(page, "slot-bet")).to_be_focused()


def test_bet_above_the_balance_is_refused_with_a_human_message(
    signed_in_page: Page, stack: Stack
) -> None:
    page, player = signed_in_page, _player(signed_in_page)
    _open_game(page, "slot")
    tid(page, "slot-bet").fill("5000")  # the player has 1000
    tid(page, "slot-spin").click()
    result = tid(page, "game-result")
    expect(result).to_have_attribute("data-error-code", "INSUFFICIENT_GOLD")
    expect(result).to_contain_text("Not enough gold")
    expect(tid(page, "toast").filter(has_text="Not enough gold")).to_be_visible()
    expect(tid(page, "game-retry")).to_be_hidden()  # refused, not lost: nothing to retry
    expect(tid(page, "slot-spin")).to_be_enabled()
    assert _rounds(stack, player) == []
    assert _gold(stack, player) == 1000


def test_a_play_whose_answer_was_lost_is_retried_with_the_same_key(
    signed_in_page: Page, stack: Stack
) -> None:
    page, player = signed_in_page, _player(signed_in_page)
    _open_game(page, "rps")
    tid(page, "rps-bet").fill("100")
    answers = _lose_answers_once(page, "**/api/games/rps/play")
    tid(page, "rps-rock").click()
    expect(tid(page, "game-retry")).to_be_visible()
    expect(tid(page, "game-result")).to_have_attribute("data-error-code", "NETWORK")
    assert len(answers) == 1 and answers[0]["status"] == 200
    played = answers[0]["body"]
    first_key = answers[0]["request"].headers["x-idempotency-key"]

    # leaving the view and coming back still offers the retry, not a fresh play
    ui.nav(page, "shop")
    expect(tid(page, "shop-view")).to_be_visible()
    ui.nav(page, "games")
    expect(tid(page, "game-tab-rps")).to_have_attribute("aria-selected", "true")
    expect(tid(page, "game-retry")).to_be_visible()

    with page.expect_request("**/api/games/rps/play") as retried:
        tid(page, "game-retry").click()
    assert retried.value.headers["x-idempotency-key"] == first_key
    expect(tid(page, "game-result")).to_have_attribute("data-replayed", "true")
    assert _played(page) == played["round_id"]
    expect(tid(page, "game-result")).to_contain_text(f"the house's {played['house_choice']}")
    expect(tid(page, "game-retry")).to_be_hidden()

    rounds = _rounds(stack, player)
    assert [r["round_id"] for r in rounds] == [played["round_id"]]
    assert _gold(stack, player) == 1000 - 100 + played["payout"]

    # the next click is a new play with a new key
    with page.expect_request("**/api/games/rps/play") as nxt:
        tid(page, "rps-scissors").click()
    assert nxt.value.headers["x-idempotency-key"] != first_key
    assert _played(page) != played["round_id"]
    assert len(_rounds(stack, player)) == 2


# --- provable fairness ------------------------------------------------------------------


def _verify(page: Page, round_id: int) -> Any:
    row = tid(page, f"fairness-round-{round_id}")
    expect(row).to_be_visible()
    tid(page, f"verify-{round_id}").click()
    result = tid(page, "fairness-verify-result")
    expect(result).to_have_attribute("data-round-id", str(round_id))
    expect(result).not_to_have_attribute("data-status", "pending")
    return result


def test_fairness_verifies_real_rounds_of_every_game(
    signed_in_page: Page, stack: Stack, shoot: Any
) -> None:
    page, player = signed_in_page, _player(signed_in_page)
    stack.grant_gold(player.user_id, 2000)  # a 10-pull costs 1000
    _open_game(page, "slot")
    tid(page, "slot-spin").click()
    slot_id = _played(page)
    _open_game(page, "gacha")
    tid(page, "gacha-pull-10").click()
    gacha_id = _played(page)
    _open_game(page, "rps")
    tid(page, "rps-scissors").click()
    rps_id = _played(page)
    _open_game(page, "crash")
    tid(page, "crash-cashout").fill("1.8")
    tid(page, "crash-play").click()
    crash_id = _played(page)

    committed = stack.api("GET", "/api/games/fairness", token=player.access_token).json()
    ui.nav(page, "fairness")
    expect(tid(page, "fairness-commit")).to_have_text(committed["server_seed_hash"])
    expect(tid(page, "fairness-client-seed")).to_have_text(committed["client_seed"])
    expect(tid(page, "fairness-nonce")).to_have_text("4")

    # the seed is still secret: the view offers to rotate first
    result = _verify(page, slot_id)
    expect(result).to_have_attribute("data-status", "unrevealed")
    expect(result).to_contain_text("not revealed yet")
    tid(page, "fairness-rotate-verify").click()
    expect(result).to_have_attribute("data-status", "verified")
    expect(result).to_contain_text("verified")
    expect(tid(page, "fairness-revealed-seed")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    revealed = tid(page, "fairness-revealed-seed").inner_text()
    # the commitment shown before play is sha256 of the seed revealed now
    assert hashlib.sha256(revealed.encode()).hexdigest() == committed["server_seed_hash"]
    new = stack.api("GET", "/api/games/fairness", token=player.access_token).json()
    expect(tid(page, "fairness-commit")).to_have_text(new["server_seed_hash"])
    expect(tid(page, "fairness-nonce")).to_have_text("0")

    for round_id in (gacha_id, rps_id, crash_id):
        result = _verify(page, round_id)
        expect(result).to_have_attribute("data-status", "verified")
        expect(result).to_contain_text("verified: sha256(server seed) equals the committed hash")
    shoot(page, "fairness-verified")


def test_a_tampered_round_or_a_wrong_seed_is_a_mismatch(signed_in_page: Page, stack: Stack) -> None:
    page, player = signed_in_page, _player(signed_in_page)
    body = {"bet": 100}
    spin = stack.api(
        "POST",
        "/api/games/slot/spin",
        token=player.access_token,
        body=body,
        headers={"X-Idempotency-Key": secrets.token_hex(8)},
    )
    assert spin.status_code == 200, spin.text
    round_id = spin.json()["round_id"]
    rotated = stack.api("POST", "/api/games/fairness/rotate", token=player.access_token, body={})
    assert rotated.status_code == 200, rotated.text

    # the real list of rounds, with this round's payout and middle row changed in transit
    def tamper(route: Route) -> None:
        response = route.fetch()
        data = response.json()
        for item in data["items"]:
            if item["round_id"] == round_id:
                item["payout"] += 500
                item["detail"]["payout"] += 500
                item["detail"]["outcome"] = item["outcome"] = "win"
        route.fulfill(response=response, body=json.dumps(data))

    page.route("**/api/games/rounds/recent*", tamper)
    ui.nav(page, "fairness")
    result = _verify(page, round_id)
    expect(result).to_have_attribute("data-status", "mismatch")
    expect(result).to_contain_text("mismatch: payout recorded")
    expect(result).not_to_contain_text("verified")

    # the honest list verifies; a seed that is not the committed one does not
    page.unroute("**/api/games/rounds/recent*", tamper)
    tid(page, "fairness-refresh").click()
    result = _verify(page, round_id)
    expect(result).to_have_attribute("data-status", "verified")
    tid(page, "fairness-seed-input").fill(secrets.token_hex(32))
    result = _verify(page, round_id)
    expect(result).to_have_attribute("data-status", "mismatch")
    expect(result).to_contain_text("is not the committed hash")


def _sql(stack: Stack, sql: str, params: dict[str, Any]) -> Any:
    """A statement run by this process on the stack's database (rows the server would
    have written in another deploy)."""
    from ccweb.db import autocommit

    set_settings(stack.settings)
    with autocommit() as conn:
        return conn.execute(text(sql), params)


def test_a_round_played_before_a_config_change_still_verifies(
    signed_in_page: Page, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a deploy that changed the slot paytable, a round played before it still
    verifies: the view loads the document of the round's ``config_version``
    (``GET /api/games/config?version=…``, from ``game_configs``), not the current one.

    The running server cannot change its config, so the deploy is simulated the other
    way round: the server's config is the NEW one, and the OLD one (every slot pay one
    bet higher) is stored in ``game_configs`` with a round played under it — drawn by
    the server's own engine and document builder from the player's real, now revealed
    seed — as the earlier deploy would have left them. The same round without a version
    (a round from before versions were recorded) is checked against the current config,
    says so, and is a mismatch: exactly the false accusation versions prevent."""
    page, player = signed_in_page, _player(signed_in_page)
    spin = stack.api("POST", "/api/games/slot/spin", token=player.access_token, body={"bet": 100})
    assert spin.status_code == 200, spin.text
    new_round = spin.json()
    current = stack.api("GET", "/api/games/config").json()
    rotated = stack.api("POST", "/api/games/fairness/rotate", token=player.access_token, body={})
    assert rotated.status_code == 200, rotated.text
    seed = rotated.json()["previous_server_seed"]
    client_seed = new_round["fairness"]["client_seed"]

    s = config.DEFAULT_SLOT
    old_slot = config.SlotConfig(
        strips=s.strips,
        paytable={
            sym: config.SlotPay(three=p.three + 1, two=p.two + 1 if p.two else 0.0)
            for sym, p in s.paytable.items()
        },
    )
    monkeypatch.setattr(config, "DEFAULT_SLOT", old_slot)  # this process only
    old = config_document.current()
    assert old.version != current["version"]
    nonce = next(
        n
        for n in range(1, 500)
        if slot.play(old_slot, fairness.floats(seed, client_seed, n), 100).lines
    )
    result = slot.play(old_slot, fairness.floats(seed, client_seed, nonce), 100)
    _sql(
        stack,
        "INSERT INTO game_configs (version, document) VALUES (:v, CAST(:d AS jsonb))",
        {"v": old.version, "d": old.body},
    )
    old_id = _sql(
        stack,
        """INSERT INTO game_rounds (id, user_id, game_type, bet, payout, outcome,
               server_seed_hash, client_seed, nonce, detail, config_version, created_at)
           VALUES (nextval('game_rounds_id_seq'), :u, 'slot', 100, :p, :o, :h, :c, :n,
                   CAST(:d AS jsonb), :v, now() - interval '1 day') RETURNING id""",
        {
            "u": player.user_id,
            "p": result.payout,
            "o": result.outcome,
            "h": fairness.seed_hash(seed),
            "c": client_seed,
            "n": nonce,
            "d": json.dumps(result.to_dict()),
            "v": old.version,
        },
    ).scalar_one()

    ui.nav(page, "fairness")
    versions: list[str] = []
    page.on("request", lambda r: versions.append(r.url) if "/api/games/config" in r.url else None)
    result_el = _verify(page, old_id)
    expect(result_el).to_have_attribute("data-status", "verified")
    expect(tid(page, "fairness-config-version")).to_have_text(old.version)
    expect(tid(page, "fairness-config-current")).to_have_count(0)
    assert any(u.endswith(f"?version={old.version}") for u in versions)
    result_el = _verify(page, new_round["round_id"])
    expect(result_el).to_have_attribute("data-status", "verified")
    expect(tid(page, "fairness-config-version")).to_have_text(current["version"])

    # without a version the current config is used, and the view says so
    _sql(stack, "UPDATE game_rounds SET config_version = NULL", {})
    tid(page, "fairness-refresh").click()
    result_el = _verify(page, old_id)
    expect(result_el).to_have_attribute("data-status", "mismatch")
    expect(tid(page, "fairness-config-current")).to_have_text("(current config)")
    result_el = _verify(page, new_round["round_id"])
    expect(result_el).to_have_attribute("data-status", "verified")
    expect(tid(page, "fairness-config-version")).to_have_text(current["version"])
    expect(tid(page, "fairness-config-current")).to_have_text("(current config)")


# --- shop ------------------------------------------------------------------------------


def test_purchase_whose_answer_was_lost_is_replayed_once(
    signed_in_page: Page, stack: Stack, shoot: Any
) -> None:
    page, player = signed_in_page, _player(signed_in_page)
    ui.nav(page, "shop")
    card = tid(page, "product-item_lucky_charm")
    expect(card).to_contain_text("300 gold")
    expect(card).to_contain_text("Unlimited stock")

    answers = _lose_answers_once(page, "**/api/shop/purchase")
    tid(page, "buy-item_lucky_charm").click()
    result = tid(page, "purchase-result")
    expect(result).to_have_attribute("data-error-code", "NETWORK")
    expect(tid(page, "purchase-retry")).to_be_visible()
    assert answers[0]["status"] == 200
    tx_id = answers[0]["body"]["tx_id"]
    first_key = json.loads(answers[0]["request"].post_data or "{}")["idempotency_key"]
    ui.nav(page, "games")  # leave and come back: the retry is still offered
    ui.nav(page, "shop")
    expect(tid(page, "purchase-retry")).to_be_visible()

    with page.expect_request("**/api/shop/purchase") as retried:
        tid(page, "purchase-retry").click()
    assert json.loads(retried.value.post_data or "{}")["idempotency_key"] == first_key
    expect(result).to_have_attribute("data-status", "success")
    expect(result).to_have_attribute("data-tx-id", str(tx_id))
    expect(result).to_have_attribute("data-replayed", "true")
    expect(result).to_contain_text(f"transaction #{tx_id}")
    expect(tid(page, "purchase-retry")).to_be_hidden()
    expect(tid(page, "inventory-lucky_charm")).to_contain_text("1 × lucky charm")

    purchases = _purchases(stack, player)
    assert [p["tx_id"] for p in purchases] == [tx_id]
    assert _gold(stack, player) == 700

    # a second click is a second purchase with a new key
    with page.expect_request("**/api/shop/purchase") as second:
        tid(page, "buy-item_lucky_charm").click()
    assert json.loads(second.value.post_data or "{}")["idempotency_key"] != first_key
    expect(result).to_have_attribute("data-status", "success")
    expect(result).to_have_attribute("data-replayed", "false")
    expect(tid(page, "inventory-lucky_charm")).to_contain_text("2 × lucky charm")
    assert len(_purchases(stack, player)) == 2
    assert _gold(stack, player) == 400
    shoot(page, "shop-purchase")


def test_shop_refusals_are_human(signed_in_page: Page, stack: Stack) -> None:
    page, player = signed_in_page, _player(signed_in_page)
    ui.nav(page, "shop")
    result = tid(page, "purchase-result")

    tid(page, "buy-pkg_limited_weekend").click()  # 5000 gold; the player has 1000
    expect(result).to_have_attribute("data-error-code", "INSUFFICIENT_GOLD")
    expect(result).to_contain_text("Not enough gold")

    tid(page, "buy-pkg_starter").click()
    expect(result).to_have_attribute("data-status", "success")
    tid(page, "buy-pkg_starter").click()
    expect(result).to_have_attribute("data-error-code", "LIMIT_REACHED")
    expect(result).to_contain_text("once per player")
    assert [p["sku"] for p in _purchases(stack, player)] == ["pkg_starter"]
    expect(tid(page, "purchase-retry")).to_be_hidden()


def test_out_of_stock_is_shown_and_the_card_updates(signed_in_page: Page, stack: Stack) -> None:
    page, player = signed_in_page, _player(signed_in_page)
    sku = f"one_left_{secrets.token_hex(3)}"
    created = stack.api(
        "POST",
        "/api/admin/products",
        token=stack.admin_token(),
        body={
            "sku": sku,
            "name": "Last Crate",
            "category": "item",
            "price_gold": 100,
            "items": [{"code": "crate", "quantity": 1}],
            "stock": 1,
        },
    )
    assert created.status_code == 201, created.text
    ui.nav(page, "shop")
    expect(tid(page, f"stock-{sku}")).to_have_text("1 left")

    # someone else buys the last one while this page shows it
    rival = stack.new_player("rival")
    bought = stack.api(
        "POST",
        "/api/shop/purchase",
        token=rival.access_token,
        body={"product_id": created.json()["id"], "idempotency_key": secrets.token_hex(8)},
    )
    assert bought.status_code == 200, bought.text

    tid(page, f"buy-{sku}").click()
    result = tid(page, "purchase-result")
    expect(result).to_have_attribute("data-error-code", "OUT_OF_STOCK")
    expect(result).to_contain_text("Sold out")
    expect(tid(page, f"stock-{sku}")).to_have_text("Sold out")
    expect(tid(page, f"buy-{sku}")).to_be_disabled()
    assert _purchases(stack, player) == []
    assert _gold(stack, player) == 1000


@pytest.mark.parametrize("view", ["games", "fairness", "shop"])
def test_views_fit_a_phone(phone_page: Page, player: Player, view: str, shoot: Any) -> None:
    """At 375 px nothing of these views overflows sideways and the main controls work."""
    page = phone_page
    page.goto("/play")
    ui.login(page, player)
    ui.nav(page, view)
    first = {"games": "slot-spin", "fairness": "fairness-rotate", "shop": "buy-item_lucky_charm"}[
        view
    ]
    expect(tid(page, first)).to_be_visible()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{view} is {overflow}px wider than the phone"
    if view == "games":
        tid(page, "slot-spin").click()
        _played(page)
        page.wait_for_timeout(600)  # the reels' stop animation settles
    shoot(page, f"phone-{view}-view")
