"""Versioned ClickHouse schema migrations: ``python -m ccweb.analytics.migrate``.

Files ``ccweb/analytics/migrations/NNNN_name.sql`` are applied in version order; each
applied version is recorded in the target database's ``schema_migrations`` table
(version, name, checksum of the file, applied_at), so a second run applies nothing.
The database itself is created when missing (``CREATE DATABASE IF NOT EXISTS``), which
lets tests and fresh installs point ``CLICKHOUSE_URL`` at a database that does not exist
yet.

ClickHouse DDL is not transactional: a run that dies between two statements of a file
leaves the file unrecorded with part of it applied. Every statement therefore says
``IF NOT EXISTS``, and the next run applies the whole file again, completing it. Two
runs at once are equally harmless (same statements, and ``schema_migrations`` is a
ReplacingMergeTree keyed by version, so a version recorded twice is one row).

A recorded version whose file changed since is refused (``MigrationError``): schema
changes go into a new version, never into an applied file, or servers migrated before
and after the edit would differ silently.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_driver import Client

from ccweb.analytics.clickhouse import database_of, new_client
from ccweb.config import get_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DB_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY version
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file's statements: ``--`` comment lines dropped, split at a ``;`` that
        ends a line (the files never put ``;`` inside a literal at a line end)."""
        lines = [ln for ln in self.sql.splitlines() if not ln.lstrip().startswith("--")]
        out, current = [], []
        for ln in lines:
            current.append(ln)
            if ln.rstrip().endswith(";"):
                out.append("\n".join(current).rstrip().rstrip(";").strip())
                current = []
        tail = "\n".join(current).strip()
        if tail:
            out.append(tail)
        return [s for s in out if s]


def load(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _FILE_RE.match(path.name)
        if m is None:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def ensure_database(url: str) -> str:
    """Create the URL's database when missing; returns its name."""
    name = database_of(url)
    if not _DB_RE.match(name):
        raise MigrationError(f"unsupported database name {name!r}")
    admin = new_client(url, database="default")
    try:
        admin.execute(f"CREATE DATABASE IF NOT EXISTS {name}")
    finally:
        admin.disconnect()
    return name


def applied(client: Client) -> dict[int, str]:
    """Recorded versions → checksum."""
    client.execute(_CREATE_TABLE)
    rows = client.execute("SELECT version, checksum FROM schema_migrations FINAL")
    return {int(v): str(c) for v, c in rows}


def migrate(url: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations in version order; returns the ones applied now."""
    url = url if url is not None else get_settings().clickhouse_url
    if not url:
        raise MigrationError("CLICKHOUSE_URL is empty: ClickHouse is disabled")
    ensure_database(url)
    migrations = load(directory)
    client = new_client(url)
    try:
        done = applied(client)
        for m in migrations:
            if m.version in done and done[m.version] != m.checksum:
                raise MigrationError(
                    f"migration {m.version:04d}_{m.name} changed after it was applied;"
                    " put schema changes in a new version"
                )
        ran = []
        for m in migrations:
            if m.version in done:
                continue
            for statement in m.statements():
                client.execute(statement)
            client.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES",
                [(m.version, m.name, m.checksum, datetime.now(UTC).replace(microsecond=0))],
            )
            ran.append(m)
        return ran
    finally:
        client.disconnect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="ClickHouse URL (default: CLICKHOUSE_URL)")
    args = parser.parse_args(argv)
    try:
        ran = migrate(args.url)
    except MigrationError as exc:
        print(f"clickhouse migrate: {exc}", file=sys.stderr)
        return 2
    if not ran:
        print("clickhouse migrate: up to date")
    for m in ran:
        print(f"clickhouse migrate: applied {m.version:04d}_{m.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
