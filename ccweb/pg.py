"""Server-side prepared statements for the hot money paths (psycopg2 has none).

PostgreSQL spends about 1 ms *planning* a settle statement (several data-modifying
CTEs) and 0.5 ms the seed upsert — as much as executing them. ``execute()`` prepares each
distinct statement once per pooled connection (``PREPARE``; the set of prepared names
lives in the pool's per-connection ``info``, so it follows reconnects) and then runs
``EXECUTE name(...)``, which skips parsing and, after a few runs, planning.

Statements are written with ``:name`` parameters like SQLAlchemy ``text()``. Parameter
types come from ``types`` or are inferred from the values of the first call with that SQL
text (int → bigint, str → text, dict/list → jsonb, date → date, …) and are then fixed for
that text (re-inferring ~50 parameters on every round cost more than the rest of the
call): a parameter that may be ``None`` or change type must be declared.
Prepared statements are per server session: this needs session pooling (not PgBouncer
transaction pooling).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg2
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ccweb.metrics import SQL_SECONDS

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class _Statement:
    name: str
    order: tuple[str, ...]
    prepare_sql: str
    execute_sql: str
    jsonb: frozenset[str]
    verb: str
    timer: Any  # the SQL_SECONDS child for ``verb``


_STATEMENTS: dict[str, _Statement] = {}


def _infer(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict | list):
        return "jsonb"
    if isinstance(value, datetime):
        return "timestamptz"
    if isinstance(value, date):
        return "date"
    raise TypeError(f"declare the SQL type of parameter {name!r} (value {value!r})")


def _statement(sql: str, params: dict[str, Any], types: dict[str, str]) -> _Statement:
    st = _STATEMENTS.get(sql)
    if st is not None:
        return st
    order = tuple(dict.fromkeys(_PARAM.findall(sql)))
    pg_types = tuple(types.get(n) or _infer(n, params[n]) for n in order)
    index = {n: i + 1 for i, n in enumerate(order)}
    positional = _PARAM.sub(lambda m: f"${index[m.group(1)]}", sql)
    name = "cc_" + hashlib.sha1(repr((sql, pg_types)).encode()).hexdigest()[:24]
    verb = sql.lstrip().split(None, 1)[0].upper()
    st = _Statement(
        name=name,
        order=order,
        prepare_sql=f"PREPARE {name} ({', '.join(pg_types)}) AS {positional}",
        execute_sql=f"EXECUTE {name} ({', '.join(['%s'] * len(order))})",
        jsonb=frozenset(n for n, t in zip(order, pg_types, strict=True) if t == "jsonb"),
        verb=verb,
        timer=SQL_SECONDS.labels(verb=verb),
    )
    if len(_STATEMENTS) < 1024:
        _STATEMENTS[sql] = st
    return st


def _value(st: _Statement, name: str, value: Any) -> Any:
    if name in st.jsonb and value is not None and not isinstance(value, str):
        return json.dumps(value, separators=(",", ":"), default=str)
    return value


def execute(
    session: Session | Connection,
    sql: str,
    params: dict[str, Any],
    types: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run ``sql`` as a prepared statement on the session's (or connection's) connection,
    inside its transaction if it has one; rows as dicts.
    Errors are raised as SQLAlchemy ``DBAPIError`` subclasses (IntegrityError, …), as
    from ``session.execute``, so callers and the retry logic treat them the same way."""
    st = _statement(sql, params, types or {})
    conn = session.connection() if isinstance(session, Session) else session
    fairy = conn.connection
    prepared: set[str] = fairy.info.setdefault("cc_prepared", set())
    jsonb = st.jsonb
    values = [_value(st, n, params[n]) if n in jsonb else params[n] for n in st.order]
    cursor = fairy.cursor()
    started = time.perf_counter()
    try:
        if st.name not in prepared:
            cursor.execute(st.prepare_sql)
            prepared.add(st.name)
        cursor.execute(st.execute_sql, values)
        if cursor.description is None:
            return []
        cols = [d[0] for d in cursor.description]
        return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]
    except psycopg2.Error as exc:
        raise DBAPIError.instance(st.execute_sql, values, exc, psycopg2.Error) from exc
    finally:
        cursor.close()
        st.timer.observe(time.perf_counter() - started)
