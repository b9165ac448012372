"""``python -m ccweb.segments batch`` | ``recompute --user ID [--user ID ...]``.

``batch`` recomputes every player now (what the worker runs nightly, without its
once-a-day lock: the database's writer lock still keeps two runs from interleaving);
``recompute`` the given players on the stored thresholds, as the ``segments`` consumer
group does after a purchase. Each prints one line of JSON (players, labels, seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ccweb import clock, db
from ccweb.segments import jobs, rfm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccweb.segments")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("batch", help="recompute every player now")
    rec = sub.add_parser("recompute", help="recompute the given players now")
    rec.add_argument("--user", type=int, action="append", required=True, help="a player id")
    args = parser.parse_args(argv)
    if args.command == "batch":
        print(json.dumps(jobs.batch().summary()))
        return 0
    started = time.perf_counter()
    now = clock.utcnow()
    result = db.in_transaction(lambda s: rfm.recompute(s, args.user, now))
    out = {
        "players": result.players,
        "changed": {str(u): {"from": a, "to": b} for u, (a, b) in result.changed.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
