"""The auth decorator's tier guard (STANDARD < PREMIUM < VIP), on a route of its own."""

from __future__ import annotations

import pytest
from flask import Flask, g

from ccweb import create_app
from ccweb.auth.guard import auth_required
from tests.factories import auth_headers, create_user


@pytest.fixture(scope="module")
def tier_app(settings) -> Flask:
    app = create_app(settings)

    @app.get("/test/premium")
    @auth_required(tier="PREMIUM")
    def premium_only():
        return {"user_id": g.user_id, "tier": g.user["tier"]}

    return app


@pytest.mark.parametrize(("tier", "status"), [("STANDARD", 403), ("PREMIUM", 200), ("VIP", 200)])
def test_tier_guard(tier_app, tier, status):
    client = tier_app.test_client()
    user = create_user(tier=tier)
    resp = client.get("/test/premium", headers=auth_headers(client, user))
    assert resp.status_code == status
    if status == 403:
        err = resp.get_json()["error"]
        assert err["code"] == "FORBIDDEN" and err["details"]["tier_required"] == "PREMIUM"
    else:
        assert resp.get_json() == {"user_id": user["id"], "tier": tier}


def test_unknown_tier_is_a_programming_error():
    with pytest.raises(ValueError):
        auth_required(tier="GOLD")
