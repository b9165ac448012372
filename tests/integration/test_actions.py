"""Actions: single and bulk recording, recent list, validation, events."""

from __future__ import annotations

from sqlalchemy import text

from ccweb.db import in_transaction
from tests.factories import auth_headers, create_user


def test_single_and_bulk_actions_are_listed_newest_first(client):
    headers = auth_headers(client, create_user())
    one = client.post(
        "/api/actions", json={"action_type": "lobby.open", "context": {"a": 1}}, headers=headers
    )
    assert one.status_code == 201
    assert one.get_json()["action_type"] == "lobby.open" and one.get_json()["context"] == {"a": 1}
    bulk = client.post(
        "/api/actions/bulk",
        headers=headers,
        json={
            "actions": [
                {"action_type": "slot.view"},
                {"action_type": "shop.view", "context": {"tab": 2}},
            ]
        },
    )
    assert bulk.status_code == 201 and bulk.get_json()["created"] == 2
    recent = client.get("/api/actions/recent?limit=2", headers=headers).get_json()["items"]
    assert [a["action_type"] for a in recent] == ["shop.view", "slot.view"]
    events = in_transaction(
        lambda s: (
            s.execute(
                text(
                    "SELECT envelope->'payload'->>'action_type' FROM outbox"
                    " WHERE event_type = 'user.action' ORDER BY id"
                )
            )
            .scalars()
            .all()
        )
    )
    assert events == ["lobby.open", "slot.view", "shop.view"]


def test_actions_are_private_to_each_player(client):
    a, b = create_user(), create_user()
    client.post("/api/actions", json={"action_type": "mine"}, headers=auth_headers(client, a))
    other = client.get("/api/actions/recent", headers=auth_headers(client, b)).get_json()
    assert other["items"] == []


def test_bad_actions_are_400_and_store_nothing(client):
    headers = auth_headers(client, create_user())
    for body in (
        {"action_type": ""},
        {"action_type": "Bad Type"},
        {"context": {}},
        {"action_type": "x", "context": "str"},
        {"action_type": "x", "context": {"blob": "y" * 5000}},
    ):
        r = client.post("/api/actions", json=body, headers=headers)
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "VALIDATION_ERROR"
    for body in (
        {"actions": []},
        {"actions": [{"action_type": "ok"}] * 101},
        {"actions": [{"action_type": "ok"}, {"action_type": "NOT OK"}]},
    ):
        assert client.post("/api/actions/bulk", json=body, headers=headers).status_code == 400
    assert (
        in_transaction(lambda s: s.execute(text("SELECT count(*) FROM user_actions")).scalar()) == 0
    )
