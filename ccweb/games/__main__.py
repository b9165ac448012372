"""``python -m ccweb.games``: print the exact RTP sheet of the default configs.

For operators changing a paytable: shows, per game, the configured target, the exact
RTP (and after flooring at small bets), the per-round σ, hit/win rates and how many
simulated rounds a ±1 % RTP check needs at 4.5 standard errors.
"""

from __future__ import annotations

from ccweb.games.config import DEFAULT_CRASH, DEFAULT_GACHA, DEFAULT_RPS, DEFAULT_SLOT
from ccweb.games.engines import crash, gacha, rps, slot
from ccweb.games.engines.base import RtpStats

Row = tuple[str, float, RtpStats, float, float]


def sheet() -> list[Row]:
    """(game, target, exact stats, exact RTP at bet 10, at bet 1) per game/variant."""
    rows: list[Row] = [
        (
            "slot",
            DEFAULT_SLOT.target_rtp,
            slot.rtp_stats(DEFAULT_SLOT),
            slot.expected_rtp(DEFAULT_SLOT, 10),
            slot.expected_rtp(DEFAULT_SLOT, 1),
        ),
        (  # item values are whole gold: no flooring, any count
            "gacha/pull",
            DEFAULT_GACHA.target_rtp,
            gacha.rtp_stats(DEFAULT_GACHA),
            gacha.expected_rtp(DEFAULT_GACHA),
            gacha.expected_rtp(DEFAULT_GACHA),
        ),
        (
            "rps",
            DEFAULT_RPS.target_rtp,
            rps.rtp_stats(DEFAULT_RPS),
            rps.expected_rtp(DEFAULT_RPS, 10),
            rps.expected_rtp(DEFAULT_RPS, 1),
        ),
    ]
    for target in (1.01, 1.5, 2.0, 3.0, 10.0, 100.0):
        rows.append(
            (
                f"crash@{target:g}",
                DEFAULT_CRASH.target_rtp,
                crash.rtp_stats(DEFAULT_CRASH, target),
                crash.expected_rtp(DEFAULT_CRASH, target, 10),
                crash.expected_rtp(DEFAULT_CRASH, target, 1),
            )
        )
    return rows


def main() -> None:
    print(
        f"{'game':12s} {'target':>7s} {'exact':>9s} {'sigma':>7s} {'hit':>6s} {'win':>6s} "
        f"{'rounds±1%':>10s} {'rtp@bet10':>9s} {'rtp@bet1':>8s}"
    )
    for game, target, s, at10, at1 in sheet():
        print(
            f"{game:12s} {target:7.4f} {s.rtp:9.6f} {s.stddev:7.3f} {s.hit_rate:6.3f} "
            f"{s.win_rate:6.3f} {s.rounds_for(0.01):10d} {at10:9.4f} {at1:8.4f}"
        )


if __name__ == "__main__":
    main()
