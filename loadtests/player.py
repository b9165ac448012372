"""The player: a Locust user that walks the whole game loop over HTTP.

One Locust user is one player with an account of their own: most log in to an account
made before the run (:mod:`loadtests.accounts`), ``LOADTEST_SIGNUP_SHARE`` (10 %) sign up
with invite code 5858, and a rare task logs in again, as a returning session does.
Between actions the player thinks (``LOADTEST_THINK_S``, default 1–3 s: a spin's
animation, reading a screen). What they do next is weighted like a session in a social
casino — mostly the home screen and the games, now and then the streak, events,
missions and the shop:

    dashboard 60 · slot 80 · rps 25 · crash 25 · gacha 15 · profile 15 · catalog 15 ·
    events 15 · event claim 10 · join event 5 · missions 10 · mission claim 10 ·
    purchase 10 · streak status 5 · streak claim 5 · recommendations 10 · flags 10 ·
    login again 1 (a new session about every 12 minutes of play)

The player behaves like a client: it keeps the ``ETag`` of the dashboard, profile and
catalog and sends ``If-None-Match`` (a 304 is a success), one ``X-Idempotency-Key`` per
money request (``idempotency_key`` in the purchase body), claims what the last list
showed claimable (and sometimes what is not, like an impatient player: 409
``NOT_CLAIMABLE``), bets what its balance allows, and 3 % of the time sends a play or a
purchase again with the same key — a client retrying after a lost answer — and checks
that the answer is the original (``Idempotent-Replay: true``, same round or tx id).
Game outcomes are judged by :mod:`loadtests.outcomes`.

Subclasses hook in through ``on_play``, ``on_purchase``, ``on_participation`` and
``on_token`` (:class:`loadtests.push.SocketPlayer` measures pushes with them).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust import between, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from loadtests import outcomes
from loadtests import targets as t
from loadtests.knobs import RECOMMENDATIONS_REGISTERED, next_account, think_time

RETRY_SHARE = 0.03
TIERS = {"STANDARD": 0, "PREMIUM": 1, "VIP": 2}
REFRESH_MARGIN_S = 60.0
ENTRY_ATTEMPTS = 5


@dataclass
class Answer:
    """What a call returned: status, parsed JSON body (None for 304/empty), headers."""

    status: int
    body: Any
    headers: Any
    ok: bool  # a success or a game outcome
    received_at: float  # wall clock, right after the answer arrived


@dataclass
class PlayerState:
    """What the player's client remembers between screens."""

    site_id: str = ""
    user_id: int = 0
    tier: str = "STANDARD"
    balance: int = 0
    access: str = ""
    refresh: str = ""
    expires_at: float = 0.0  # monotonic
    etags: dict[str, str] = field(default_factory=dict)
    events: dict[int, dict[str, Any]] = field(default_factory=dict)  # id → event (+participation)
    missions: dict[int, str] = field(default_factory=dict)  # id → status
    products: list[dict[str, Any]] = field(default_factory=list)


class Player(FastHttpUser):
    """A player walking the loop (see the module docstring)."""

    wait_time = between(*think_time())
    network_timeout = 10.0
    connection_timeout = 10.0
    weight = 1

    def on_start(self) -> None:
        self.me = PlayerState()
        account = next_account()
        for attempt in range(ENTRY_ATTEMPTS):
            if account is not None:
                self.me.site_id = account
                answer = self._login()
            else:
                self.me.site_id = "lt" + uuid.uuid4().hex[:16]  # new each try: the last may exist
                answer = self._signup()
            if answer.ok:
                break
            gevent.sleep(0.5 * (attempt + 1))  # the failure is in the report already
        else:
            raise StopUser()  # a player who cannot get in leaves
        self._take_tokens(answer.body)
        self.flags()
        self.dashboard()

    def _signup(self) -> Answer:
        body = {
            "site_id": self.me.site_id,
            "nickname": self.me.site_id[:20],
            "password": t.PASSWORD,
            "invite_code": t.INVITE_CODE,
        }
        return self.call("POST", t.SIGNUP, t.SIGNUP, body=body, auth=False)

    def _login(self) -> Answer:
        body = {"site_id": self.me.site_id, "password": t.PASSWORD}
        return self.call("POST", t.LOGIN, t.LOGIN, body=body, auth=False)

    # --- plumbing ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        extra_ok: frozenset[str] = frozenset(),
        check: Callable[[Answer], str | None] | None = None,
    ) -> Answer:
        """One request, judged: success, game outcome, or failure (with the reason)."""
        if auth and time.monotonic() > self.me.expires_at - REFRESH_MARGIN_S:
            self.refresh_tokens()
        hdrs = dict(headers or {})
        if auth:
            hdrs["Authorization"] = f"Bearer {self.me.access}"
        kwargs: dict[str, Any] = {"headers": hdrs, "name": name, "catch_response": True}
        if body is not None:
            kwargs["json"] = body
        with self.client.request(method, path, **kwargs) as resp:
            received = time.time()
            status = resp.status_code or 0
            parsed: Any = None
            if resp.content:
                try:
                    parsed = resp.json()
                except ValueError:
                    parsed = None
            problem = (
                outcomes.verdict(name, status, parsed, extra_ok)
                if status
                else f"no answer: {resp.error!r}"
            )
            answer = Answer(status, parsed, resp.headers, problem is None, received)
            if problem is None and check is not None:
                problem = check(answer)
            if problem is None:
                resp.success()
            else:
                answer.ok = False
                resp.failure(problem)
        return answer

    def _take_tokens(self, body: dict[str, Any]) -> None:
        self.me.access = body["access_token"]
        self.me.refresh = body["refresh_token"]
        self.me.expires_at = time.monotonic() + float(body.get("expires_in", 900))
        user = body.get("user") or {}
        self.me.user_id = int(user.get("id", self.me.user_id))
        self.me.tier = user.get("tier", self.me.tier)
        self.me.balance = int(user.get("gold_balance", self.me.balance))
        self.on_token(self.me.access)

    def refresh_tokens(self) -> None:
        self.me.expires_at = time.monotonic() + REFRESH_MARGIN_S + 5  # no recursion
        answer = self.call(
            "POST", t.REFRESH, t.REFRESH, body={"refresh_token": self.me.refresh}, auth=False
        )
        if answer.status == 200:
            self._take_tokens(answer.body)

    def cached_get(self, path: str, name: str) -> Any:
        """GET with the last ETag; the parsed body on 200, None on 304 or failure."""
        etag = self.me.etags.get(name)
        answer = self.call("GET", path, name, headers={"If-None-Match": etag} if etag else None)
        if answer.status == 200:
            tag = answer.headers.get("ETag") if answer.headers is not None else None
            if tag:
                self.me.etags[name] = tag
            return answer.body
        return None

    def _note_balance(self, body: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("gold_balance"), int):
            self.me.balance = body["gold_balance"]

    def _note_events(self, events: Any) -> None:
        if isinstance(events, list):
            self.me.events = {e["id"]: e for e in events if isinstance(e, dict) and "id" in e}

    def _note_missions(self, missions: Any) -> None:
        if isinstance(missions, dict):
            self.me.missions = {
                m["id"]: m.get("status", "")
                for period in ("daily", "weekly")
                for m in missions.get(period) or []
            }

    def _bet(self) -> int:
        """A bet the player can afford most of the time (1 when broke: then the server's
        409 INSUFFICIENT_GOLD is the game's answer)."""
        return max(1, min(random.choice((10, 20, 50, 100)), self.me.balance // 10))

    # --- hooks for subclasses ----------------------------------------------------------

    def on_play(self, result: dict[str, Any], answered_at: float) -> None:
        """A round was played (the 200 body of a game request)."""

    def on_purchase(self, result: dict[str, Any]) -> None:
        """A purchase succeeded (its 200 body)."""

    def on_participation(self, event: dict[str, Any], participation: dict[str, Any]) -> None:
        """The player joined ``event`` (the participate answer)."""

    def on_token(self, access_token: str) -> None:
        """A new access token (signup, login, refresh)."""

    # --- the loop ----------------------------------------------------------------------

    @task(60)
    def dashboard(self) -> None:
        body = self.cached_get(t.DASHBOARD, t.DASHBOARD)
        if isinstance(body, dict):
            self._note_balance(body.get("profile"))
            self._note_events(body.get("active_events"))
            self._note_missions(body.get("missions"))

    @task(15)
    def profile(self) -> None:
        self._note_balance(self.cached_get(t.PROFILE, t.PROFILE))

    @task(15)
    def catalog(self) -> None:
        body = self.cached_get(t.CATALOG, t.CATALOG)
        if isinstance(body, list):
            self.me.products = body

    @task(5)
    def streak_status(self) -> None:
        self.call("GET", t.STREAK_STATUS, t.STREAK_STATUS)

    @task(5)
    def streak_claim(self) -> None:
        answer = self.call("POST", t.STREAK_CLAIM, t.STREAK_CLAIM, headers=self._key())
        self._note_balance(answer.body)

    @task(80)
    def slot(self) -> None:
        self.play(t.SLOT, {"bet": self._bet()})

    @task(25)
    def rps(self) -> None:
        self.play(
            t.RPS, {"bet": self._bet(), "choice": random.choice(("rock", "paper", "scissors"))}
        )

    @task(25)
    def crash(self) -> None:
        self.play(
            t.CRASH, {"bet": self._bet(), "auto_cashout": random.choice((1.5, 2.0, 3.0, 5.0))}
        )

    @task(15)
    def gacha(self) -> None:
        self.play(
            t.GACHA, {"count": 10 if self.me.balance >= 5000 and random.random() < 0.1 else 1}
        )

    def play(self, name: str, body: dict[str, Any]) -> None:
        headers = self._key()
        answer = self.call("POST", name, name, body=body, headers=headers)
        if answer.status != 200:
            return
        self._note_balance(answer.body)
        self.on_play(answer.body, answer.received_at)
        if random.random() < RETRY_SHARE:
            first = answer.body.get("round_id")
            self.call(
                "POST",
                name,
                name + t.RETRY_SUFFIX,
                body=body,
                headers=headers,
                check=lambda a: _replayed(a, "round_id", first),
            )

    @task(15)
    def events_list(self) -> None:
        answer = self.call("GET", t.EVENTS + "?active=true", t.EVENTS)
        if answer.status == 200:
            self._note_events(answer.body)

    @task(5)
    def participate(self) -> None:
        event = self._pick_event_to_join()
        if event is not None:
            self.join(event)

    def _pick_event_to_join(self) -> dict[str, Any] | None:
        if not self.me.events:
            self.events_list()
        open_ = [
            e
            for e in self.me.events.values()
            if e.get("participation") is None and self._tier_ok(e.get("tier_required"))
        ]
        return random.choice(open_) if open_ else None

    def join(self, event: dict[str, Any]) -> None:
        answer = self.call("POST", f"/api/events/{event['id']}/participate", t.PARTICIPATE)
        if answer.status == 200 and isinstance(answer.body, dict):
            event["participation"] = answer.body
            self.on_participation(event, answer.body)

    @task(10)
    def event_claim(self) -> None:
        joined = [e for e in self.me.events.values() if e.get("participation")]
        ready = [e for e in joined if e["participation"].get("status") == "claimable"]
        pool = ready or (joined if random.random() < 0.5 else [])
        if not pool:
            return
        event = random.choice(pool)
        answer = self.call(
            "POST", f"/api/events/{event['id']}/claim", t.EVENT_CLAIM, headers=self._key()
        )
        if answer.status == 200:
            event["participation"]["status"] = "claimed"
            self._note_balance(answer.body)

    @task(10)
    def missions_list(self) -> None:
        answer = self.call("GET", t.MISSIONS, t.MISSIONS)
        if answer.status == 200:
            self._note_missions(answer.body)

    @task(10)
    def mission_claim(self) -> None:
        ready = [m for m, status in self.me.missions.items() if status == "claimable"]
        pool = ready or (list(self.me.missions) if random.random() < 0.3 else [])
        if not pool:
            return
        mission = random.choice(pool)
        answer = self.call(
            "POST", f"/api/missions/{mission}/claim", t.MISSION_CLAIM, headers=self._key()
        )
        if answer.status == 200:
            self.me.missions[mission] = "claimed"
            self._note_balance(answer.body)

    @task(10)
    def purchase(self) -> None:
        if not self.me.products:
            self.catalog()
        products = [
            p
            for p in self.me.products
            if p.get("category") != "conversion" and self._tier_ok(p.get("tier_required"))
        ]
        if not products:
            return
        affordable = [p for p in products if (p.get("price_gold") or 0) <= self.me.balance]
        product = random.choice(affordable if affordable and random.random() < 0.85 else products)
        body = {"product_id": product["id"], "idempotency_key": uuid.uuid4().hex}
        answer = self.call("POST", t.PURCHASE, t.PURCHASE, body=body)
        if answer.status != 200:
            return
        self._note_balance(answer.body)
        self.on_purchase(answer.body)
        if random.random() < RETRY_SHARE:
            first = answer.body.get("tx_id")
            self.call(
                "POST",
                t.PURCHASE,
                t.PURCHASE + t.RETRY_SUFFIX,
                body=body,
                check=lambda a: _replayed(a, "tx_id", first),
            )

    @task(10)
    def recommendations(self) -> None:
        registered = RECOMMENDATIONS_REGISTERED["value"]
        extra = frozenset() if registered else frozenset({"NOT_FOUND"})
        self.call("GET", t.RECOMMENDATIONS, t.RECOMMENDATIONS, extra_ok=extra)

    @task(10)
    def flags(self) -> None:
        self.call("GET", t.FLAGS, t.FLAGS)

    @task(1)
    def login_again(self) -> None:
        """A returning session: log in with the password (argon2 verify on the server)."""
        answer = self._login()
        if answer.ok:
            self._take_tokens(answer.body)

    # --- small helpers -----------------------------------------------------------------

    @staticmethod
    def _key() -> dict[str, str]:
        return {"X-Idempotency-Key": uuid.uuid4().hex}

    def _tier_ok(self, required: str | None) -> bool:
        return required is None or TIERS.get(required, 99) <= TIERS.get(self.me.tier, 0)


def _replayed(answer: Answer, field_name: str, first: Any) -> str | None:
    """A retried request must replay the original answer, never apply twice."""
    if answer.status != 200:
        return None  # judged by its status already
    replay = answer.headers.get("Idempotent-Replay") if answer.headers is not None else None
    if replay != "true":
        return "retry with the same key was not a replay"
    if not isinstance(answer.body, dict) or answer.body.get(field_name) != first:
        return f"replay returned another {field_name}"
    return None
