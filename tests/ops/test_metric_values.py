"""The metrics added for operators (issue 14) count what really happened: each test does
the real thing through the real app or worker code and reads the change on ``/metrics``
(this process's registry; ``test_exported_metrics`` reads a real pre-fork server and
worker). Counters are compared before/after, since the registry lives as long as the
test process."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from ccweb import events
from ccweb.db import in_transaction
from ccweb.effects import emit
from ccweb.metrics import OUTBOX_PENDING
from ccweb.outbox.relay import pending_count
from ccweb.shop import keyring
from tests.factories import auth_headers, create_product, create_user
from tests.ops.exposition import value
from tests.processes import wait_for
from worker import readings
from worker.relay import run_relay

FAIL = "cc_auth_login_fail_total"
LOCKED = "cc_auth_login_locked_total"


def scrape(client: Any) -> str:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    return str(resp.get_data(as_text=True))


def counts(client: Any) -> dict[str, float]:
    """Every login-failure reason and the lockouts, as ``/metrics`` shows them now."""
    body = scrape(client)
    reasons = ("bad_password", "unknown_user", "disabled", "locked", "not_admin")
    out = {r: value(body, FAIL, reason=r) for r in reasons}
    out["lockouts"] = value(body, LOCKED)
    assert None not in out.values(), out  # every series exists from the start, at 0
    return out  # type: ignore[return-value]


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before if after[k] != before[k]}


def attempt(client: Any, site_id: str, password: str, admin: bool = False) -> int:
    path = "/api/auth/admin/login" if admin else "/api/auth/login"
    return int(client.post(path, json={"site_id": site_id, "password": password}).status_code)


def test_wrong_passwords_and_unknown_accounts_count_by_reason(client):
    user = create_user()
    before = counts(client)
    assert attempt(client, user["site_id"], "wrong-pass") == 401
    assert attempt(client, user["site_id"], "wrong-pass") == 401
    assert attempt(client, "nobody-here", "wrong-pass") == 401
    assert attempt(client, user["site_id"], user["password"]) == 200  # success counts nothing
    assert delta(before, counts(client)) == {"bad_password": 2, "unknown_user": 1}


def test_a_lockout_counts_once_and_refused_attempts_count_as_locked(client, settings):
    """The failure that fills the window (CC_LOGIN_MAX_FAILURES) begins one lockout; every
    attempt while it lasts — the right password too — is a ``locked`` failure."""
    user = create_user()
    limit = settings.login_max_failures
    before = counts(client)
    for _ in range(limit - 1):
        assert attempt(client, user["site_id"], "wrong-pass") == 401
    assert delta(before, counts(client)) == {"bad_password": limit - 1}
    assert attempt(client, user["site_id"], "wrong-pass") == 401  # fills the window
    assert delta(before, counts(client)) == {"bad_password": limit, "lockouts": 1}
    assert attempt(client, user["site_id"], user["password"]) == 429
    assert attempt(client, user["site_id"], "wrong-pass") == 429
    assert delta(before, counts(client)) == {"bad_password": limit, "lockouts": 1, "locked": 2}


def test_disabled_accounts_and_players_at_the_admin_login(client):
    player, gone = create_user(), create_user()
    in_transaction(
        lambda s: s.execute(
            text("UPDATE users SET is_active = false WHERE id = :id"), {"id": gone["id"]}
        )
    )
    before = counts(client)
    assert attempt(client, gone["site_id"], gone["password"]) == 401
    assert attempt(client, player["site_id"], player["password"], admin=True) == 403
    assert delta(before, counts(client)) == {"disabled": 1, "not_admin": 1}


# -- the worker's readings of shared state ----------------------------------------------


@pytest.fixture
def fresh_keys() -> Iterator[None]:
    keyring.forget()  # the tables (signing keys included) are emptied between tests
    yield
    keyring.forget()


def buy_conversion(client: Any, user: dict[str, Any]) -> None:
    product = create_product(category="conversion", price_gold=0, points_price=100, gold_amount=10)
    resp = client.post(
        "/api/shop/purchase",
        json={"product_id": product["id"], "idempotency_key": uuid.uuid4().hex},
        headers=auth_headers(client, user),
    )
    assert resp.status_code == 200 and resp.get_json()["settlement_status"] == "pending"


def gauges() -> dict[str, float | None]:
    from prometheus_client import REGISTRY

    names = (
        "cc_outbox_pending",
        "cc_shop_settlement_pending",
        "cc_shop_settlement_oldest_pending_seconds",
    )
    return {n: REGISTRY.get_sample_value(n) for n in names}


def test_readings_count_pending_settlements_and_the_outbox_backlog(client, fresh_keys):
    """Two conversions bought through the real route wait for their provider; the outbox
    holds their events (and the signup's…) until the relay moves its cursor past them."""
    user = create_user()
    buy_conversion(client, user)
    buy_conversion(client, user)
    backlog = pending_count()  # both purchases' shop.purchase events, at least
    assert backlog >= 2
    readings.take()
    now = gauges()
    assert now["cc_shop_settlement_pending"] == 2
    assert now["cc_outbox_pending"] == backlog
    assert 0 <= (now["cc_shop_settlement_oldest_pending_seconds"] or 0) < 60


def test_the_relay_reports_on_its_first_pass(settings, rds):
    """The relay takes its readings on its first pass, by the clock — not after 25 idle
    passes, which a relay busy with a backlog never has — so a worker that starts into a
    backlog reports it while it lasts. Rows younger than the grace period stay pending."""
    user = create_user()
    for _ in range(3):
        in_transaction(lambda s: emit(s, events.AUTH_LOGIN, user["id"], {}))
    OUTBOX_PENDING.set(-1)
    stop = threading.Event()
    slow = settings.with_overrides(relay_grace_s=60.0)  # nothing is old enough to relay
    relay = threading.Thread(target=run_relay, args=(rds, slow, stop), daemon=True)
    relay.start()
    try:
        wait_for(lambda: gauges()["cc_outbox_pending"] != -1, timeout=2, what="a first reading")
        assert gauges()["cc_outbox_pending"] == pending_count() >= 3
    finally:
        stop.set()
        relay.join(10)
