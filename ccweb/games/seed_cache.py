"""Per-process memory of each player's current fairness seed and next nonce.

A round no longer reads the seed row first: it uses the cached state and advances the
nonce with an optimistic guard inside the settle statement (``nonce = :expected AND
server_seed_hash = :hash``). If another process played or rotated in between, the
guard matches nothing, the statement writes nothing, and the caller reloads and
retries. The cache holds server seeds, which this process sees anyway while drawing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from ccweb import pg
from ccweb.games import fairness

MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class SeedState:
    server_seed: str
    server_seed_hash: str
    client_seed: str
    nonce: int  # the nonce the next round uses
    pity: int  # gacha pulls in a row without the top rarity


_cache: OrderedDict[int, SeedState] = OrderedDict()

_LOAD = """
    WITH ins AS (
        INSERT INTO fairness_seeds (user_id, server_seed, server_seed_hash, client_seed, nonce)
        SELECT :uid, :seed, :hash, :client, 0
        WHERE EXISTS (SELECT 1 FROM users WHERE id = :uid)
        ON CONFLICT (user_id) DO NOTHING
        RETURNING server_seed, server_seed_hash, client_seed, nonce
    )
    SELECT s.*, (SELECT pity_counter FROM game_stats
                 WHERE user_id = :uid AND game_type = 'gacha') AS pity
    FROM (SELECT server_seed, server_seed_hash, client_seed, nonce FROM ins
          UNION ALL
          SELECT server_seed, server_seed_hash, client_seed, nonce
          FROM fairness_seeds WHERE user_id = :uid) s
    LIMIT 1
"""


def get(user_id: int) -> SeedState | None:
    state = _cache.get(user_id)
    if state is not None:
        _cache.move_to_end(user_id)
    return state


def put(user_id: int, state: SeedState) -> None:
    _cache[user_id] = state
    _cache.move_to_end(user_id)
    while len(_cache) > MAX_ENTRIES:
        _cache.popitem(last=False)


def forget(user_id: int) -> None:
    _cache.pop(user_id, None)


def clear() -> None:
    """Forget every player (tests that truncate tables, restores)."""
    _cache.clear()


def load(conn: Connection, user_id: int) -> SeedState | None:
    """The committed state (creating the player's first seed if needed); None if the
    user does not exist."""
    fresh = fairness.SeedPair.fresh()
    params = {
        "uid": user_id,
        "seed": fresh.server_seed,
        "hash": fresh.server_seed_hash,
        "client": fresh.client_seed,
    }
    rows: list[dict[str, Any]] = pg.execute(conn, _LOAD, params)
    if not rows:
        # A concurrent first round created the row after this statement's snapshot was
        # taken; a second statement (autocommit: new snapshot) sees it.
        rows = pg.execute(conn, _LOAD, params)
    if not rows:
        return None
    r = rows[0]
    state = SeedState(
        r["server_seed"],
        r["server_seed_hash"],
        r["client_seed"],
        int(r["nonce"]),
        int(r["pity"] or 0),
    )
    put(user_id, state)
    return state
