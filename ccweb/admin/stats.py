"""Admin stats (``GET /api/admin/stats``, SPEC §3): players, DAU, purchases and their
success rate, gold in circulation checked against the ledger, the idempotent-replay
ratio, and how far behind the outbox relay and every stream consumer group are.

The document (counts are integers; ``success_rate``/``replay_ratio`` are percentages
with two decimals, null when there is nothing to divide by; "today" is the application
clock's UTC day; a part that ran over its time budget is null and named in
``incomplete``)::

    generated_at   ISO time the numbers were computed (application clock)
    cached         served from the shared cache (true) or computed for this request
    age_s          seconds since generated_at (application clock)
    compute_ms     how long the computation took
    incomplete     parts that ran over their budget (BUDGET_MS each), e.g. ["dau"]
    players        total: accounts that are not admins; active_today (DAU): players with a
                   row in user_daily_activity for today — written by the worker's
                   ``activity`` group, so it trails play by that group's lag; new_today
    purchases      total / today: rows of shop_purchases (successful purchases only);
                   failed_today: today's ``shop.purchase`` outbox rows with ``status:
                   failed`` — the business refusals (gold, stock, limit, tier) that
                   analytics counts too; a rate-limited or invalid request is no attempt;
                   failed_complete: false when CC_OUTBOX_RETENTION_H is shorter than the
                   day so far (older rows are pruned); attempts_today = today +
                   failed_today; success_rate = today / attempts_today;
                   settlement_pending / settlement_voided: conversions awaiting their
                   provider's callback / reversed
    gold           in_circulation: SUM(users.gold_balance); ledger_sum: SUM of
                   wallet_ledger.delta_gold (see "The ledger sum"); consistent: equal;
                   difference = in_circulation - ledger_sum. Both from ONE snapshot, so
                   concurrent play cannot make them disagree; ledger_catching_up: the
                   ledger is being folded after a reset (ledger_sum null meanwhile)
    idempotency    since the web server started, all its processes (see below):
                   replays — requests answered with a stored response; keyed_requests —
                   replays + requests executed under their key; replay_ratio = replays /
                   keyed_requests; purchase_replays / purchase_keyed: the shop's share
    outbox         pending: rows after the relay's cursor (not yet confirmed by the relay;
                   the fast path has usually published them already); oldest_pending_age_s:
                   age of the next row the relay will take, by PostgreSQL's clock
    streams        groups: {<group>: {lag, pending}} summed over the partition streams and
                   the group's retry stream — lag: entries not yet delivered (XINFO GROUPS;
                   null when Redis cannot tell, e.g. an entry in range was deleted),
                   pending: delivered, not acknowledged; dead_letters: XLEN <prefix>:dlq

**Replay counts** are Prometheus counters (a replay writes nothing to the database), read
the way ``/metrics`` reads them: with ``PROMETHEUS_MULTIPROC_DIR`` set (the pre-fork
server) the multiprocess collector sums every web process's files, else this process's
default registry. ``X-Idempotency-Key`` requests are counted in
``cc_idempotency_requests_total{result=executed|replayed}`` by
:func:`ccweb.idempotency.service.idempotent` itself; the shop's keys travel in
the body and ``cc_shop_purchase_attempt_total{state}`` counts them (replay; new + failed).

**The ledger sum** is kept bounded by folding (:mod:`ccweb.admin.ledger_fold`): rows
summed once are kept as a total in Redis and each computation reads only the rows
written since the previous one.

**Caching** (:func:`get`): the document lives in Redis at ``<prefix>:admin:stats`` for 5 s
(a Redis TTL: one expiry for every web process), so a dashboard polled from many tabs
costs one computation per 5 s. One process computes at a time (a token lock,
``…:lock``); the others serve the previous document (``…:last``, kept 5 minutes) or, when
there is none, wait up to WAIT_S for it. ``fresh`` computes now (and refreshes the cache).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from redis.exceptions import LockError
from sqlalchemy import text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import OperationalError

from ccweb import clock, db
from ccweb.admin.ledger_fold import LEDGER_LAST_ID, SNAPSHOT, LedgerFold, OverBudget
from ccweb.config import Settings
from ccweb.events import SHOP_PURCHASE, all_stream_keys, dlq_key, iso, retry_key
from ccweb.outbox.relay import BACKLOG, CURSOR, CURSOR_POSITION
from ccweb.redis_client import get_redis, key

CACHE_TTL_MS = 5_000  # SPEC §3: cached 5 s
LAST_TTL_S = 300  # the previous document, served while another process computes
LOCK_TTL_S = 15  # longer than a computation can last (the parts' budgets)
WAIT_S = 3.0  # without a previous document, how long to wait for the computing process
POLL_S = 0.05
BUDGET_MS = 1_000  # per statement (statement_timeout inside the stats transaction; never
# above CC_DB_STATEMENT_TIMEOUT_MS, which the web processes also enforce on the client side)
QUERY_CANCELED = "57014"

# -- database ------------------------------------------------------------------------

_USERS = text(
    """
    SELECT count(*) FILTER (WHERE NOT is_admin) AS players,
           count(*) FILTER (WHERE NOT is_admin AND created_at >= :day_start) AS new_today,
           coalesce(sum(gold_balance), 0) AS gold
    FROM users
    """
)
_DAU = text("SELECT count(*) AS n FROM user_daily_activity WHERE day = :day")
_PURCHASES = text(
    """
    SELECT count(*) AS total,
           count(*) FILTER (WHERE created_at >= :day_start) AS today,
           count(*) FILTER (WHERE settlement_status = 'pending') AS pending,
           count(*) FILTER (WHERE settlement_status = 'voided') AS voided
    FROM shop_purchases
    """
)
_FAILED = text(
    """
    SELECT count(*) AS n FROM outbox
    WHERE event_type = :type AND created_at >= :day_start
      AND envelope -> 'payload' ->> 'status' = 'failed'
    """
)


def _part(conn: Connection, stmt: Any, params: dict[str, Any]) -> Row[Any] | None:
    """One statement under a savepoint: None if it ran over the budget (the transaction
    goes on)."""
    try:
        with conn.begin_nested():
            return conn.execute(stmt, params).one()
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != QUERY_CANCELED:
            raise
        return None


def _int(row: Row[Any] | None, name: str) -> int | None:
    return None if row is None else int(getattr(row, name))


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def database_sections(
    conn: Connection, now: datetime, settings: Settings, fold: LedgerFold, last_id: int
) -> tuple[dict[str, Any], LedgerFold]:
    """players, purchases, gold and outbox from one REPEATABLE READ snapshot (``conn``
    fresh: the snapshot is set here), and the ledger fold after it."""
    conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    configured = settings.db_statement_timeout_ms  # the web process's own bound stays
    budget = min(BUDGET_MS, configured) if configured > 0 else BUDGET_MS
    conn.execute(text(f"SET LOCAL statement_timeout = {int(budget)}"))
    snap = conn.execute(SNAPSHOT).one()
    day_start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    at = {"day_start": day_start}
    incomplete: list[str] = []

    def part(name: str, stmt: Any, params: dict[str, Any]) -> Row[Any] | None:
        row = _part(conn, stmt, params)
        if row is None:
            incomplete.append(name)
        return row

    users = part("users", _USERS, at)
    dau = part("dau", _DAU, {"day": day_start.date()})
    bought = part("purchases", _PURCHASES, at)
    failed = part("failed_purchases", _FAILED, {**at, "type": SHOP_PURCHASE})
    cursor = conn.execute(CURSOR_POSITION, {"name": CURSOR}).one()
    outbox = part("outbox", BACKLOG, {"txid": cursor.txid, "last_id": cursor.last_id})
    try:
        ledger_sum, fold = fold.advance(
            lambda stmt, params: _part(conn, stmt, params), last_id, snap.xmin, snap.xmax
        )
    except OverBudget:
        ledger_sum = None
        incomplete.append("ledger")
    gold, today, n_failed = _int(users, "gold"), _int(bought, "today"), _int(failed, "n")
    attempts = None if today is None or n_failed is None else today + n_failed
    checked = gold is not None and ledger_sum is not None
    oldest = None if outbox is None else outbox.oldest_s
    doc = {
        "incomplete": incomplete,
        "players": {
            "total": _int(users, "players"),
            "active_today": _int(dau, "n"),
            "new_today": _int(users, "new_today"),
        },
        "purchases": {
            "total": _int(bought, "total"),
            "today": today,
            "failed_today": n_failed,
            "failed_complete": now - timedelta(hours=settings.outbox_retention_h) <= day_start,
            "attempts_today": attempts,
            "success_rate": None if attempts is None else _pct(today or 0, attempts),
            "settlement_pending": _int(bought, "pending"),
            "settlement_voided": _int(bought, "voided"),
        },
        "gold": {
            "in_circulation": gold,
            "ledger_sum": ledger_sum,
            "consistent": gold == ledger_sum if checked else None,
            "difference": (gold or 0) - (ledger_sum or 0) if checked else None,
            "ledger_catching_up": ledger_sum is None and "ledger" not in incomplete,
        },
        "outbox": {
            "pending": _int(outbox, "pending"),
            "oldest_pending_age_s": None if oldest is None else round(float(oldest), 3),
        },
    }
    return doc, fold


# -- Redis streams and metrics ----------------------------------------------------------


def stream_groups(client: redis.Redis, settings: Settings) -> dict[str, dict[str, int | None]]:
    """Every consumer group's lag and pending entries, summed over the partition streams
    and the group's own retry stream (the streams its consumers read, worker.runner).
    Two pipelined round trips: the partitions name the groups, then their retry
    streams."""
    groups: dict[str, dict[str, int | None]] = {}

    def add(streams: list[str]) -> None:
        pipe = client.pipeline(transaction=False)
        for stream in streams:
            pipe.xinfo_groups(stream)
        for infos in pipe.execute(raise_on_error=False):
            if not isinstance(infos, list):  # an error: no such stream (yet)
                continue
            for info in infos:
                row = groups.setdefault(str(info["name"]), {"lag": 0, "pending": 0})
                lag, so_far = info.get("lag"), row["lag"]
                row["lag"] = None if lag is None or so_far is None else so_far + int(lag)
                row["pending"] = int(row["pending"] or 0) + int(info.get("pending") or 0)

    add(all_stream_keys(settings))
    add([retry_key(settings, group) for group in list(groups)])
    return dict(sorted(groups.items()))


def _registry() -> CollectorRegistry:
    """What ``/metrics`` reads (prometheus-flask-exporter's rule): every process's files
    under the pre-fork server, else this process's default registry."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def idempotency_section() -> dict[str, Any]:
    keyed: dict[str, float] = {}
    shop: dict[str, float] = {}
    for metric in _registry().collect():
        for s in metric.samples:
            if s.name == "cc_idempotency_requests_total":
                keyed[s.labels["result"]] = keyed.get(s.labels["result"], 0.0) + s.value
            elif s.name == "cc_shop_purchase_attempt_total":
                shop[s.labels["state"]] = shop.get(s.labels["state"], 0.0) + s.value
    purchase_replays = int(shop.get("replay", 0))
    purchase_keyed = purchase_replays + int(shop.get("new", 0) + shop.get("failed", 0))
    replays = int(keyed.get("replayed", 0)) + purchase_replays
    total = int(keyed.get("replayed", 0) + keyed.get("executed", 0)) + purchase_keyed
    return {
        "replay_ratio": _pct(replays, total),
        "replays": replays,
        "keyed_requests": total,
        "purchase_replays": purchase_replays,
        "purchase_keyed": purchase_keyed,
    }


def compute(settings: Settings) -> dict[str, Any]:
    """The whole document (``cached`` false); moves the ledger fold on."""
    started = time.perf_counter()
    now = clock.utcnow()
    client = get_redis(settings)
    fold = LedgerFold.load(client, settings)
    with db.autocommit() as conn:  # before the snapshot (see LedgerFold)
        last_id = int(conn.execute(LEDGER_LAST_ID).scalar_one())
    with db.engine().connect() as conn:
        doc, after = database_sections(conn, now, settings, fold, last_id)
    if after != fold:
        after.save(client, settings)
    doc["idempotency"] = idempotency_section()
    doc["streams"] = {
        "groups": stream_groups(client, settings),
        "dead_letters": int(client.xlen(dlq_key(settings))),
    }
    head = {
        "generated_at": iso(now),
        "cached": False,
        "age_s": 0.0,
        "compute_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return {**head, **doc}


# -- the shared cache -------------------------------------------------------------------


def cache_key(settings: Settings) -> str:
    return key("admin", "stats", settings=settings)


def _served(raw: str | bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(raw)
    generated = datetime.fromisoformat(doc["generated_at"].replace("Z", "+00:00"))
    doc["cached"] = True
    doc["age_s"] = round(max(clock.time() - generated.timestamp(), 0.0), 3)
    return doc


def _computed(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    doc = compute(settings)
    raw = json.dumps(doc)
    pipe = client.pipeline(transaction=False)
    pipe.set(cache_key(settings), raw, px=CACHE_TTL_MS)
    pipe.set(f"{cache_key(settings)}:last", raw, ex=LAST_TTL_S)
    pipe.execute()
    return doc


def get(settings: Settings, fresh: bool = False) -> dict[str, Any]:
    """The document from the 5 s cache, or computed by the one process holding the lock
    (see the module docstring); ``fresh`` computes it now."""
    client = get_redis(settings)
    if fresh:
        return _computed(client, settings)
    deadline = time.monotonic() + WAIT_S
    while True:
        raw = client.get(cache_key(settings))
        if raw is not None:
            return _served(raw)
        lock = client.lock(f"{cache_key(settings)}:lock", timeout=LOCK_TTL_S, blocking=False)
        if lock.acquire():
            try:
                raw = client.get(cache_key(settings))  # stored while we asked for the lock
                return _served(raw) if raw is not None else _computed(client, settings)
            finally:
                with contextlib.suppress(LockError):  # past its TTL: someone else's now
                    lock.release()
        last = client.get(f"{cache_key(settings)}:last")
        if last is not None:
            return _served(last)
        if time.monotonic() >= deadline:
            return _computed(client, settings)  # the computing process is slow or gone
        time.sleep(POLL_S)
