"""Engine, sessions and the unit of work.

Services take a ``Session`` first and never commit; the caller opens one unit of work
per request (or per consumed batch). Whatever must happen only once the data is durable
is registered with :func:`after_commit` and runs after a successful commit; a rollback
drops it. (What those hooks do — publishing, cache bumps, pushes — is
:mod:`ccweb.effects`' business: this layer knows only "call this after commit".)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from ccweb import db_timeouts
from ccweb.config import Settings, get_settings
from ccweb.metrics import instrument_engine

log = logging.getLogger(__name__)
T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None


def init_engine(settings: Settings | None = None) -> Engine:
    """Create the process engine (idempotent per URL). Nothing connects until first use.
    Every wait on PostgreSQL is bounded (:mod:`ccweb.db_timeouts`): connecting, each
    statement, an idle transaction, a free pooled connection (``pool_timeout``, then 503),
    and in a gevent process each round trip even when the server is frozen."""
    global _engine, _factory, _ro_engine
    settings = settings or get_settings()
    if _engine is not None and str(_engine.url.render_as_string(hide_password=False)) == (
        settings.sqlalchemy_url
    ):
        return _engine
    if _engine is not None:
        _engine.dispose()
    if _ro_engine is not None:
        _ro_engine.dispose()
    _ro_engine = None
    _engine = create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args=db_timeouts.connect_args(settings, f"casino-club:{settings.env}"),
    )
    db_timeouts.bound_waits(_engine, settings)
    _factory = sessionmaker(_engine, expire_on_commit=False, autoflush=False)
    return _engine


def engine() -> Engine:
    return _engine if _engine is not None else init_engine()


def session_factory() -> sessionmaker[Session]:
    if _factory is None:
        init_engine()
    assert _factory is not None
    return _factory


def after_commit(session: Session, fn: Callable[[], Any]) -> None:
    """Run ``fn`` once the unit of work owning ``session`` has committed."""
    session.info.setdefault("after_commit", []).append(fn)


def _run_after_commit(session: Session) -> None:
    for fn in session.info.pop("after_commit", []):
        try:
            fn()
        except Exception:  # a post-commit effect must never turn a success into an error
            log.exception("after-commit hook failed")


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, then post-commit hooks."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        session.info.pop("after_commit", None)
        raise
    finally:
        session.close()
    _run_after_commit(session)


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A pooled connection in autocommit mode, for hot reads and single-statement writes.

    psycopg2 opens a transaction with a separate BEGIN round trip and ends it with a
    COMMIT round trip; a single SELECT — or a single data-modifying statement such as a
    game round's settle, which is atomic on its own — needs neither, so it costs one
    round trip instead of three (and skips the ORM session entirely).
    """
    with _autocommit_engine().connect() as conn:
        yield conn


_ro_engine: Engine | None = None


def _autocommit_engine() -> Engine:
    """A second, smaller pool whose connections stay in autocommit: switching a pooled
    connection in and out of autocommit costs two extra calls per checkout."""
    global _ro_engine
    if _ro_engine is None:
        settings = get_settings()
        _ro_engine = create_engine(
            settings.sqlalchemy_url,
            isolation_level="AUTOCOMMIT",
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            pool_recycle=1800,
            connect_args=db_timeouts.connect_args(settings, f"casino-club-ro:{settings.env}"),
        )
        db_timeouts.bound_waits(_ro_engine, settings)
        instrument_engine(_ro_engine)
    return _ro_engine


RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


class RetryTransaction(Exception):
    """Raised inside a transaction to ask :func:`in_transaction` to run it again."""


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryTransaction):
        return True
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "pgcode", None)
        return code in RETRYABLE_SQLSTATES
    return False


def in_transaction(fn: Callable[[Session], T], attempts: int = 5) -> T:
    """Run ``fn(session)`` in a unit of work, retrying serialization failures and
    deadlocks (SQLSTATE class 40) in this one place, as Nakama's ExecuteInTx does."""
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work() as session:
                return fn(session)
        except Exception as exc:
            if attempt == attempts or not _is_retryable(exc):
                raise
            time.sleep(0.002 * attempt)
    raise AssertionError("unreachable")
