"""Provably-fair randomness: every outcome is a function of seeds the player can check.

The server commits to a secret ``server_seed`` by showing ``server_seed_hash`` before any
round is played; the player may choose the ``client_seed``; each round uses the next
``nonce`` (0, 1, 2, … — the number of rounds already played with this seed pair). When
the player rotates, the old server seed is revealed and every past round can be
recomputed by hand:

1. Commitment: ``server_seed_hash = sha256(server_seed.encode("utf-8")).hexdigest()``
   (lowercase hex of the seed *string*, which is itself 64 hex characters).
2. Digests for the round with nonce ``n``::

       digest_0 = HMAC-SHA256(key=server_seed, msg=f"{client_seed}:{n}")
       digest_k = HMAC-SHA256(key=server_seed, msg=f"{client_seed}:{n}:{k}")   # k ≥ 1

   Key and message are UTF-8. ``digest_k`` is only computed when a round needs more than
   ``8·k`` floats (a gacha 10-pull needs 20, so it uses k = 0, 1, 2).
3. Floats: each 32-byte digest is cut into eight 4-byte groups; group ``b0 b1 b2 b3``
   becomes ``b0/256 + b1/256² + b2/256³ + b3/256⁴`` — the big-endian unsigned 32-bit
   integer divided by 2³², a float in [0, 1) (the Stake-style derivation). The round
   consumes the floats in order: digest_0 group 0…7, then digest_1 group 0…7, …
4. Each engine documents which float decides what (e.g. the slot uses floats 0–2 for
   the three reel stops).

Python to recompute floats::

    import hashlib, hmac, struct
    msg = f"{client_seed}:{nonce}" if k == 0 else f"{client_seed}:{nonce}:{k}"
    d = hmac.new(server_seed.encode(), msg.encode(), hashlib.sha256).digest()
    floats = [x / 2**32 for x in struct.unpack(">8I", d)]

A client seed may not contain ``:`` so that ``client_seed:nonce:k`` is unambiguous.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from ccweb.games.errors import GameInputError

FLOATS_PER_DIGEST = 8
CLIENT_SEED_MAX_LEN = 64
_UNPACK = struct.Struct(">8I").unpack
_TWO_POW_MINUS_32 = 2.0**-32


def new_server_seed() -> str:
    """A fresh secret server seed: 32 random bytes as 64 lowercase hex characters."""
    return secrets.token_hex(32)


def new_client_seed() -> str:
    """A default client seed for players who never choose one (16 hex characters)."""
    return secrets.token_hex(8)


def seed_hash(server_seed: str) -> str:
    """The commitment shown before play: sha256 of the seed string, lowercase hex."""
    return hashlib.sha256(server_seed.encode("utf-8")).hexdigest()


def verify_commitment(server_seed: str, committed_hash: str) -> bool:
    """True when a revealed seed matches the hash that was committed earlier."""
    return hmac.compare_digest(seed_hash(server_seed), committed_hash.lower())


def validate_client_seed(client_seed: object) -> str:
    """Accept 1–64 printable ASCII characters without ``:`` (keeps the message unambiguous)."""
    if not isinstance(client_seed, str):
        raise GameInputError("client_seed", "must be a string")
    if not 1 <= len(client_seed) <= CLIENT_SEED_MAX_LEN:
        raise GameInputError("client_seed", f"must be 1-{CLIENT_SEED_MAX_LEN} characters")
    if not (client_seed.isascii() and client_seed.isprintable()) or ":" in client_seed:
        raise GameInputError("client_seed", "printable ASCII only, no ':'")
    return client_seed


def digest(server_seed: str, client_seed: str, nonce: int, cursor: int = 0) -> bytes:
    """HMAC-SHA256(server_seed, "client_seed:nonce[:cursor]") — step 2 of the module doc."""
    if nonce < 0 or cursor < 0:
        raise ValueError("nonce and cursor must be >= 0")
    msg = f"{client_seed}:{nonce}" if cursor == 0 else f"{client_seed}:{nonce}:{cursor}"
    return hmac.digest(server_seed.encode("utf-8"), msg.encode("utf-8"), "sha256")


def digest_floats(raw: bytes) -> tuple[float, ...]:
    """The eight floats in [0, 1) of one digest (step 3): big-endian uint32 / 2³²."""
    return tuple(x * _TWO_POW_MINUS_32 for x in _UNPACK(raw))


def floats(server_seed: str, client_seed: str, nonce: int) -> Iterator[float]:
    """The endless, deterministic float stream of one round; engines take what they need."""
    cursor = 0
    while True:
        yield from digest_floats(digest(server_seed, client_seed, nonce, cursor))
        cursor += 1


@dataclass(frozen=True)
class SeedPair:
    """One player's active seeds; ``nonce`` is the nonce the *next* round will use."""

    server_seed: str
    client_seed: str
    nonce: int = 0

    @classmethod
    def fresh(cls, client_seed: str | None = None) -> SeedPair:
        seed = new_client_seed() if client_seed is None else validate_client_seed(client_seed)
        return cls(new_server_seed(), seed, 0)

    @property
    def server_seed_hash(self) -> str:
        return seed_hash(self.server_seed)

    def public(self) -> dict[str, Any]:
        """What ``GET /api/games/fairness`` may show: never the server seed itself."""
        return {
            "server_seed_hash": self.server_seed_hash,
            "client_seed": self.client_seed,
            "nonce": self.nonce,
        }

    def round_floats(self) -> Iterator[float]:
        """Floats for the next round (nonce = ``self.nonce``); call :meth:`advanced` after."""
        return floats(self.server_seed, self.client_seed, self.nonce)

    def advanced(self) -> SeedPair:
        return replace(self, nonce=self.nonce + 1)

    def rotate(self, client_seed: str | None = None) -> tuple[SeedPair, dict[str, Any]]:
        """Reveal this seed and start a new pair; returns it with the rotate response body.

        The client seed carries over unless a new one is given; the nonce restarts at 0.
        """
        nxt = SeedPair.fresh(self.client_seed if client_seed is None else client_seed)
        body = {
            "previous_server_seed": self.server_seed,
            "previous_server_seed_hash": self.server_seed_hash,
            **nxt.public(),
        }
        return nxt, body
