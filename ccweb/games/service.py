"""Playing a round: the provably-fair draw, the engine, and one money statement.

A round costs two SQL statements in one transaction:

1. an upsert of the player's seed row that takes the next nonce (and locks the row, so
   one player's rounds are serialized), allocates the round id and reads the gacha
   pity counter;
2. :func:`ccweb.wallet.ledger.settle`: bet debit + payout credit + XP/level, with the
   round row, the stats upsert, the session counters and the ``game.round`` outbox row
   attached — all or nothing.

If the balance cannot cover the bet, statement 2 writes nothing and the transaction
(including the nonce) rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ccweb import events
from ccweb.config import get_settings
from ccweb.dashboard.cache import touch
from ccweb.games import fairness
from ccweb.games.engines.base import RoundResult
from ccweb.outbox.writer import attachment, emit
from ccweb.wallet.ledger import Attachment, Entry, settle

_NEXT_ROUND = text(
    """
    INSERT INTO fairness_seeds (user_id, server_seed, server_seed_hash, client_seed, nonce)
    VALUES (:uid, :seed, :hash, :client, 1)
    ON CONFLICT (user_id) DO UPDATE SET nonce = fairness_seeds.nonce + 1
    RETURNING server_seed, server_seed_hash, client_seed, nonce - 1 AS nonce,
              nextval('game_rounds_id_seq') AS round_id,
              (SELECT pity_counter FROM game_stats
                WHERE user_id = :uid AND game_type = 'gacha') AS pity
    """
)

_ROUND_SQL = """INSERT INTO game_rounds (id, user_id, game_type, session_id, bet, payout, outcome,
                                     server_seed_hash, client_seed, nonce, detail)
    SELECT :r_id, :r_uid, :r_game, :r_sid, :r_bet, :r_payout, :r_outcome, :r_hash, :r_client,
           :r_nonce, :r_detail
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
    WHERE id = :g_sid AND user_id = :g_uid AND ended_at IS NULL
      AND EXISTS (SELECT 1 FROM upd)"""


def _round_attachments(
    user_id: int,
    round_id: int,
    seed: Any,
    result: RoundResult,
    session_id: int | None,
    pity_after: int,
) -> list[Attachment]:
    detail = result.to_dict()
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
            },
            types=(bindparam("r_detail", type_=JSONB),),
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
                params={
                    "g_bet": result.bet,
                    "g_payout": result.payout,
                    "g_sid": session_id,
                    "g_uid": user_id,
                },
            )
        )
    return atts


def play(
    session: Session,
    user_id: int,
    draw: Callable[[Iterator[float], int], RoundResult],
    *,
    session_id: int | None = None,
) -> dict[str, Any]:
    """Play one round. ``draw(rng, pity)`` runs the engine with validated input and
    returns its result; it is called once the nonce is reserved."""
    fresh = fairness.SeedPair.fresh()
    seed = session.execute(
        _NEXT_ROUND,
        {
            "uid": user_id,
            "seed": fresh.server_seed,
            "hash": fresh.server_seed_hash,
            "client": fresh.client_seed,
        },
    ).one()
    pity_before = int(seed.pity or 0)
    result = draw(fairness.floats(seed.server_seed, seed.client_seed, seed.nonce), pity_before)
    pity_after = int(getattr(result, "pity", pity_before))
    round_id = int(seed.round_id)
    payload = {
        "round_id": round_id,
        "game_type": result.game_type,
        "bet": result.bet,
        "payout": result.payout,
        "gold_delta": result.gold_delta,
        "outcome": result.outcome,
        "session_id": session_id,
    }
    envelope = events.make_envelope(
        events.GAME_ROUND, user_id, payload, dedupe_key=f"round:{round_id}"
    )
    settled = settle(
        session,
        user_id=user_id,
        entries=[
            Entry(-result.bet, "game_bet", f"round:{round_id}:bet", round_id, result.game_type),
            Entry(result.payout, "game_win", f"round:{round_id}:win", round_id, result.game_type),
        ],
        xp=get_settings().xp_per_round,
        attachments=(
            *_round_attachments(user_id, round_id, seed, result, session_id, pity_after),
            attachment(session, envelope),
        ),
    )
    level_up = settled.level > settled.old_level
    if level_up:
        emit(
            session,
            events.USER_LEVEL_UP,
            user_id,
            {
                "level": settled.level,
                "previous_level": settled.old_level,
                "experience_points": settled.experience_points,
                "source": "game.round",
            },
        )
    touch(session, user_id)
    return {
        "round_id": round_id,
        **result.to_dict(),
        "gold_balance": settled.balance,
        "experience_points": settled.experience_points,
        "level": settled.level,
        "level_up": level_up,
        "session_id": session_id,
        "fairness": {
            "server_seed_hash": seed.server_seed_hash,
            "client_seed": seed.client_seed,
            "nonce": int(seed.nonce),
        },
    }
