"""Operational commands: ``python -m ccweb.manage ensure-db|migrate|seed|setup|reconcile|
rotate-key|settle-pending``.

``setup`` = ensure-db + migrate + seed, what ``make run`` does before starting.
``reconcile [--grace S]`` prints the consistency report of :mod:`ccweb.ops.reconcile` as
JSON and exits 1 unless every must-be-zero count is zero.
``rotate-key --purpose receipt|settlement`` makes a new signing key version
(:mod:`ccweb.shop.keyring`; the old one keeps verifying until the next rotation) and
prints it.
``settle-pending [--older-than S] [--void-every N] [--url URL]`` is the payment provider
stub (:mod:`ccweb.shop.settlement_stub`): it POSTs a signed callback for every pending
conversion to the server's webhook, settling them (every N-th voided); prints a summary
and exits 1 if any callback was not answered 200.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ccweb.config import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config() -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return cfg


def ensure_database(settings: Settings) -> bool:
    """Create the database named in DATABASE_URL if it does not exist. True if created."""
    url = make_url(settings.sqlalchemy_url)
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        admin.dispose()


def migrate() -> None:
    command.upgrade(alembic_config(), "head")


def seed() -> None:
    from ccweb import seed as seed_mod
    from ccweb.db import in_transaction

    in_transaction(seed_mod.run)


def rotate_key(purpose: str) -> int:
    from ccweb.db import in_transaction
    from ccweb.shop import keyring

    key = in_transaction(lambda s: keyring.rotate(s, purpose))
    print(json.dumps({"purpose": purpose, "version": key.version}))
    return 0


def settle_pending(url: str, older_than_s: float, void_every: int) -> int:
    from ccweb.shop import settlement_stub

    summary = settlement_stub.settle_pending(
        settlement_stub.http_sender(url), older_than_s=older_than_s, void_every=void_every
    )
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] == summary["sent"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccweb.manage")
    parser.add_argument(
        "command",
        choices=[
            "ensure-db",
            "migrate",
            "seed",
            "setup",
            "reconcile",
            "rotate-key",
            "settle-pending",
        ],
    )
    parser.add_argument(
        "--grace", type=float, default=60.0, help="reconcile: ignore events younger than this (s)"
    )
    parser.add_argument(
        "--purpose", choices=["receipt", "settlement"], help="rotate-key: which key ring"
    )
    parser.add_argument(
        "--older-than",
        type=float,
        default=0.0,
        help="settle-pending: only conversions pending at least this long (s)",
    )
    parser.add_argument(
        "--void-every",
        type=int,
        default=0,
        help="settle-pending: void every N-th conversion instead of settling it (0 = none)",
    )
    parser.add_argument(
        "--url", default="http://127.0.0.1:8000", help="settle-pending: the server's base URL"
    )
    args = parser.parse_args(argv)
    if args.command == "rotate-key":
        if args.purpose is None:
            parser.error("rotate-key needs --purpose receipt|settlement")
        return rotate_key(args.purpose)
    if args.command == "settle-pending":
        if args.void_every < 0 or args.older_than < 0:
            parser.error("--void-every and --older-than must not be negative")
        return settle_pending(args.url, args.older_than, args.void_every)
    if args.command == "reconcile":
        from ccweb import db
        from ccweb.ops.reconcile import reconcile

        with db.engine().connect() as conn:
            report = reconcile(conn, grace_s=args.grace)
        print(json.dumps(report, indent=2))
        return 0 if report["ok"] else 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if args.command in ("ensure-db", "setup") and ensure_database(settings):
        print(f"created database {make_url(settings.sqlalchemy_url).database}")
    if args.command in ("migrate", "setup"):
        migrate()
        print("migrations at head")
    if args.command in ("seed", "setup"):
        seed()
        print("seed applied")
    if args.command == "setup":
        setup_sinks(settings)
    return 0


def setup_sinks(settings: Settings) -> None:
    """The configured sinks' schema: ClickHouse migrations and Kafka topics (both
    idempotent; Tansu keeps topics in memory, so every start provisions again)."""
    if settings.clickhouse_url:
        from ccweb.analytics.migrate import migrate as ch_migrate

        applied = ch_migrate(settings.clickhouse_url)
        print(f"clickhouse migrations applied: {len(applied)}")
    if settings.kafka_bootstrap_servers:
        from ccweb.kafka import provision

        provision.main([])
        print("kafka topics provisioned")


if __name__ == "__main__":
    sys.exit(main())
