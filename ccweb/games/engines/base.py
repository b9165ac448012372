"""What every engine shares: bet checks, the payout and outcome rules, result shapes.

Outcome rule (SPEC §3 lists win/lose/draw without defining them): a round is a **win**
when the payout exceeds the bet, a **draw** when it returns exactly the bet, and a
**lose** otherwise — decided on whole gold, so a slot line paying 0.8× or a crash
cash-out at 1.01× on a 50-gold bet (floor(50.5) = 50) is not a win.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar, Literal, cast

from ccweb.games.errors import GameInputError

Outcome = Literal["win", "lose", "draw"]


def outcome_of(bet: int, payout: int) -> Outcome:
    if payout > bet:
        return "win"
    return "draw" if payout == bet else "lose"


def check_bet(bet: object, max_bet: int) -> int:
    """A bet is an integer 1 ≤ bet ≤ max_bet (``True`` and ``10.0`` are not integers)."""
    if isinstance(bet, bool) or not isinstance(bet, int):
        raise GameInputError("bet", "must be an integer amount of gold")
    if not 1 <= bet <= max_bet:
        raise GameInputError("bet", f"must be between 1 and {max_bet}")
    return bet


def pay(bet: int, multiplier_cents: int) -> int:
    """floor(bet × multiplier) in exact integer arithmetic (multiplier in hundredths)."""
    return bet * multiplier_cents // 100


_LEAVES = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """Like ``dataclasses.asdict`` (nested results → dicts, tuples kept as tuples) without
    its deep copies: results are immutable, so sharing leaf values and all-leaf tuples is
    safe — and this runs on every round."""
    t = type(value)
    names = _FIELDS.get(t)
    if names is None:
        if t is tuple:
            if all(type(v) in _LEAVES for v in value):
                return value
            return tuple(_plain(v) for v in value)
        if t in _LEAVES or not is_dataclass(value) or isinstance(value, type):
            return value
        names = _FIELDS[t] = tuple(f.name for f in fields(value))
    return {n: _plain(getattr(value, n)) for n in names}


@dataclass(frozen=True)
class RoundResult:
    """Common fields of every round; subclasses add the game fields of SPEC §3."""

    game_type: ClassVar[str]
    bet: int
    payout: int
    outcome: Outcome

    @property
    def gold_delta(self) -> int:
        return self.payout - self.bet

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready body fields (the route adds round_id and gold_balance)."""
        plain = cast(dict[str, Any], _plain(self))
        return {"game_type": self.game_type, "gold_delta": self.gold_delta, **plain}


@dataclass(frozen=True)
class RtpStats:
    """Exact figures for one round in units of the stake: ``rtp`` = E[payout/bet],
    ``stddev`` = its standard deviation, ``hit_rate`` = P(payout > 0) and
    ``win_rate`` = P(payout > bet)."""

    rtp: float
    stddev: float
    hit_rate: float
    win_rate: float

    @classmethod
    def from_distribution(cls, outcomes: Iterable[tuple[float, float]]) -> RtpStats:
        """From (payout/bet, probability) pairs covering the whole outcome space."""
        mean = second = hit = win = total = 0.0
        for ratio, prob in outcomes:
            total += prob
            mean += prob * ratio
            second += prob * ratio * ratio
            hit += prob if ratio > 0 else 0.0
            win += prob if ratio > 1 else 0.0
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"probabilities sum to {total}, not 1")
        return cls(mean, math.sqrt(max(second - mean * mean, 0.0)), hit, win)

    def rounds_for(self, rel_tolerance: float, z: float = 4.5) -> int:
        """Rounds needed so ``rel_tolerance`` of the RTP is ``z`` standard errors wide."""
        return math.ceil((z * self.stddev / (rel_tolerance * self.rtp)) ** 2)
