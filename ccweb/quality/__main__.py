"""``python -m ccweb.quality check|replay [--json] [--grace S]``.

``check`` runs the data-quality checks once over every player (the scheduled job sweeps
a slice per run) and prints a summary, or the report as JSON; ``replay`` rebuilds
balances from the ledger and progress from ClickHouse (see :mod:`.replay`). Exit code 1
when anything is found, so a cron job or a CI step can alert on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ccweb import db
from ccweb.config import get_settings
from ccweb.quality.checks import DqConfig, run
from ccweb.quality.replay import replay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccweb.quality")
    parser.add_argument("command", choices=["check", "replay"])
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument(
        "--grace", type=float, default=60.0, help="replay: skip rows advanced this recently (s)"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    with db.init_engine(settings).connect() as conn:
        if args.command == "check":
            report = run(conn, DqConfig.from_env(), sweep=None).to_dict()
            summary = {k: v["count"] for k, v in report["checks"].items()}
        else:
            report = replay(conn, settings.clickhouse_url, grace_s=args.grace)
            summary = {
                "balances": report["balances"]["count"],
                "progress": report["progress"].get("count", report["progress"].get("skipped")),
            }
    _print(report if args.json else {"ok": report["ok"], **summary})
    return 0 if report["ok"] else 1


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
