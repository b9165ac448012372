"""The load test's knobs, read from the environment by the Locust process (the locustfile
documents each; :mod:`loadtests.run` sets them from its options), and the little state
the locustfile hands to the players."""

from __future__ import annotations

import os
from collections.abc import Iterator


def think_time() -> tuple[float, float]:
    """``LOADTEST_THINK_S`` = ``"min,max"`` seconds between a player's actions."""
    lo, _, hi = os.environ.get("LOADTEST_THINK_S", "1,3").partition(",")
    return float(lo), float(hi or lo)


def signup_share() -> float:
    """``LOADTEST_SIGNUP_SHARE``: the share of players who are new and sign up (0.1);
    the others log in to an account made before the run (:mod:`loadtests.accounts`)."""
    return float(os.environ.get("LOADTEST_SIGNUP_SHARE", "0.1"))


def _accounts() -> Iterator[str]:
    """The site ids in ``LOADTEST_ACCOUNTS`` (one per line), each handed out once."""
    path = os.environ.get("LOADTEST_ACCOUNTS")
    if path and os.path.exists(path):
        with open(path) as f:
            yield from (line.strip() for line in f.read().splitlines() if line.strip())


ACCOUNTS = _accounts()
_arrivals = {"n": 0}


def next_account() -> str | None:
    """The account the next arriving player logs in to, or None: that player signs up.
    New players are spread evenly, not drawn at random (a short run still has its
    share of them): the n-th player signs up when ``floor(n × share)`` steps up. When
    the accounts run out, everyone signs up."""
    share = signup_share()
    n = _arrivals["n"] = _arrivals["n"] + 1
    if int(n * share) > int((n - 1) * share):
        return None
    return next(ACCOUNTS, None)


# Whether the server under test has GET /api/recommendations (issue 13 adds it); set by
# the locustfile from /api/openapi.json at test start. Only when it is not registered is
# its 404 NOT_FOUND accepted.
RECOMMENDATIONS_REGISTERED = {"value": True}
