"""The per-player push stream in real Redis: numbering, bounded history, epochs, dedupe,
and the announcement on the partition channel."""

from __future__ import annotations

import json

import pytest

from ccweb import events
from ccweb.redis_client import reload_scripts
from realtime import history
from realtime.messages import to_messages


def push(rds, uid: int, n: int, start: int = 0) -> list[int | None]:
    reload_scripts(rds)  # EVALSHA needs the script known to this Redis
    pipe = rds.pipeline(transaction=False)
    for i in range(start, start + n):
        history.queue_push(pipe, uid, json.dumps({"type": "t", "user_id": uid, "i": i}), f"ev{i}:0")
    return pipe.execute()


def test_pushes_are_numbered_kept_and_announced(rds, settings):
    sub = rds.pubsub()
    sub.subscribe(*history.all_channels())
    sub.get_message(timeout=1)
    assert push(rds, 7, 3) == [1, 2, 3]
    epoch, last = history.position(rds, 7)
    assert epoch and last == 3
    got = history.read_since(rds, 7, epoch, 1)
    assert got is not None
    assert got[0] == epoch
    assert [(seq, json.loads(m)["i"]) for seq, m in got[1]] == [(2, 1), (3, 2)]
    assert all(json.loads(m)["seq"] == seq for seq, m in got[1])
    announced = []
    while (msg := sub.get_message(timeout=1)) is not None:
        if msg["type"] == "message":
            announced.append(msg["data"])
    assert [a.split(" ", 3)[:3] for a in announced] == [["7", epoch, str(s)] for s in (1, 2, 3)]
    assert json.loads(announced[-1].split(" ", 3)[3])["seq"] == 3


def test_the_same_push_twice_is_a_no_op(rds, settings):
    assert push(rds, 8, 2) == [1, 2]
    assert push(rds, 8, 2) == [None, None]  # redelivered events
    assert history.position(rds, 8)[1] == 2


@pytest.mark.parametrize("case", ["other_epoch", "trimmed", "ahead", "lost"])
def test_a_position_that_cannot_be_resumed_exactly_asks_for_a_resync(rds, settings, case):
    push(rds, 9, history.HISTORY_LEN + 50)
    epoch, last = history.position(rds, 9)
    assert history.read_since(rds, 9, epoch, last - 5) is not None
    if case == "other_epoch":
        assert history.read_since(rds, 9, "123", last - 5) is None
    elif case == "trimmed":
        assert history.read_since(rds, 9, epoch, 1) is None
    elif case == "ahead":
        assert history.read_since(rds, 9, epoch, last + 1) is None
    else:  # Redis lost the stream: a new epoch, numbering starts again
        rds.delete(history.epoch_key(9))
        assert history.read_since(rds, 9, epoch, last) is None
        push(rds, 9, 1, start=10_000)
        new_epoch, new_last = history.position(rds, 9)
        assert new_epoch != epoch and new_last == 1


def test_a_fresh_client_on_an_empty_stream_resumes_from_nothing(rds, settings):
    assert history.read_since(rds, 10, None, 0) == (None, [])


def test_events_map_to_their_push_messages():
    env = events.make_envelope(
        events.GAME_ROUND,
        5,
        {
            "round_id": 1,
            "game_type": "slot",
            "bet": 10,
            "payout": 0,
            "gold_delta": -10,
            "outcome": "lose",
            "session_id": None,
            "gold_balance": 990,
            "experience_points": 10,
            "level": 1,
        },
    )
    msgs = [json.loads(m) for m in to_messages(env)]
    assert [m["type"] for m in msgs] == ["stats_update", "profile_update"]
    assert msgs[1]["data"]["gold_balance"] == 990 and msgs[0]["user_id"] == 5
    assert all(m["timestamp"] == env["ts"] for m in msgs)
    assert to_messages(events.make_envelope(events.AUTH_LOGIN, 5, {})) == []
