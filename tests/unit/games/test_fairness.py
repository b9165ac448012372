"""Provably fair: commitment, the exact HMAC derivation, and replaying past rounds."""

from __future__ import annotations

import hashlib
import hmac
import struct
from itertools import islice

import pytest

from ccweb.games import fairness
from ccweb.games.config import DEFAULT_CRASH, DEFAULT_GACHA, DEFAULT_RPS, DEFAULT_SLOT
from ccweb.games.engines import crash, gacha, rps, slot
from ccweb.games.engines.base import RoundResult
from ccweb.games.errors import GameInputError


def test_commitment_is_sha256_of_the_seed_string():
    seed = fairness.new_server_seed()
    assert len(seed) == 64 and int(seed, 16) >= 0
    committed = fairness.seed_hash(seed)
    assert committed == hashlib.sha256(seed.encode()).hexdigest()
    assert committed == committed.lower() and len(committed) == 64
    assert fairness.verify_commitment(seed, committed)
    assert fairness.verify_commitment(seed, committed.upper())
    assert not fairness.verify_commitment(fairness.new_server_seed(), committed)
    # pinned so a refactor can never silently change what players verify against
    assert fairness.seed_hash("server-seed") == (
        "91024ec49c5bec0b689e42892526320fce08337205c91de94c7a588c20d08eeb"
    )


def test_digest_matches_a_hand_computed_hmac():
    expected = hmac.new(b"server-seed", b"client-seed:0", hashlib.sha256).digest()
    assert fairness.digest("server-seed", "client-seed", 0) == expected
    assert expected.hex() == "e4855fab63cbdebbb54a426a78d98f48a3edc2bda72642152997c70bd1ec7c33"
    cursor_2 = hmac.new(b"server-seed", b"client-seed:7:2", hashlib.sha256).digest()
    assert fairness.digest("server-seed", "client-seed", 7, cursor=2) == cursor_2


def test_float_stream_is_big_endian_uint32_over_2_pow_32_then_next_cursor():
    stream = list(islice(fairness.floats("server-seed", "client-seed", 0), 10))
    assert stream[0] == 0xE4855FAB / 2**32
    d0 = hmac.new(b"server-seed", b"client-seed:0", hashlib.sha256).digest()
    d1 = hmac.new(b"server-seed", b"client-seed:0:1", hashlib.sha256).digest()
    by_hand = [x / 2**32 for x in struct.unpack(">8I", d0) + struct.unpack(">8I", d1)]
    assert stream == by_hand[:10]
    # Stake-style byte sum gives the same number
    b = d0[:4]
    assert stream[0] == b[0] / 256 + b[1] / 256**2 + b[2] / 256**3 + b[3] / 256**4
    assert all(0.0 <= u < 1.0 for u in islice(fairness.floats("s", "c", 3), 1000))


def test_different_seed_client_seed_or_nonce_changes_the_stream(seeds):
    def first(server: str, client: str, nonce: int) -> list[float]:
        return list(islice(fairness.floats(server, client, nonce), 8))

    base = first(seeds.server_seed, seeds.client_seed, 5)
    assert base == first(seeds.server_seed, seeds.client_seed, 5)
    assert base != first(seeds.server_seed, seeds.client_seed, 6)
    assert base != first(fairness.new_server_seed(), seeds.client_seed, 5)
    assert base != first(seeds.server_seed, seeds.client_seed + "x", 5)


def _play_history(pair: fairness.SeedPair) -> tuple[fairness.SeedPair, list[tuple[str, int, dict]]]:
    """Play a mixed session, returning the advanced pair and (game, nonce, result) rows."""
    history = []
    pity = 0
    for i in range(40):
        rng, nonce = pair.round_floats(), pair.nonce
        kind = ("slot", "gacha", "rps", "crash")[i % 4]
        result: RoundResult
        if kind == "slot":
            result = slot.play(DEFAULT_SLOT, rng, bet=10 + i)
        elif kind == "gacha":
            result = pulled = gacha.play(DEFAULT_GACHA, rng, count=10 if i % 8 else 1, pity=pity)
            pity = pulled.pity
        elif kind == "rps":
            result = rps.play(DEFAULT_RPS, rng, bet=25, choice=("rock", "paper", "scissors")[i % 3])
        else:
            result = crash.play(DEFAULT_CRASH, rng, bet=50, auto_cashout=1.5 + i / 10)
        history.append((kind, nonce, result.to_dict()))
        pair = pair.advanced()
    return pair, history


def _replay(server_seed: str, client_seed: str, kind: str, nonce: int, shown: dict) -> dict:
    """What a player does with the revealed seed: rerun the engine with the same inputs."""
    rng = fairness.floats(server_seed, client_seed, nonce)
    if kind == "slot":
        return slot.play(DEFAULT_SLOT, rng, bet=shown["bet"]).to_dict()
    if kind == "gacha":
        return gacha.play(DEFAULT_GACHA, rng, shown["count"], shown["pity_before"]).to_dict()
    if kind == "rps":
        return rps.play(DEFAULT_RPS, rng, bet=shown["bet"], choice=shown["choice"]).to_dict()
    return crash.play(
        DEFAULT_CRASH, rng, bet=shown["bet"], auto_cashout=shown["auto_cashout"]
    ).to_dict()


def test_past_outcomes_recompute_exactly_from_the_revealed_seed():
    pair = fairness.SeedPair.fresh("my-lucky-seed")
    shown_before_play = pair.public()
    assert "server_seed" not in shown_before_play and shown_before_play["nonce"] == 0

    pair, history = _play_history(pair)
    assert pair.nonce == len(history)
    new_pair, body = pair.rotate()

    revealed = body["previous_server_seed"]
    assert fairness.seed_hash(revealed) == shown_before_play["server_seed_hash"]
    assert body["previous_server_seed_hash"] == shown_before_play["server_seed_hash"]
    assert (
        body["server_seed_hash"] == new_pair.server_seed_hash != body["previous_server_seed_hash"]
    )
    assert body["client_seed"] == "my-lucky-seed" and body["nonce"] == 0 == new_pair.nonce

    for kind, nonce, shown in history:
        assert _replay(revealed, "my-lucky-seed", kind, nonce, shown) == shown

    # the same inputs under another seed or nonce do not reproduce the rounds
    other = fairness.new_server_seed()
    assert any(_replay(other, "my-lucky-seed", k, n, s) != s for k, n, s in history)
    assert any(_replay(revealed, "my-lucky-seed", k, n + 1, s) != s for k, n, s in history)


def test_rotate_can_change_the_client_seed(seeds):
    nxt, body = seeds.advanced().rotate("fresh-seed")
    assert nxt.client_seed == body["client_seed"] == "fresh-seed"
    assert nxt.nonce == 0 and nxt.server_seed != seeds.server_seed
    assert body["previous_server_seed"] == seeds.server_seed


@pytest.mark.parametrize("bad", ["", "a:b", "x" * 65, "tab\there", "é", 123, None])
def test_client_seed_validation(bad):
    with pytest.raises(GameInputError) as err:
        fairness.validate_client_seed(bad)
    assert err.value.field == "client_seed"
    if bad is not None:  # None means "pick one for me"
        with pytest.raises(GameInputError):
            fairness.SeedPair.fresh(bad)


def test_game_input_error_details_have_the_validation_shape():
    err = GameInputError("bet", "must be between 1 and 10000")
    assert err.details() == {
        "fields": [{"field": "bet", "message": "must be between 1 and 10000", "type": "game_input"}]
    }
    assert str(err) == "bet: must be between 1 and 10000"
