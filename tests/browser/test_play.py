"""The player client's core loop in Chromium against the real server and worker (issue 15):
sign up → claim the streak → spin → the balance changes because of the WebSocket push →
join an event → its progress bar fills → claim → buy in the shop → verify the round.

How "the push, not the HTTP answer" is proven: the page's realtime socket goes through
Playwright's WebSocket routing (:class:`tests.browser.ui.WsGate`). While the gate holds
the server's frames, the spin's HTTP answer (with the new balance) arrives and is shown
in the game result, yet the header keeps the old balance and XP; they change only when
the held ``profile_update`` frame is released. A gold grant made outside the page (admin API)
then changes the header with no request from the page and no reload.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser import ui
from tests.browser.conftest import INVITE_CODE, PASSWORD, Stack

tid = ui.tid


def _token(page: Page) -> str:
    """The access token the page holds (sessionStorage)."""
    return str(page.evaluate("JSON.parse(sessionStorage.getItem('cc.session')).access_token"))


def _progress(page: Page, testid: str) -> int:
    return int(tid(page, testid).get_attribute("aria-valuenow") or "-1")


def test_core_loop_live_in_the_browser(page: Page, stack: Stack, shoot: Any) -> None:
    event = stack.create_event(
        [{"type": "plays", "target": 2}], [{"type": "gold", "amount": 700}], "Browser Sprint"
    )
    eid = event["id"]
    gate = ui.WsGate(page)
    page.goto("/play")

    # -- sign up with the seeded invite code ---------------------------------------------
    site_id = f"e2e_{secrets.token_hex(4)}"
    ui.signup(page, site_id, f"E2E {site_id[-4:]}", PASSWORD, INVITE_CODE)
    ui.wait_live(page)
    ui.expect_balance(page, 1000)
    expect(tid(page, "level")).to_have_text("Lv 1")
    assert "since=" not in gate.urls[0]  # a first connection has nothing to resume

    # -- the streak: the count from the answer, the gold from the push ----------------------
    tid(page, "streak-claim").click()
    expect(tid(page, "streak-count")).to_have_text("1")
    ui.expect_balance(page, 2000)
    expect(tid(page, "streak-claim")).to_be_disabled()
    expect(tid(page, "xp-bar")).to_have_attribute("aria-valuenow", "50")

    # the worker completes the "claim the streak" mission: its claim button appears live
    mission = _mission_id(stack, page, "Claim the daily streak")
    expect(tid(page, f"mission-{mission}")).to_have_attribute("data-status", "claimable")
    tid(page, f"mission-claim-{mission}").click()
    expect(tid(page, f"mission-{mission}")).to_have_attribute("data-status", "claimed")
    ui.expect_balance(page, 2200)
    expect(tid(page, "toast").filter(has_text="Mission reward: 200 gold")).to_be_visible()

    # -- spin while the socket's frames are held: the header must not move ----------------
    gate.hold()
    ui.nav(page, "games")
    tid(page, "game-tab-slot").click()
    with page.expect_response(re.compile(r"/api/games/slot/spin$")) as spin:
        tid(page, "slot-spin").click()
    answer = spin.value.json()
    round_id, after_spin = int(answer["round_id"]), int(answer["gold_balance"])
    expect(tid(page, "game-result")).to_have_attribute("data-round-id", str(round_id))
    pushed = gate.wait(
        page,
        lambda m: m.get("type") == "profile_update" and m["data"].get("cause") == "game.round",
        what="profile_update for the spin",
    )
    assert pushed["data"]["gold_balance"] == after_spin
    page.wait_for_timeout(300)  # the page has had every chance to show the HTTP answer
    # every round earns XP, so even a round that paid back its bet moves the header
    assert int(answer["experience_points"]) > 50
    assert ui.balance(page) == 2200, "the header took the balance from the HTTP answer"
    expect(tid(page, "xp-bar")).to_have_attribute("data-xp", "50")
    gate.release()
    ui.expect_balance(page, after_spin)
    expect(tid(page, "xp-bar")).to_have_attribute("data-xp", str(answer["experience_points"]))

    # -- gold granted outside the page: pushed, shown without a reload or a request -------
    page.evaluate("window.__sameDocument = true")
    requests_made: list[str] = []
    page.on("request", lambda r: requests_made.append(r.url))
    stack.grant_gold(_user_id(stack, page), 4321)
    ui.expect_balance(page, after_spin + 4321)
    assert page.evaluate("window.__sameDocument === true")
    assert not [u for u in requests_made if "/api/" in u], requests_made
    expect(tid(page, "toast").filter(has_text="adjusted by +4,321")).to_be_visible()

    # -- join the event; rounds played elsewhere fill its bar live ---------------------------
    ui.nav(page, "dashboard")
    tid(page, f"event-join-{eid}").click()
    expect(tid(page, f"event-{eid}")).to_have_attribute("data-status", "active")
    assert _progress(page, f"event-progress-{eid}") == 0
    token = _token(page)
    seen = [0]
    for _ in range(2):
        r = stack.api("POST", "/api/games/slot/spin", token=token, body={"bet": 10})
        assert r.status_code == 200, r.text
        expect(tid(page, f"event-progress-{eid}")).not_to_have_attribute(
            "aria-valuenow", str(seen[-1])
        )
        seen.append(_progress(page, f"event-progress-{eid}"))
    expect(tid(page, f"event-progress-{eid}")).to_have_attribute("aria-valuenow", "100")
    assert seen[1] in (50, 100) and seen == sorted(seen), seen

    # -- claim: the reward arrives as a push (toast + header) --------------------------------
    before_claim = ui.balance(page)
    tid(page, f"event-claim-{eid}").click()
    expect(tid(page, f"event-{eid}")).to_have_attribute("data-status", "claimed")
    ui.expect_balance(page, before_claim + 700)
    expect(tid(page, "toast").filter(has_text="Event reward: 700 gold")).to_be_visible()
    page.wait_for_timeout(400)  # the toast's entry animation, for the screenshot
    shoot(page, "desktop-dashboard")

    # -- shop purchase -----------------------------------------------------------------------
    before_buy = ui.balance(page)
    ui.nav(page, "shop")
    tid(page, "buy-pkg_starter").click()
    expect(tid(page, "purchase-result")).to_have_attribute("data-status", "success")
    ui.expect_balance(page, before_buy - 500 + 2000)
    expect(tid(page, "toast").filter(has_text="Purchase complete")).to_be_visible()
    shoot(page, "desktop-shop")

    # -- provable fairness: the spin played in the page verifies in the page ---------------
    ui.nav(page, "fairness")
    tid(page, f"verify-{round_id}").click()
    rotate = tid(page, "fairness-rotate-verify")
    verdict = tid(page, "fairness-verify-result")
    expect(rotate.or_(verdict.filter(has_text=re.compile("verified", re.I)))).to_be_visible()
    if rotate.is_visible():  # the round's server seed was still secret: reveal it
        rotate.click()
    expect(verdict).to_have_attribute("data-status", "verified")
    expect(verdict).to_contain_text(re.compile("verified", re.I))
    shoot(page, "desktop-fairness")

    # the whole loop ran on one socket, resumed nothing, needed no resync
    assert len(gate.urls) == 1, gate.urls
    assert not gate.messages("resync_required")
    kinds = {m.get("type") for m in gate.frames}
    assert {"initial_state", "profile_update", "streak_update", "event_progress"} <= kinds
    assert {"reward_granted", "purchase_update", "stats_update"} <= kinds


def _user_id(stack: Stack, page: Page) -> int:
    r = stack.api("GET", "/api/auth/me", token=_token(page))
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def _mission_id(stack: Stack, page: Page, title: str) -> int:
    r = stack.api("GET", "/api/missions", token=_token(page))
    assert r.status_code == 200, r.text
    missions = r.json()["daily"] + r.json()["weekly"]
    return int(next(m["id"] for m in missions if m["title"] == title))
