"""The unified purchase (SPEC §3): one path for items, packages and conversions.

Three layers keep a purchase from happening twice (seed 003 §16):

1. a short Redis lock per (player, key) — a second request with the key while the first
   still runs gets 409 ``IN_PROGRESS`` (or the stored result, if the first has just
   committed);
2. ``UNIQUE (user_id, idempotency_key)`` on ``shop_purchases`` — even with the lock lost
   (expired, Redis restarted) a second purchase with the key cannot commit; the loser
   replays the winner's result;
3. the stored response — a repeated key replays the original body
   (``Idempotent-Replay: true``); the same key for another product or quantity is 409
   ``DUPLICATE``.

The purchase itself is ONE statement (:func:`ccweb.wallet.ledger.settle`):

* a guard that finds the product on sale at the ``version`` whose price was read, checks
  the player's tier and ``limit_once``, and for a limited product decrements the stock
  (``stock_remaining >= :q``: never oversold, never negative — concurrent buyers queue on
  the product row and each re-checks the stock it finds);
* the price debit and the gold credit (ledger rows ``purchase:<tx>:debit`` / ``:grant``);
* attachments: the purchase row with its signed receipt and the response to replay,
  the items into the inventory, the ``shop.purchase`` outbox row.

For a limited product it runs inside a transaction: the guard has already taken a unit
of stock when the balance check fails, and only a rollback gives it back. Any other
purchase's guard only reads, so its statement runs alone on an autocommit connection,
atomic by itself, as a game round does.

Business refusals (gold, stock, limit, tier) are also written as ``shop.purchase``
events with ``status: "failed"`` (analytics: purchase success rate; realtime: the
player's other screens), and every attempt is counted in metrics.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import LockError, RedisError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ccweb import clock, db, effects, events, pg, ratelimit
from ccweb.config import get_settings
from ccweb.cte import Attachment
from ccweb.effects import Effects
from ccweb.errors import (
    Conflict,
    DomainError,
    Duplicate,
    FeatureDisabled,
    Forbidden,
    InProgress,
    InsufficientGold,
    NotFound,
    TooManyRequests,
    ValidationFailed,
)
from ccweb.events import iso
from ccweb.flags import service as flags
from ccweb.metrics import SHOP_PURCHASE_ATTEMPTS, SHOP_PURCHASE_LATENCY, SHOP_STOCK_LEVEL
from ccweb.outbox import writer
from ccweb.player_versions import shop_stock_key
from ccweb.redis_client import get_redis, key
from ccweb.shop import receipts
from ccweb.users import inventory
from ccweb.users.models import TIERS
from ccweb.wallet.ledger import BALANCE_FIELDS, Entry, GuardRejected, settle

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # the product changed between the read and the statement: read again
LIMIT_ONCE_INDEX = "uq_shop_purchases_once"
KEY_CONSTRAINT = "uq_shop_purchases_user_key"

# Everything the checks need in one round trip: the product, the player, a purchase
# already made with this key, whether a limit_once product is owned, and the new tx id.
_READ = """
    SELECT nextval('shop_purchases_id_seq') AS tx_id,
           p.id, p.sku, p.name, p.category, p.price_gold, p.points_price, p.gold_amount,
           p.items, p.limit_once, p.stock_remaining, p.starts_at, p.ends_at, p.tier_required,
           p.is_active, p.version,
           u.tier AS user_tier, u.gold_balance,
           x.product_id AS x_product_id, x.quantity AS x_quantity, x.response AS x_response,
           EXISTS (SELECT 1 FROM shop_purchases o WHERE o.user_id = :uid
                   AND o.product_id = :pid AND o.limit_once) AS owned_once
    FROM (SELECT 1) AS one
    LEFT JOIN shop_products p ON p.id = :pid
    LEFT JOIN users u ON u.id = :uid
    LEFT JOIN shop_purchases x ON x.user_id = :uid AND x.idempotency_key = :key
"""

_ON_SALE = """id = :g_pid AND version = :g_ver AND is_active
      AND (starts_at IS NULL OR starts_at <= :g_now) AND (ends_at IS NULL OR ends_at > :g_now)
      AND EXISTS (SELECT 1 FROM users WHERE id = :g_uid
                  AND array_position(CAST(:g_tiers AS text[]), tier)
                      >= array_position(CAST(:g_tiers AS text[]), tier_required))"""
_NOT_OWNED = """ AND NOT EXISTS (SELECT 1 FROM shop_purchases
                     WHERE user_id = :g_uid AND product_id = :g_pid AND limit_once)"""
_TAKE_STOCK = "UPDATE shop_products SET stock_remaining = stock_remaining - :g_q WHERE "
_UNLIMITED = "SELECT stock_remaining FROM shop_products WHERE stock_remaining IS NULL AND "

_PURCHASE_ROW = """INSERT INTO shop_purchases (id, user_id, product_id, idempotency_key, sku,
        category, quantity, price_gold, points_price, gold_amount, gold_delta, items,
        limit_once, status, settlement_status, receipt, integrity_hash, signature,
        signature_version, response, created_at)
    SELECT :p_id, :p_uid, :p_pid, :p_key, :p_sku, :p_cat, :p_q, :p_price, :p_points, :p_gold,
           :p_delta, :p_items, :p_once, 'success', :p_settle, :p_receipt, :p_hash, :p_sig,
           :p_ver, CAST(:p_body AS jsonb) || jsonb_build_object('gold_balance', upd.gold_balance),
           :p_at
    FROM upd RETURNING id"""


@dataclass(frozen=True)
class Outcome:
    body: dict[str, Any]
    replayed: bool


def _lock_name(user_id: int, idem_key: str) -> str:
    return key("shop", "lock", user_id, idem_key)


@contextmanager
def _key_lock(user_id: int, idem_key: str) -> Iterator[bool]:
    """Layer 1: redis-py's lock (SET NX PX + a token-checked release script).

    Released only when the request ends without a purchase (a refusal or an error), so
    that a retry may run at once. After a purchase (or a replay) it is left to expire:
    every later request with the key finds the stored purchase before it looks at the
    lock, so the lock no longer matters, and not releasing it saves a Redis round trip
    per purchase."""
    lock = get_redis().lock(
        _lock_name(user_id, idem_key), timeout=get_settings().shop_lock_ttl_s, blocking=False
    )
    acquired = bool(lock.acquire(blocking=False))
    try:
        yield acquired
    except BaseException:
        if acquired:
            try:
                lock.release()
            except LockError:
                pass  # expired meanwhile; the database constraint still holds
            except RedisError:  # report the request's own error, not this one
                log.warning("could not release purchase lock", exc_info=True)
        raise


def _velocity_check(user_id: int) -> None:
    limit, window_s = flags.value("shop.velocity_limit"), get_settings().shop_velocity_window_s
    item = ratelimit.per_window(limit, window_s)
    ident = f"shop:{user_id}"
    if not ratelimit.limiter().hit(item, ident):
        raise TooManyRequests(
            ratelimit.retry_after_s(item, ident),
            "too many purchases; slow down",
            details={"limit": limit, "window_s": window_s},
        )


def _replay(row: Mapping[str, Any], product_id: int, quantity: int, idem_key: str) -> Outcome:
    if row["x_product_id"] != product_id or row["x_quantity"] != quantity:
        raise Duplicate(
            "idempotency key already used for a different purchase",
            details={"idempotency_key": idem_key, "product_id": row["x_product_id"]},
        )
    return Outcome(dict(row["x_response"]), replayed=True)


def _read(conn: Any, user_id: int, product_id: int, idem_key: str) -> dict[str, Any]:
    rows = pg.execute(conn, _READ, {"uid": user_id, "pid": product_id, "key": idem_key})
    return rows[0]


def _on_sale(row: Mapping[str, Any], now: datetime) -> bool:
    return (
        row["id"] is not None
        and row["is_active"]
        and (row["starts_at"] is None or row["starts_at"] <= now)
        and (row["ends_at"] is None or row["ends_at"] > now)
    )


def refusal(row: Mapping[str, Any], quantity: int, now: datetime) -> DomainError | None:
    """Why this purchase cannot happen, judged from a :data:`_READ` row (the statement
    re-checks all of it atomically; this gives the player the precise reason)."""
    if row["gold_balance"] is None:
        return NotFound("user not found")
    if not _on_sale(row, now):
        return NotFound("product not found or not on sale", details={"product_id": row["id"]})
    if TIERS.index(row["user_tier"]) < TIERS.index(row["tier_required"]):
        return Forbidden(
            f"requires tier {row['tier_required']}",
            details={"tier_required": row["tier_required"], "tier": row["user_tier"]},
        )
    if row["limit_once"] and quantity != 1:
        return ValidationFailed(
            "a limit_once product is bought one at a time", details={"quantity": quantity}
        )
    if row["limit_once"] and row["owned_once"]:
        return Conflict("this product can be bought once", code="LIMIT_REACHED")
    stock = row["stock_remaining"]
    if stock is not None and stock < quantity:
        return Conflict(
            "sold out" if stock == 0 else "not enough stock left",
            code="OUT_OF_STOCK",
            details={"stock_remaining": stock, "quantity": quantity},
        )
    price = int(row["price_gold"]) * quantity
    if price > int(row["gold_balance"]):
        return InsufficientGold(details={"balance": int(row["gold_balance"]), "required": price})
    return None


def _totals(row: Mapping[str, Any], quantity: int) -> dict[str, Any]:
    items: dict[str, int] = {}
    for it in row["items"] or []:
        items[it["code"]] = items.get(it["code"], 0) + int(it["quantity"]) * quantity
    price, gold = int(row["price_gold"]) * quantity, int(row["gold_amount"]) * quantity
    return {
        "price_gold": price,
        "points_price": int(row["points_price"]) * quantity,
        "gold_amount": gold,
        "gold_delta": gold - price,
        "items": [{"code": c, "quantity": q} for c, q in items.items()],
    }


def _guard(row: Mapping[str, Any], user_id: int, quantity: int, now: datetime) -> Attachment:
    limited = row["stock_remaining"] is not None
    sql = (_TAKE_STOCK if limited else _UNLIMITED) + _ON_SALE
    if limited:
        sql += " AND stock_remaining >= :g_q"
    if row["limit_once"]:
        sql += _NOT_OWNED
    params: dict[str, Any] = {
        "g_pid": row["id"],
        "g_ver": row["version"],
        "g_now": now,
        "g_uid": user_id,
        "g_tiers": list(TIERS),
    }
    if limited:
        params["g_q"] = quantity
    return Attachment(
        name="guard",
        sql=sql + " RETURNING stock_remaining" if limited else sql,
        params=params,
        types={"g_now": "timestamptz", "g_tiers": "text[]"},
        returning="(SELECT stock_remaining FROM guard) AS stock_left",
    )


def _settle(
    session: Session | Connection,
    row: Mapping[str, Any],
    user_id: int,
    idem_key: str,
    quantity: int,
    now: datetime,
    fx: Effects,
) -> tuple[dict[str, Any], int | None]:
    """The purchase statement (its effects queued on ``fx``); returns the response body
    and the stock left."""
    tx_id = int(row["tx_id"])
    totals = _totals(row, quantity)
    conversion = row["category"] == "conversion"
    receipt = {
        "tx_id": tx_id,
        "user_id": user_id,
        "product_id": row["id"],
        "sku": row["sku"],
        "category": row["category"],
        "quantity": quantity,
        **totals,
        "idempotency_key": idem_key,
        "issued_at": iso(now),
    }
    seal = receipts.seal(receipt, session)
    settlement_status = "pending" if conversion else None
    body: dict[str, Any] = {
        "tx_id": tx_id,
        "status": "success",
        "product_id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "category": row["category"],
        "quantity": quantity,
        **totals,
        "settlement_status": settlement_status,
        "receipt": {**seal.as_dict(), "document": receipt},
        "created_at": iso(now),
    }
    payload = {
        "tx_id": tx_id,
        "status": "success",
        "product_id": row["id"],
        "sku": row["sku"],
        "category": row["category"],
        "quantity": quantity,
        **totals,
        "settlement_status": settlement_status,
    }
    envelope = events.make_envelope(
        events.SHOP_PURCHASE, user_id, payload, dedupe_key=f"purchase:{tx_id}"
    )
    attachments = [
        Attachment(
            name="pr",
            sql=_PURCHASE_ROW,
            params={
                "p_id": tx_id,
                "p_uid": user_id,
                "p_pid": row["id"],
                "p_key": idem_key,
                "p_sku": row["sku"],
                "p_cat": row["category"],
                "p_q": quantity,
                "p_price": totals["price_gold"],
                "p_points": totals["points_price"],
                "p_gold": totals["gold_amount"],
                "p_delta": totals["gold_delta"],
                "p_items": totals["items"],
                "p_once": row["limit_once"],
                "p_settle": settlement_status,
                "p_receipt": receipt,
                "p_hash": seal.integrity_hash,
                "p_sig": seal.signature,
                "p_ver": seal.signature_version,
                "p_body": body,
                "p_at": now,
            },
            types={
                "p_items": "jsonb",
                "p_receipt": "jsonb",
                "p_body": "jsonb",
                "p_settle": "text",
                "p_at": "timestamptz",
            },
        ),
        writer.attachment(envelope, "ob", from_upd=BALANCE_FIELDS),
    ]
    granted = {it["code"]: it["quantity"] for it in totals["items"]}
    if granted:
        attachments.append(inventory.grant_attachment(user_id, granted))
    reason = f"shop: {row['sku']} x{quantity}"[:255]
    settled = settle(
        session,
        user_id=user_id,
        entries=[
            Entry(-totals["price_gold"], "shop_purchase", f"purchase:{tx_id}:debit", tx_id, reason),
            Entry(totals["gold_amount"], "shop_grant", f"purchase:{tx_id}:grant", tx_id, reason),
        ],
        guard=_guard(row, user_id, quantity, now),
        attachments=tuple(attachments),
    )
    envelope["payload"].update(settled.state())
    fx.publish(envelope)
    fx.touch(user_id)
    stock_left = settled.extra.get("stock_left")
    if row["stock_remaining"] is not None:
        fx.bump(shop_stock_key())
    return {**body, "gold_balance": settled.balance}, stock_left


def _run(
    row: dict[str, Any], user_id: int, idem_key: str, quantity: int, now: datetime
) -> tuple[dict[str, Any], int | None]:
    """Run the purchase statement. A limited product's guard takes stock before the
    balance is checked, so it runs in a transaction whose rollback returns the stock if
    the balance refuses. Otherwise the guard only reads, nothing is written unless the
    balance moved, and the statement is atomic on its own: it runs on an autocommit
    connection like a game round (no BEGIN and COMMIT round trips)."""
    if row["stock_remaining"] is not None:
        return db.in_transaction(
            lambda s: _settle(s, row, user_id, idem_key, quantity, now, effects.of(s))
        )
    fx = Effects()
    with db.autocommit() as conn:
        result = _settle(conn, row, user_id, idem_key, quantity, now, fx)
    fx.run()  # after the connection went back to the pool
    return result


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def _failed(user_id: int, product_id: int, quantity: int, row: Any, err: DomainError) -> None:
    """A business refusal as a ``shop.purchase`` event with ``status: failed`` (nothing
    else was written; best effort — the refusal is the answer either way)."""
    payload = {
        "status": "failed",
        "reason": err.code,
        "product_id": product_id,
        "sku": row["sku"] if row is not None else None,
        "quantity": quantity,
    }
    try:
        with db.unit_of_work() as s:
            effects.emit(
                s,
                events.SHOP_PURCHASE,
                user_id,
                payload,
                dedupe_key=f"purchase-failed:{uuid.uuid4()}",
            )
    except Exception:  # the store may be what failed; the refusal still stands
        log.warning("purchase refusal event not written", exc_info=True)


_EVENTFUL = frozenset({"INSUFFICIENT_GOLD", "OUT_OF_STOCK", "LIMIT_REACHED", "FORBIDDEN"})


def purchase(user_id: int, product_id: int, idem_key: str, quantity: int = 1) -> Outcome:
    """Buy ``quantity`` of ``product_id`` once per ``idem_key``. Raises the SPEC §3
    errors; on any of them nothing was written."""
    started = time.perf_counter()
    state, reason = "new", ""
    try:
        outcome = _purchase(user_id, product_id, idem_key, quantity)
        state = "replay" if outcome.replayed else "new"
        return outcome
    except InProgress:
        state = "in_progress"
        raise
    except DomainError as exc:
        state, reason = "failed", exc.code
        raise
    except Exception:
        state, reason = "failed", "INTERNAL"
        raise
    finally:
        SHOP_PURCHASE_ATTEMPTS.labels(state, reason).inc()
        SHOP_PURCHASE_LATENCY.labels(state).observe(time.perf_counter() - started)


def _purchase(user_id: int, product_id: int, idem_key: str, quantity: int) -> Outcome:
    with _key_lock(user_id, idem_key) as locked:
        with db.autocommit() as conn:
            row = _read(conn, user_id, product_id, idem_key)
        if row["x_product_id"] is not None:
            return _replay(row, product_id, quantity, idem_key)
        if not locked:
            raise InProgress(details={"idempotency_key": idem_key})
        if not flags.value("shop.enabled"):  # after the replay: a done purchase still answers
            raise FeatureDisabled("the shop is closed for now", details={"flag": "shop.enabled"})
        _velocity_check(user_id)  # new attempts only: a replay is not a purchase
        for attempt in range(MAX_ATTEMPTS):
            if attempt:  # the guard refused: the product, its stock or the player changed
                with db.autocommit() as conn:
                    row = _read(conn, user_id, product_id, idem_key)
            now = clock.utcnow()
            err = refusal(row, quantity, now)
            if err is not None:
                if err.code in _EVENTFUL:
                    _failed(user_id, product_id, quantity, row, err)
                raise err

            try:
                body, stock_left = _run(row, user_id, idem_key, quantity, now)
            except GuardRejected:
                continue
            except InsufficientGold as exc:  # a concurrent debit won the race
                _failed(user_id, product_id, quantity, row, exc)
                raise
            except IntegrityError as exc:
                name = _constraint(exc)
                if name == KEY_CONSTRAINT:  # the same key committed elsewhere (lock lost)
                    with db.autocommit() as conn:
                        row = _read(conn, user_id, product_id, idem_key)
                    return _replay(row, product_id, quantity, idem_key)
                if name == LIMIT_ONCE_INDEX:  # a concurrent purchase of the same product
                    err = Conflict("this product can be bought once", code="LIMIT_REACHED")
                    _failed(user_id, product_id, quantity, row, err)
                    raise err from exc
                raise
            if stock_left is not None:
                SHOP_STOCK_LEVEL.labels(row["sku"]).set(stock_left)
            return Outcome(body, replayed=False)
        raise InProgress("the product kept changing; retry", details={"product_id": product_id})
