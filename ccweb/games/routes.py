"""Games API (SPEC §3 Games): four games, fairness, sessions, rounds, stats."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, g, request
from pydantic import BaseModel, Field

from ccweb.auth.guard import auth_required
from ccweb.db import autocommit, in_transaction, unit_of_work
from ccweb.games import config, history, seeds, service
from ccweb.games.engines import crash, gacha, rps, slot
from ccweb.games.engines.base import RoundResult, check_bet
from ccweb.games.errors import GameInputError
from ccweb.games.schemas import (
    CrashIn,
    GachaIn,
    LimitQuery,
    RotateIn,
    RpsIn,
    SessionStartIn,
    SpinIn,
)
from ccweb.http.errors import error_response
from ccweb.http.validation import doc, validate
from ccweb.idempotency.service import idempotent

bp = Blueprint("games", __name__, url_prefix="/api/games")


@bp.app_errorhandler(GameInputError)
def _game_input(err: GameInputError) -> Response:
    """The engines' input errors (plain exceptions, so the engines need no Flask) are
    400 ``VALIDATION_ERROR`` in the request-schema shape; registered here, where the
    engines are called, so the generic error module need not know the games."""
    return error_response(400, "VALIDATION_ERROR", str(err), err.details())


PLAY_ERRORS = (400, 404, 409)


def _play(
    game_type: str, session_id: int | None, draw: Callable[[Iterator[float], int], RoundResult]
) -> Any:
    return service.play(g.user_id, game_type, draw, session_id=session_id)


@bp.post("/slot/spin")
@doc("Spin the slot: 3×3 reels, five paylines", errors=PLAY_ERRORS)
@auth_required
@idempotent
@validate(body=SpinIn)
def slot_spin(body: SpinIn) -> Any:
    cfg = config.DEFAULT_SLOT
    check_bet(body.bet, cfg.max_bet)
    return _play("slot", body.session_id, lambda rng, _pity: slot.play(cfg, rng, body.bet))


@bp.post("/gacha/pull")
@doc(
    "Pull 1 or 10 items at a fixed cost per pull; pity guarantees the top rarity",
    errors=PLAY_ERRORS,
)
@auth_required
@idempotent
@validate(body=GachaIn)
def gacha_pull(body: GachaIn) -> Any:
    cfg = config.DEFAULT_GACHA
    gacha.check_count(cfg, body.count)
    return _play("gacha", body.session_id, lambda rng, pity: gacha.play(cfg, rng, body.count, pity))


@bp.post("/rps/play")
@doc("Rock-paper-scissors against the house", errors=PLAY_ERRORS)
@auth_required
@idempotent
@validate(body=RpsIn)
def rps_play(body: RpsIn) -> Any:
    cfg = config.DEFAULT_RPS
    check_bet(body.bet, cfg.max_bet)
    return _play(
        "rps", body.session_id, lambda rng, _pity: rps.play(cfg, rng, body.bet, body.choice)
    )


@bp.post("/crash/bet")
@doc(
    "Crash with automatic cash-out: wins floor(bet × auto_cashout) if it is reached",
    errors=PLAY_ERRORS,
)
@auth_required
@idempotent
@validate(body=CrashIn)
def crash_bet(body: CrashIn) -> Any:
    cfg = config.DEFAULT_CRASH
    check_bet(body.bet, cfg.max_bet)
    crash.check_auto_cashout(cfg, body.auto_cashout)
    return _play(
        "crash",
        body.session_id,
        lambda rng, _pity: crash.play(cfg, rng, body.bet, body.auto_cashout),
    )


@bp.get("/fairness")
@doc("The committed server seed hash, client seed and next nonce")
@auth_required
def fairness_current() -> Any:
    with unit_of_work() as s:
        return seeds.public_view(g.user_id, s)


@bp.post("/fairness/rotate")
@doc("Reveal the current server seed and commit a new one")
@auth_required
@validate(body=RotateIn)
def fairness_rotate(body: RotateIn) -> Any:
    return in_transaction(lambda s: seeds.rotate(s, g.user_id, body.client_seed))


@bp.get("/fairness/revealed")
@doc("Server seeds revealed by earlier rotations (newest first)")
@auth_required
@validate(query=LimitQuery)
def fairness_revealed(query: LimitQuery) -> Any:
    with autocommit() as conn:
        return {"items": seeds.revealed(conn, g.user_id, query.limit)}


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
    version: str = Field(description="hash of the parameters below; also the ETag")
    slot: _SlotConfigOut
    gacha: _GachaConfigOut
    rps: _RpsConfigOut
    crash: _CrashConfigOut


@functools.cache
def games_config_document() -> tuple[str, str]:
    """``(json_body, version)`` of ``GET /api/games/config``, built once per process:
    the configs are module constants, so they change only with a deploy.

    Only what the derivation reads is published (bet limits, cash-out limits and RTP
    targets are not needed to re-derive a round). Multipliers are integer hundredths,
    as the engines compute (``config.cents``), so a verifier needs no float rounding.
    ``version`` is the first 16 hex digits of sha256 over the canonical JSON of the
    four games (sorted keys, no spaces)."""
    s, ga, r, c = (
        config.DEFAULT_SLOT,
        config.DEFAULT_GACHA,
        config.DEFAULT_RPS,
        config.DEFAULT_CRASH,
    )
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
    return body.model_dump_json(), version


@bp.get("/config")
@doc(
    "The games' parameters a verifier needs to re-derive any round from its seeds"
    " (public; ETag / If-None-Match → 304; Cache-Control: public, max-age=300)",
    response=GamesConfigOut,
)
def games_config() -> Response:
    """Public, read-only, no ``auth_required``: SPEC §3 promises that a player "can
    recompute every past outcome", and a third party (or a player who is logged out)
    needs the reel strips, paytable, rarities, pity and crash edge as much as the seeds.
    None of it is secret or per player: the same bytes for everyone, so shared caches
    may keep them for 5 minutes (``public, max-age=300``; the config changes only on a
    deploy) and revalidate with the ETag (the ``version``).

    Rounds do not record which config they were played with: the server has exactly one
    config per deploy and this endpoint serves the current one, so a round played before
    a deploy that changed a game's parameters no longer verifies against it (recording
    ``version`` per round and keeping old documents would fix that)."""
    body, version = games_config_document()
    quoted = f'"{version}"'
    headers = {"ETag": quoted, "Cache-Control": "public, max-age=300"}
    wanted = [
        t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")
    ]
    if quoted in wanted or "*" in wanted:
        return Response(status=304, headers=headers)
    return Response(body, status=200, mimetype="application/json", headers=headers)


@bp.post("/sessions/start")
@doc("Start a play session", status=201)
@auth_required
@validate(body=SessionStartIn)
def session_start(body: SessionStartIn) -> Any:
    with unit_of_work() as s:
        return history.start_session(s, g.user_id, body.game_type), 201


@bp.post("/sessions/<id:session_id>/end")
@doc("End a session and get its summary", errors=(404, 409))
@auth_required
def session_end(session_id: int) -> Any:
    with unit_of_work() as s:
        return history.end_session(s, g.user_id, session_id)


@bp.get("/sessions/recent")
@doc("Recent sessions, newest first")
@auth_required
@validate(query=LimitQuery)
def sessions_recent(query: LimitQuery) -> Any:
    with autocommit() as conn:
        return {"items": history.recent_sessions(conn, g.user_id, query.limit)}


@bp.get("/rounds/recent")
@doc("Recent rounds with their fairness inputs (seed hash, client seed, nonce)")
@auth_required
@validate(query=LimitQuery)
def rounds_recent(query: LimitQuery) -> Any:
    with autocommit() as conn:
        return {"items": history.recent_rounds(conn, g.user_id, query.limit)}


@bp.get("/stats/me")
@doc("Aggregate and per-game stats of the current player")
@auth_required
def stats_me() -> Any:
    with autocommit() as conn:
        return {"success": True, "stats": history.stats(conn, g.user_id)}
