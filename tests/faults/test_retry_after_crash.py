"""A web process SIGKILLed between the money commit and its response: the client's retry
with the same ``X-Idempotency-Key`` gets the original result, and the money moved once.

Server A runs with ``CC_FAILPOINTS=after_commit=kill``: the first unit of work that
commits there kills the process at the worst moment — the data is durable, the response,
the fast-path publish and the cache bump are not sent. The player's token comes from
server B (same database, no failpoint), which also serves the retry, as a load balancer
would after A's connection dropped. The round's event, never fast-path published, still
reaches the worker through the outbox relay."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.faults.api import Api, ledger_matches_balance
from tests.faults.stores import FaultStack
from tests.processes import wait_for

KILL_AFTER_COMMIT = {"CC_FAILPOINTS": "after_commit=kill"}


def _crash(api: Api, method: str, path: str, body: dict | None, key: str) -> None:
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        api.call(method, path, body, key=key)


@pytest.mark.parametrize(
    ("name", "path", "body"),
    [
        ("spin", "/api/games/slot/spin", {"bet": 100}),
        ("crash", "/api/games/crash/bet", {"bet": 100, "auto_cashout": 1.5}),
        ("streak", "/api/streak/claim", None),
    ],
)
def test_sigkill_between_commit_and_response_then_retry_replays(
    fault_stack: FaultStack, name: str, path: str, body: dict | None
):
    _, port_b = fault_stack.start_server()
    doomed, port_a = fault_stack.start_server(**KILL_AFTER_COMMIT)
    player = Api(port_b)
    user = player.signup(prefix=name)
    uid = user["id"]
    entries_before = fault_stack.scalar(
        "SELECT count(*) FROM wallet_ledger WHERE user_id = %s", (uid,)
    )

    _crash(player.on(port_a), "POST", path, body, key=f"crash-{name}")
    assert doomed.wait(10) == -9  # SIGKILL: the process died after committing

    (stored,) = fault_stack.sql(
        "SELECT status_code, response FROM idempotency_keys WHERE user_id = %s", (uid,)
    )
    assert stored[0] == 200  # the response committed with the effect
    moved = fault_stack.scalar("SELECT count(*) FROM wallet_ledger WHERE user_id = %s", (uid,))
    assert moved > entries_before

    retry = player.call("POST", path, body, key=f"crash-{name}")
    assert retry.status == 200, retry
    assert retry.headers.get("idempotent-replay") == "true"
    assert retry.body == stored[1]
    again = player.call("POST", path, body, key=f"crash-{name}")
    assert again.body == retry.body
    assert (
        fault_stack.scalar("SELECT count(*) FROM wallet_ledger WHERE user_id = %s", (uid,)) == moved
    )
    assert ledger_matches_balance(fault_stack, uid)
    balance = fault_stack.scalar("SELECT gold_balance FROM users WHERE id = %s", (uid,))
    assert retry.body["gold_balance"] == balance
    if name != "streak":
        rounds = fault_stack.scalar("SELECT count(*) FROM game_rounds WHERE user_id = %s", (uid,))
        assert rounds == 1

    # the events A never published reach the consumers through the relay: nothing lost
    fault_stack.start_worker("--burst")
    wait_for(
        lambda: json.loads(fault_stack.manage_output("reconcile", "--grace", "0"))["ok"],
        30,
        "every committed event processed, and the money consistent",
    )
