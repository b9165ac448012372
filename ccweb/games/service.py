"""Playing a round: the provably-fair draw, the engine, and ONE money statement.

A round is a single statement on an autocommit connection (atomic by itself, so no
BEGIN/COMMIT round trips): :func:`ccweb.wallet.ledger.settle` with

* a guard that advances the player's fairness nonce only if it is still the one the
  round was drawn with (optimistic: the seed and nonce come from a per-process cache,
  see :mod:`ccweb.games.seed_cache`), the balance covers the bet, the named session (if
  any) is the player's own open session of this game, and the request's idempotency key
  (if any) is still open;
* the bet debit, the payout credit and the XP/level change;
* attached rows: the round, the stats upsert, the session counters, the ``game.round``
  outbox row, a ``user.level_up`` outbox row only if the level rose, and the request's
  idempotent response — so a client retrying after a crash at any point gets this round
  back instead of playing another.

If the guard fails, nothing is written and the reason is found: a completed idempotency
key (replay), a bad session (404/409), or another process that played or rotated the
seed (reload and draw again with the right nonce). A nonce is never used twice; in a rare
race with a concurrent non-game debit one may be skipped. After the statement the
round's effects (fast-path publish, cache version bump) run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ccweb import events
from ccweb.db import autocommit
from ccweb.effects import Effects
from ccweb.errors import Conflict, FeatureDisabled, NotFound
from ccweb.flags import service as flags
from ccweb.games import config_document, fairness, round_ids, seed_cache
from ccweb.games.engines.base import RoundResult
from ccweb.idempotency import service as idempotency
from ccweb.outbox import writer
from ccweb.wallet.ledger import BALANCE_FIELDS, Attachment, Entry, GuardRejected, settle

_SEED_GUARD = """UPDATE fairness_seeds SET nonce = nonce + 1
    WHERE user_id = :g_uid AND nonce = :g_nonce AND server_seed_hash = :g_hash
      AND EXISTS (SELECT 1 FROM users WHERE id = :g_uid AND gold_balance >= :g_bet)"""
_SESSION_OPEN = """ AND EXISTS (SELECT 1 FROM game_sessions WHERE id = :g_sid
        AND user_id = :g_uid AND game_type = :g_game AND ended_at IS NULL)"""
_SESSION_STATE = text("SELECT user_id, game_type, ended_at FROM game_sessions WHERE id = :sid")

MAX_ATTEMPTS = 4

_ROUND_SQL = """INSERT INTO game_rounds (id, user_id, game_type, session_id, bet, payout, outcome,
                                     server_seed_hash, client_seed, nonce, detail, config_version)
    SELECT :r_id, :r_uid, :r_game, :r_sid, :r_bet, :r_payout, :r_outcome, :r_hash, :r_client,
           :r_nonce, :r_detail, :r_config
    FROM upd RETURNING id"""

_STATS_SQL = """INSERT INTO game_stats (user_id, game_type, total, wins, losses, draws, total_bet,
                                    total_payout, max_win, pity_counter, updated_at)
    SELECT :s_uid, :s_game, 1, :s_win, :s_loss, :s_draw, :s_bet, :s_payout, :s_max, :s_pity, now()
    FROM upd
    ON CONFLICT (user_id, game_type) DO UPDATE SET
        total = game_stats.total + 1,
        wins = game_stats.wins + EXCLUDED.wins,
        losses = game_stats.losses + EXCLUDED.losses,
        draws = game_stats.draws + EXCLUDED.draws,
        total_bet = game_stats.total_bet + EXCLUDED.total_bet,
        total_payout = game_stats.total_payout + EXCLUDED.total_payout,
        max_win = GREATEST(game_stats.max_win, EXCLUDED.max_win),
        pity_counter = EXCLUDED.pity_counter,
        updated_at = now()"""

_SESSION_SQL = """UPDATE game_sessions SET rounds = rounds + 1,
        total_bet = total_bet + :g_bet, total_payout = total_payout + :g_payout
    WHERE id = :g_sid AND EXISTS (SELECT 1 FROM upd)"""


def _round_attachments(
    user_id: int,
    round_id: int,
    seed: Any,
    result: RoundResult,
    session_id: int | None,
    pity_after: int,
    detail: dict[str, Any],
    config_version: str,
) -> list[Attachment]:
    outcome = result.outcome
    atts = [
        Attachment(
            name="rnd",
            sql=_ROUND_SQL,
            params={
                "r_id": round_id,
                "r_uid": user_id,
                "r_game": result.game_type,
                "r_sid": session_id,
                "r_bet": result.bet,
                "r_payout": result.payout,
                "r_outcome": outcome,
                "r_hash": seed.server_seed_hash,
                "r_client": seed.client_seed,
                "r_nonce": seed.nonce,
                "r_detail": detail,
                "r_config": config_version,
            },
            types={"r_sid": "bigint", "r_detail": "jsonb"},
        ),
        Attachment(
            name="st",
            sql=_STATS_SQL,
            params={
                "s_uid": user_id,
                "s_game": result.game_type,
                "s_win": int(outcome == "win"),
                "s_loss": int(outcome == "lose"),
                "s_draw": int(outcome == "draw"),
                "s_bet": result.bet,
                "s_payout": result.payout,
                "s_max": result.payout if outcome == "win" else 0,
                "s_pity": pity_after,
            },
        ),
    ]
    if session_id is not None:
        atts.append(
            Attachment(
                name="gs",
                sql=_SESSION_SQL,
                params={"g_payout": result.payout},
            )
        )
    return atts


def play(
    user_id: int,
    game_type: str,
    draw: Callable[[Iterator[float], int], RoundResult],
    *,
    session_id: int | None = None,
) -> dict[str, Any]:
    """Play one round of ``game_type``. ``draw(rng, pity)`` runs the engine with validated
    input. Raises ``idempotency.AlreadyCompleted`` when this request's key was completed
    by an earlier attempt (the caller replays that response)."""
    if not flags.value(f"games.{game_type}.enabled"):
        raise FeatureDisabled(
            f"{game_type} is switched off for now", details={"flag": f"games.{game_type}.enabled"}
        )
    claim = idempotency.current()
    fx = Effects()
    with autocommit() as conn:
        for _ in range(MAX_ATTEMPTS):
            seed = seed_cache.get(user_id) or seed_cache.load(conn, user_id)
            if seed is None:
                raise NotFound("user not found", details={"user_id": user_id})
            try:
                body = _settle_round(conn, user_id, game_type, seed, draw, session_id, claim, fx)
                break
            except GuardRejected:
                _explain_rejection(conn, user_id, game_type, session_id, claim)
                seed_cache.forget(user_id)  # another process moved the nonce: reload
        else:
            raise Conflict("too many concurrent rounds for this player; retry", code="IN_PROGRESS")
    # after the connection went back to the pool: a slow or hung Redis must not hold it
    fx.run()
    return body


def _explain_rejection(
    conn: Connection,
    user_id: int,
    game_type: str,
    session_id: int | None,
    claim: idempotency.Claim | None,
) -> None:
    """The guard refused the round (nothing was written): raise the reason that is the
    caller's business; return when it was only a stale cached nonce."""
    if claim is not None and idempotency.is_completed(conn, claim):
        raise idempotency.AlreadyCompleted(claim.key)
    if session_id is None:
        return
    row = conn.execute(_SESSION_STATE, {"sid": session_id}).first()
    if row is None or row.user_id != user_id:
        raise NotFound("session not found", details={"session_id": session_id})
    if row.game_type != game_type:
        raise Conflict(
            f"session {session_id} is a {row.game_type} session",
            code="SESSION_MISMATCH",
            details={"session_id": session_id, "game_type": row.game_type},
        )
    if row.ended_at is not None:
        raise Conflict(
            "session already ended", code="ALREADY_ENDED", details={"session_id": session_id}
        )


def _guard(
    user_id: int,
    game_type: str,
    seed: seed_cache.SeedState,
    bet: int,
    session_id: int | None,
    claim: idempotency.Claim | None,
) -> Attachment:
    sql, params = (
        _SEED_GUARD,
        {
            "g_uid": user_id,
            "g_nonce": seed.nonce,
            "g_hash": seed.server_seed_hash,
            "g_bet": bet,
        },
    )
    if session_id is not None:
        sql += _SESSION_OPEN
        params.update(g_sid=session_id, g_game=game_type)
    if claim is not None:
        cond, more = idempotency.store_guard(claim)
        sql += f" AND {cond}"
        params.update(more)
    return Attachment(name="guard", sql=sql + " RETURNING nonce", params=params)


_LEVEL_FIELDS = {
    "level": "upd.level",
    "previous_level": "upd.old_level",
    "experience_points": "upd.experience_points",
}
_RESPONSE_FIELDS = {
    "gold_balance": "upd.gold_balance",
    "experience_points": "upd.experience_points",
    "level": "upd.level",
    "level_up": "upd.level > upd.old_level",
}


def _settle_round(
    conn: Connection,
    user_id: int,
    game_type: str,
    seed: seed_cache.SeedState,
    draw: Callable[[Iterator[float], int], RoundResult],
    session_id: int | None,
    claim: idempotency.Claim | None,
    fx: Effects,
) -> dict[str, Any]:
    """Draw, settle in one statement, and queue the round's effects on ``fx``. The round
    records the version of the games' config it was played with; the first round of a
    version in this process also stores that config document (same statement)."""
    published = config_document.current()
    result = draw(fairness.floats(seed.server_seed, seed.client_seed, seed.nonce), seed.pity)
    pity_after = int(getattr(result, "pity", seed.pity))
    detail = result.to_dict()
    round_id = round_ids.next_id(conn)
    payload = {
        "round_id": round_id,
        "game_type": result.game_type,
        "bet": result.bet,
        "payout": result.payout,
        "gold_delta": result.gold_delta,
        "outcome": result.outcome,
        "session_id": session_id,
    }
    round_event = events.make_envelope(
        events.GAME_ROUND, user_id, payload, dedupe_key=f"round:{round_id}"
    )
    level_event = events.make_envelope(
        events.USER_LEVEL_UP,
        user_id,
        {"source": "game.round", "round_id": round_id},
        dedupe_key=f"level:round:{round_id}",
    )
    response: dict[str, Any] = {
        "round_id": round_id,
        **detail,
        "session_id": session_id,
        "fairness": {
            "server_seed_hash": seed.server_seed_hash,
            "client_seed": seed.client_seed,
            "nonce": seed.nonce,
        },
    }
    attachments = [
        *_round_attachments(
            user_id, round_id, seed, result, session_id, pity_after, detail, published.version
        ),
        writer.attachment(round_event, "ob", from_upd=BALANCE_FIELDS),
        writer.attachment(
            level_event, "lu", when="upd.level > upd.old_level", from_upd=_LEVEL_FIELDS
        ),
    ]
    registration = config_document.registration(published)
    if registration is not None:
        attachments.append(registration)
    if claim is not None:
        attachments.append(idempotency.store_attachment(claim, response, _RESPONSE_FIELDS))
    settled = settle(
        conn,
        user_id=user_id,
        entries=[
            Entry(-result.bet, "game_bet", f"round:{round_id}:bet", round_id, result.game_type),
            Entry(result.payout, "game_win", f"round:{round_id}:win", round_id, result.game_type),
        ],
        xp=flags.value("games.xp_per_round"),
        guard=_guard(user_id, game_type, seed, result.bet, session_id, claim),
        attachments=tuple(attachments),
    )
    if claim is not None:
        claim.completed = True
    if registration is not None:
        config_document.registered(published.version)
    seed_cache.put(user_id, replace(seed, nonce=seed.nonce + 1, pity=pity_after))
    level_up = settled.level > settled.old_level
    round_event["payload"].update(settled.state())
    fx.publish(round_event)
    if level_up:
        level_event["payload"].update(
            level=settled.level,
            previous_level=settled.old_level,
            experience_points=settled.experience_points,
        )
        fx.publish(level_event)
    fx.touch(user_id)
    return {
        **response,
        "gold_balance": settled.balance,
        "experience_points": settled.experience_points,
        "level": settled.level,
        "level_up": level_up,
    }
