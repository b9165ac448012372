"""The published games configuration (``GET /api/games/config``) and its stored versions.

A verifier re-derives a round from its seeds *and* the parameters it was played with
(reel strips, paytable, rarities, pity, rps pays, crash edge). Those change with a
deploy, so every round records the ``version`` of the document it was played with
(``game_rounds.config_version``) and every version a process plays with is kept in
``game_configs``: an old round still verifies after a paytable change instead of
falsely reading as a mismatch.

Registration costs nothing on the hot path: the first round a process writes with a
version carries one more CTE in its single money statement (``INSERT … ON CONFLICT DO
NOTHING``), later rounds only the ``config_version`` value. The set of registered
versions is per process and keyed by version, so a config swapped in-process (a test
monkeypatching a paytable) registers its own document with its first round.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ccweb.cte import Attachment
from ccweb.games import config
from ccweb.games.engines import rps


class _SlotPayOut(BaseModel):
    two_cents: int = Field(description="exactly two from the left, in hundredths of the bet")
    three_cents: int = Field(description="three of a kind, in hundredths of the bet")


class _SlotConfigOut(BaseModel):
    rows: int = Field(description="visible rows; reel c shows strip[(stop + r) % len] in row r")
    strips: list[list[str]] = Field(description="one strip per reel; stop = floor(u × len)")
    paylines: list[list[int]] = Field(description="per line, the row (0 = top) on reels 1-3")
    paytable: dict[str, _SlotPayOut]


class _RarityOut(BaseModel):
    name: str
    weight: int
    value: int = Field(description="gold paid for an item of this tier")
    bonus_items: int = Field(description="the first bonus_items items pay value + 1")
    item_ids: list[int]


class _GachaConfigOut(BaseModel):
    cost: int = Field(description="gold per pull (the bet is cost × count)")
    pity_threshold: int = Field(description="a pull with pity ≥ threshold − 1 is the top tier")
    rarities: list[_RarityOut] = Field(description="lowest first; the last is the pity tier")


class _RpsConfigOut(BaseModel):
    choices: list[str] = Field(description="house hand = choices[floor(u × 3)]")
    beats: dict[str, str]
    win_cents: int = Field(description="win pays floor(bet × win_cents / 100)")
    draw_cents: int


class _CrashConfigOut(BaseModel):
    edge_bp: int = Field(description="house edge in basis points (see the crash engine)")


class GamesConfigOut(BaseModel):
    version: str = Field(
        description="hash of the parameters below; also the ETag, and a round's config_version"
    )
    slot: _SlotConfigOut
    gacha: _GachaConfigOut
    rps: _RpsConfigOut
    crash: _CrashConfigOut


@dataclass(frozen=True)
class Published:
    version: str
    body: str  # the JSON of GET /api/games/config
    document: dict[str, Any]  # the same, parsed (what game_configs stores)


_lock = threading.Lock()
_current: tuple[tuple[object, ...], Published] | None = None
_registered: set[str] = set()


def current() -> Published:
    """The document of the configs the engines read now. Built once per set of config
    objects (compared by identity, so a swapped config — a deploy is a new process, a
    test a monkeypatch — gets its own document and version without any cache clearing).

    Only what the derivation reads is published (bet limits, cash-out limits and RTP
    targets are not needed to re-derive a round). Multipliers are integer hundredths,
    as the engines compute (``config.cents``), so a verifier needs no float rounding.
    ``version`` is the first 16 hex digits of sha256 over the canonical JSON of the
    four games (sorted keys, no spaces)."""
    global _current
    s, ga, r, c = (
        config.DEFAULT_SLOT,
        config.DEFAULT_GACHA,
        config.DEFAULT_RPS,
        config.DEFAULT_CRASH,
    )
    sources = (s, ga, r, c)
    cached = _current
    if cached is not None and all(a is b for a, b in zip(cached[0], sources, strict=True)):
        return cached[1]
    published = _build(s, ga, r, c)
    with _lock:
        _current = (sources, published)
    return published


def _build(
    s: config.SlotConfig, ga: config.GachaConfig, r: config.RpsConfig, c: config.CrashConfig
) -> Published:
    games = {
        "slot": {
            "rows": s.rows,
            "strips": [list(strip) for strip in s.strips],
            "paylines": [list(line) for line in s.paylines],
            "paytable": {
                sym: {"two_cents": two, "three_cents": three}
                for sym, (two, three) in s.pay_cents.items()
            },
        },
        "gacha": {
            "cost": ga.cost,
            "pity_threshold": ga.pity_threshold,
            "rarities": [
                {
                    "name": t.name,
                    "weight": t.weight,
                    "value": t.value,
                    "bonus_items": t.bonus_items,
                    "item_ids": list(t.item_ids),
                }
                for t in ga.rarities
            ],
        },
        "rps": {
            "choices": list(rps.CHOICES),
            "beats": dict(rps.BEATS),
            "win_cents": config.cents(r.win_multiplier),
            "draw_cents": config.cents(r.draw_multiplier),
        },
        "crash": {"edge_bp": c.edge_bp},
    }
    canonical = json.dumps(games, sort_keys=True, separators=(",", ":"))
    version = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    body = GamesConfigOut.model_validate({"version": version, **games})  # the documented shape
    return Published(version=version, body=body.model_dump_json(), document=body.model_dump())


def registration(published: Published) -> Attachment | None:
    """The CTE that stores ``published`` with the round being written, or ``None`` once
    this process has stored it (see :func:`registered`)."""
    if published.version in _registered:
        return None
    return Attachment(
        name="cfg",
        sql="""INSERT INTO game_configs (version, document)
            SELECT :c_version, :c_document FROM upd ON CONFLICT (version) DO NOTHING""",
        params={"c_version": published.version, "c_document": published.document},
        types={"c_document": "jsonb"},
    )


def registered(version: str) -> None:
    """The statement that carried :func:`registration` committed: stop attaching it."""
    _registered.add(version)


def forget() -> None:
    """Forget which versions are stored (the tables were emptied, or the process points
    at another database): the next round of each version stores it again."""
    _registered.clear()


_STORED = text("SELECT document::text AS document FROM game_configs WHERE version = :v")


def stored(conn: Connection, version: str) -> str | None:
    """The stored document of ``version`` as JSON text, or ``None`` if unknown. The
    current version is answered from memory (no query, and right even before its first
    round stored it)."""
    published = current()
    if version == published.version:
        return published.body
    row = conn.execute(_STORED, {"v": version}).first()
    return None if row is None else str(row.document)
