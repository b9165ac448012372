"""The player client's shell in Chromium: API errors read as sentences (wrong password,
lockout with the time to retry, invalid invite code, already claimed, not enough gold,
a session revoked elsewhere), keyboard use and labels, the phone-width layout, the
screenshots of the main screens, and how ``/play`` is served."""

from __future__ import annotations

import re
import secrets
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser import ui
from tests.browser.conftest import INVITE_CODE, PASSWORD, Player, Stack

tid = ui.tid
MY_VIEWS = ("dashboard", "profile", "history")
ALL_VIEWS = ("dashboard", "games", "shop", "fairness", "profile", "history")


def test_login_errors_and_lockout_are_sentences(page: Page, player: Player) -> None:
    page.goto("/play")
    tid(page, "login-site-id").fill(player.site_id)
    error = tid(page, "auth-error")
    for _ in range(5):  # CC_LOGIN_MAX_FAILURES
        tid(page, "login-password").fill("not-the-password")
        tid(page, "login-submit").click()
        expect(error).to_have_text("Wrong user ID or password.")
        expect(tid(page, "login-submit")).to_be_enabled()
    # locked now: even the right password is refused, with the time to try again
    tid(page, "login-password").fill(player.password)
    tid(page, "login-submit").click()
    expect(error).to_have_text(
        re.compile(
            r"^Too many failed logins\. Try again in 10 min \(at \d{1,2}:\d{2}( [AP]M)?\)\.$"
        )
    )
    expect(error).to_have_attribute("role", "alert")
    expect(tid(page, "balance")).to_be_hidden()


def test_signup_error_names_the_field(page: Page) -> None:
    page.goto("/play")
    ui.signup(page, f"bad_{secrets.token_hex(3)}", "Bad Invite", PASSWORD, "no-such-code")
    expect(tid(page, "auth-error")).to_have_text("Invite code: invalid invite code.")
    # the same form then works with the seeded code
    tid(page, "signup-invite").fill(INVITE_CODE)
    tid(page, "signup-submit").click()
    ui.wait_live(page)
    ui.expect_balance(page, 1000)


def test_claim_and_game_errors_are_sentences(
    signed_in_page: Page, stack: Stack, player: Player
) -> None:
    page = signed_in_page
    gate = ui.WsGate(page)  # routes the next sockets only: reconnect to put this one behind it
    page.reload()
    ui.wait_live(page)
    assert gate.urls
    # claimed elsewhere while this page hears nothing: its button is still enabled
    gate.hold()
    r = stack.api("POST", "/api/streak/claim", token=player.access_token)
    assert r.status_code == 200, r.text
    tid(page, "streak-claim").click()
    expect(tid(page, "toast").filter(has_text="Already claimed today")).to_be_visible()
    expect(tid(page, "streak-claim")).to_be_disabled()
    gate.release()
    ui.expect_balance(page, 2000)

    # a bet above the balance: the server's INSUFFICIENT_GOLD as numbers the player knows
    ui.nav(page, "games")
    tid(page, "game-tab-slot").click()
    tid(page, "slot-bet").fill("5000")
    r = stack.grant_gold(player.user_id, -1500)  # 500 left: too little for 5,000
    ui.expect_balance(page, 500)
    tid(page, "slot-spin").click()
    expect(tid(page, "game-result")).to_contain_text(
        "Not enough gold: this needs 5,000 and you have 500."
    )


def test_session_revoked_elsewhere_returns_to_login(signed_in_page: Page, stack: Stack) -> None:
    page = signed_in_page
    token = page.evaluate("JSON.parse(sessionStorage.getItem('cc.session')).access_token")
    r = stack.api("POST", "/api/auth/logout", token=token, body={})
    assert r.status_code == 204, r.text
    # the server closes the socket (4401 TOKEN_REVOKED); the refresh token is dead too
    expect(tid(page, "auth-error")).to_have_text("Your session has ended. Please log in again.")
    expect(page.locator("#topbar")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('cc.session')") is None


def test_logout_revokes_the_session(signed_in_page: Page, stack: Stack) -> None:
    page = signed_in_page
    token = page.evaluate("JSON.parse(sessionStorage.getItem('cc.session')).access_token")
    tid(page, "logout").click()
    expect(tid(page, "login-form")).to_be_visible()
    expect(page.locator("#topbar")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('cc.session')") is None
    r = stack.api("GET", "/api/auth/me", token=token)
    assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_REVOKED"
    page.reload()  # nothing left to resume
    expect(tid(page, "login-form")).to_be_visible()


def test_keyboard_labels_and_focus(page: Page, player: Player) -> None:
    page.goto("/play")
    form = tid(page, "login-form")
    expect(form.get_by_label("User ID")).to_be_visible()
    expect(form.get_by_label("Password")).to_be_visible()

    # log in with the keyboard only
    _tab_to(page, "login-site-id")
    page.keyboard.type(player.site_id)
    page.keyboard.press("Tab")
    page.keyboard.type(player.password)
    page.keyboard.press("Enter")
    ui.wait_live(page)

    # reach a section with Tab: the focus is visible; Enter opens it and moves focus there
    _tab_to(page, "nav-profile")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline
    page.keyboard.press("Enter")
    expect(tid(page, "nav-profile")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="Profile", level=1)).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "view"

    # every control of the shell's views has a name; the toasts are a polite live region
    for view in MY_VIEWS:
        ui.nav(page, view)
        page.wait_for_timeout(150)
        assert _unnamed_controls(page) == [], view
    expect(page.locator("#toasts")).to_have_attribute("aria-live", "polite")


def test_phone_layout_and_screenshots(
    phone_page: Page, page: Page, stack: Stack, shoot: Any
) -> None:
    """Every main screen at 375 px (nothing wider than the screen) and at desktop size,
    saved to tests/browser/artifacts/ (phone-<view>.png, desktop-<view>.png)."""
    for pg, size in ((phone_page, "phone"), (page, "desktop")):
        player = stack.new_player(size)
        r = stack.api("POST", "/api/games/slot/spin", token=player.access_token, body={"bet": 50})
        assert r.status_code == 200, r.text
        pg.goto("/play")
        shoot(pg, f"{size}-login")
        ui.login(pg, player)
        ui.wait_live(pg)
        for view in ALL_VIEWS:
            ui.nav(pg, view)
            expect(tid(pg, f"nav-{view}")).to_have_attribute("aria-current", "page")
            pg.wait_for_timeout(300)  # the view's first data
            shoot(pg, f"{size}-{view}")
            if size == "phone" and view in MY_VIEWS:
                width = pg.evaluate("document.documentElement.scrollWidth")
                assert width <= 375, f"{view} is {width}px wide on a 375px screen"
        if size == "desktop":
            # the profile shows the round played; the history gains a row when gold moves
            ui.nav(pg, "profile")
            expect(tid(pg, "stats-total")).to_have_text("1")
            expect(tid(pg, "stats-slot")).to_contain_text("Slots")
            ui.nav(pg, "history")
            rows = tid(pg, "history-table").locator("tbody tr")
            expect(rows.last).to_contain_text("Welcome bonus")  # the first ledger row
            shown = rows.count()
            assert shown >= 2, shown  # the bonus, the bet (and a win row if it paid)
            stack.grant_gold(player.user_id, 42)
            expect(rows).to_have_count(shown + 1)
            expect(rows.first).to_contain_text("+42")
        if size == "phone":
            # the navigation stays usable: the last section's button can be reached and used
            tid(pg, "nav-history").click()
            expect(tid(pg, "history-table")).to_be_visible()


def test_play_is_served_as_static_modules(stack: Stack) -> None:
    page = stack.api("GET", "/play")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-cache"
    assert 'src="/play/static/js/main.js"' in page.text

    js = stack.api("GET", "/play/static/js/main.js")
    assert js.status_code == 200
    assert js.headers["Content-Type"].startswith("text/javascript")
    assert js.headers["Cache-Control"] == "no-cache"
    assert js.headers["X-Content-Type-Options"] == "nosniff"
    again = stack.api(
        "GET", "/play/static/js/main.js", headers={"If-None-Match": js.headers["ETag"]}
    )
    assert again.status_code == 304
    css = stack.api("GET", "/play/static/css/app.css")
    assert css.headers["Content-Type"].startswith("text/css")

    for path in (
        "/play/static/../routes.py",
        "/play/static/%2e%2e/routes.py",
        "/play/static/nope.js",
    ):
        assert stack.api("GET", path).status_code == 404, path


# -- helpers -----------------------------------------------------------------------------
def _tab_to(page: Page, testid: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if (
            page.evaluate("document.activeElement && document.activeElement.dataset.testid")
            == testid
        ):
            return
    raise AssertionError(f"Tab never reached {testid}")


_UNNAMED = """() => [...document.querySelectorAll(
    'main button, main input, main select, main a, header button')]
  .filter((e) => !e.hidden && e.offsetParent !== null)
  .filter((e) => {
    const labels = e.labels ? [...e.labels].map((l) => l.textContent).join('') : '';
    const name = e.getAttribute('aria-label') || labels
      || e.getAttribute('aria-labelledby') || e.textContent;
    return !(name && name.trim());
  })
  .map((e) => e.outerHTML.slice(0, 120))"""


def _unnamed_controls(page: Page) -> list[str]:
    return list(page.evaluate(_UNNAMED))
