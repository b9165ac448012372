"""The connection protocol in-process, against real Redis and PostgreSQL: what happens
when announcements are lost (the hub was away) — the catch-up after a reconnect and the
gap fill on a later message both come from the history, in order — and the bounded
queue of a slow subscriber."""

from __future__ import annotations

import json

import pytest

from ccweb.auth import tokens
from ccweb.redis_client import get_redis, reload_scripts
from realtime import history
from realtime.hub import CATCH_UP, Hub, Subscriber
from realtime.session import GOING_AWAY, Closed, Session
from tests.factories import create_user, login


def _session(client, settings) -> tuple[Session, Hub]:
    user = create_user()
    claims = tokens.decode(login(client, user)["access_token"], "access")
    hub = Hub(get_redis(settings), settings)
    quick = settings.with_overrides(ws_heartbeat_s=0.2)  # step() returns at least that often
    session = Session(hub, claims, quick, kill=lambda: None)
    session.open(None, None)
    assert [json.loads(t)["type"] for t, _ in session.take()] == [
        "sync_connected",
        "initial_state",
    ]
    return session, hub


def _push(rds, uid: int, names: list[str]) -> None:
    reload_scripts(rds)
    pipe = rds.pipeline(transaction=False)
    for name in names:
        msg = json.dumps(
            {"type": "user_action", "user_id": uid, "data": {"n": name}, "timestamp": "x"}
        )
        history.queue_push(pipe, uid, msg, f"{name}:0")
    pipe.execute()


def _drain(session: Session, want: int) -> list[tuple[str, int | None]]:
    got: list[tuple[str, int | None]] = []
    for _ in range(50):
        session.step()
        got += session.take()
        if len(got) >= want:
            break
    return got


def test_catch_up_after_the_hub_reconnects_sends_what_was_lost(client, settings, rds) -> None:
    session, hub = _session(client, settings)
    hub.unsubscribe(session.sub)  # announcements now go nowhere, as while the hub is away
    _push(rds, session.user_id, ["a", "b", "c"])
    hub.subscribe(session.sub)
    hub.broadcast((CATCH_UP,))
    got = _drain(session, 3)
    assert [seq for _, seq in got] == [1, 2, 3]
    assert [json.loads(t)["data"]["n"] for t, _ in got] == ["a", "b", "c"]
    hub.stop()


def test_a_gap_in_live_messages_is_filled_from_the_history(client, settings, rds) -> None:
    session, hub = _session(client, settings)
    _push(rds, session.user_id, ["a"])
    assert [seq for _, seq in _drain(session, 1)] == [1]
    hub.unsubscribe(session.sub)
    _push(rds, session.user_id, ["b", "c"])  # lost
    hub.subscribe(session.sub)
    _push(rds, session.user_id, ["d"])  # seq 4 arrives after 1: 2 and 3 come from history
    assert [seq for _, seq in _drain(session, 3)] == [2, 3, 4]
    hub.stop()


def test_a_full_queue_drops_the_subscriber_once() -> None:
    kills: list[int] = []
    sub = Subscriber(1, 2, kill=lambda: kills.append(1))
    assert sub.offer(("msg", "e", 1, "{}")) and sub.offer(("msg", "e", 2, "{}"))
    assert not sub.offer(("msg", "e", 3, "{}"))
    assert not sub.offer(("msg", "e", 4, "{}"))
    assert sub.slow and kills == [1] and sub.queue.qsize() == 2


def test_close_all_ends_every_connection_with_going_away(client, settings) -> None:
    session, hub = _session(client, settings)
    hub.close_all()
    with pytest.raises(Closed) as closed:
        session.step()
    assert closed.value.code == GOING_AWAY
    hub.stop()
