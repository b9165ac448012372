"""Operational commands: ``python -m ccweb.manage ensure-db|migrate|seed|setup|reconcile``.

``setup`` = ensure-db + migrate + seed, what ``make run`` does before starting.
``reconcile [--grace S]`` prints the consistency report of :mod:`ccweb.ops.reconcile` as
JSON and exits 1 unless every must-be-zero count is zero.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccweb.manage")
    parser.add_argument("command", choices=["ensure-db", "migrate", "seed", "setup", "reconcile"])
    parser.add_argument(
        "--grace", type=float, default=60.0, help="reconcile: ignore events younger than this (s)"
    )
    args = parser.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
