"""Games API (SPEC §3 Games): four games, fairness, sessions, rounds, stats."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, g, request
from pydantic import BaseModel, Field

from ccweb.auth.guard import auth_required
from ccweb.db import autocommit, in_transaction, unit_of_work
from ccweb.errors import NotFound
from ccweb.games import config, config_document, history, seeds, service
from ccweb.games.config_document import GamesConfigOut
from ccweb.games.engines import crash, gacha, rps, slot
from ccweb.games.engines.base import RoundResult, check_bet
from ccweb.games.errors import GameInputError
from ccweb.games.schemas import (
    ConfigQuery,
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


def games_config_document() -> tuple[str, str]:
    """``(json_body, version)`` of the current ``GET /api/games/config``."""
    published = config_document.current()
    return published.body, published.version


_IMMUTABLE = "public, max-age=31536000, immutable"


@bp.get("/config")
@doc(
    "The games' parameters a verifier needs to re-derive any round from its seeds"
    " (public). Without ``version``: the current ones (ETag / If-None-Match → 304;"
    " Cache-Control: public, max-age=300). With ``version`` (a round's"
    " ``config_version``): that stored document, immutable (404 if unknown)",
    response=GamesConfigOut,
    errors=(400, 404),
)
@validate(query=ConfigQuery)
def games_config(query: ConfigQuery) -> Response:
    """Public, read-only, no ``auth_required``: SPEC §3 promises that a player "can
    recompute every past outcome", and a third party (or a player who is logged out)
    needs the reel strips, paytable, rarities, pity and crash edge as much as the seeds.
    None of it is secret or per player: the same bytes for everyone, so shared caches
    may keep the current document for 5 minutes (``public, max-age=300``; the config
    changes only on a deploy) and revalidate with the ETag (the ``version``).

    Every round records the version it was played with (``config_version``) and
    ``?version=`` serves that document from ``game_configs``, so a round played before a
    deploy that changed a game's parameters still verifies. A version's document never
    changes (the version is its hash): cacheable for a year, ``immutable``."""
    if query.version is not None:
        with autocommit() as conn:
            body = config_document.stored(conn, query.version)
        if body is None:
            raise NotFound(
                "no games configuration with this version", details={"version": query.version}
            )
        return Response(
            body,
            status=200,
            mimetype="application/json",
            headers={"ETag": f'"{query.version}"', "Cache-Control": _IMMUTABLE},
        )
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


class RoundOut(BaseModel):
    round_id: int
    game_type: str
    session_id: int | None
    bet: int
    payout: int
    outcome: str
    server_seed_hash: str = Field(description="sha256 of the server seed, committed before play")
    client_seed: str
    nonce: int
    detail: dict[str, Any] = Field(description="the engine's outcome (what a verifier compares)")
    config_version: str | None = Field(
        description="GET /api/games/config?version=… the round was played with; null for"
        " rounds from before versions were recorded (verify with the current config)"
    )
    created_at: str


class RoundsOut(BaseModel):
    items: list[RoundOut]


@bp.get("/rounds/recent")
@doc(
    "Recent rounds with their fairness inputs (seed hash, client seed, nonce, config version)",
    response=RoundsOut,
)
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
