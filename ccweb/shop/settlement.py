"""Settlement of conversion purchases: the payment provider's signed callbacks, applied once.

A ``conversion`` product turns external points into gold. The purchase credits the gold
at once and leaves the purchase ``pending``; the provider later tells us, through
``POST /api/shop/webhook/settlement``, whether the points were really collected.

State machine (anything else changes nothing)::

    pending ──settled──► settled ──voided (a chargeback)──► voided (final)
       └──────────────────voided──────────────────────────────┘

* a callback asking for the state the purchase already has is recorded as not applied
  and answered 200 (``applied: false``); ``voided → settled`` is refused (409
  ``INVALID_TRANSITION``), also recorded as not applied;
* every callback id is stored (``shop_settlement_callbacks``, primary key = the
  provider's id): a callback id seen before changes nothing and is answered 200 with the
  purchase's current state and ``replayed: true`` — the same id reused for another
  purchase or status is a provider bug, 409 ``DUPLICATE``.

Exactly once, also under concurrency: the purchase row is locked ``FOR UPDATE`` first,
so callbacks for one purchase run one after the other and each sees the state the
previous one committed; the callback row's primary key makes a second delivery of the
same id a no-op; the state change is a conditional ``UPDATE … WHERE settlement_status =
:from`` in the same transaction as the ledger row (and the void's ledger key
``purchase:<tx_id>:void`` is UNIQUE), so even without the lock nothing could apply twice.

Void and spent gold — the decision: a void reverses the conversion's gold through the
ledger (``source_type='shop_void'``), but never makes a balance negative. With the
player's row locked ``FOR UPDATE`` (no round or purchase can move the balance between the
read and the debit) it takes back ``min(balance, gold granted)``. What it could not take
back is the player's debt to us, not a negative balance: the purchase records
``reversed_gold`` and ``unrecovered_gold``, the ``cc_shop_settlement_unrecovered_gold``
counter grows, and an audit row (``shop.void_unrecovered``, no admin: the system acted)
lets support follow up — recover it from future purchases, or block the account. We do
not keep a negative balance or a hidden debt that later wins would silently pay off:
every player-visible balance is explained by the ledger alone.

The signature scheme (the provider's side lives in :mod:`ccweb.shop.settlement_stub`):
header ``X-Settlement-Timestamp: <unix seconds>`` and ``X-Settlement-Signature:
v<version>=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`` with the keyring
purpose ``settlement``; the current and previous key versions verify, a retired or
unknown one does not, nor does a timestamp more than :data:`TOLERANCE_S` away from
:mod:`ccweb.clock` (a captured callback is useless after five minutes, and within them
its remembered callback id makes it a no-op).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ccweb import clock, effects, events
from ccweb.admin import audit
from ccweb.db import RetryTransaction
from ccweb.errors import Conflict, Duplicate, NotFound, Unauthorized
from ccweb.metrics import SHOP_SETTLEMENT_LATENCY, SHOP_SETTLEMENTS, SHOP_UNRECOVERED_GOLD
from ccweb.shop import keyring
from ccweb.wallet import ledger

PURPOSE = "settlement"
TOLERANCE_S = 300
TIMESTAMP_HEADER = "X-Settlement-Timestamp"
SIGNATURE_HEADER = "X-Settlement-Signature"
STATUSES = ("settled", "voided")
TRANSITIONS = frozenset({("pending", "settled"), ("pending", "voided"), ("settled", "voided")})
VOID_SOURCE = "shop_void"

_SIGNATURE = re.compile(r"v([0-9]{1,9})=([0-9a-f]{64})")


# ------------------------------------------------------------------------- signatures


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC of one callback: ``HMAC-SHA256(secret, b"<timestamp>." + body)``."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(version: int, secret: bytes, timestamp: int, body: bytes) -> str:
    return f"v{version}={sign(secret, timestamp, body)}"


class BadSignature(Unauthorized):
    message = "settlement callback signature rejected"


def verify_signature(body: bytes, timestamp: str | None, signature: str | None) -> int:
    """Check a callback's headers against its raw body; the key version that verified it.

    Raises :class:`BadSignature` (401 ``UNAUTHORIZED``) for a missing or malformed
    header, a timestamp outside ±:data:`TOLERANCE_S` of :mod:`ccweb.clock`, a key version
    that is unknown or retired, or a wrong MAC."""
    if not timestamp or not signature:
        raise BadSignature(details={"reason": "missing signature headers"})
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise BadSignature(details={"reason": "malformed timestamp"})
    if abs(clock.time() - int(timestamp)) > TOLERANCE_S:
        raise BadSignature(details={"reason": "timestamp outside the tolerance"})
    match = _SIGNATURE.fullmatch(signature.strip())
    if match is None:
        raise BadSignature(details={"reason": "malformed signature"})
    key = keyring.verifying(PURPOSE, int(match.group(1)))
    if key is None:
        raise BadSignature(details={"reason": "unknown or retired key version"})
    expected = sign(key.secret, int(timestamp), body)
    if not hmac.compare_digest(expected.encode(), match.group(2).encode()):
        raise BadSignature(details={"reason": "signature mismatch"})
    return key.version


# --------------------------------------------------------------------- state machine


class InvalidTransition(Conflict):
    code, message = "INVALID_TRANSITION", "the purchase cannot move to this settlement state"


@dataclass(frozen=True)
class Outcome:
    """What one callback did. ``result``: ``settled`` / ``voided`` (applied),
    ``unchanged`` (already in that state), ``refused`` (illegal transition),
    ``replayed`` (callback id seen before)."""

    tx_id: int
    result: str
    settlement_status: str
    gold_delta: int
    balance: int  # the player's gold after the callback
    reversed_gold: int
    unrecovered_gold: int

    @property
    def applied(self) -> bool:
        return self.result in STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            "tx_id": self.tx_id,
            "settlement_status": self.settlement_status,
            "applied": self.applied,
            "replayed": self.result == "replayed",
            "gold_delta": self.gold_delta,
            "gold_balance": self.balance,
            "reversed_gold": self.reversed_gold,
            "unrecovered_gold": self.unrecovered_gold,
        }


_LOCK_PURCHASE = text(
    """
    SELECT id, user_id, category, settlement_status, gold_amount, reversed_gold,
           unrecovered_gold
    FROM shop_purchases WHERE id = :tx FOR UPDATE
    """
)
_RECORD = text(
    """
    INSERT INTO shop_settlement_callbacks (callback_id, purchase_id, status, applied, payload)
    VALUES (:cid, :pid, :status, :applied, :payload)
    ON CONFLICT (callback_id) DO NOTHING
    RETURNING callback_id
    """
).bindparams(bindparam("payload", type_=JSONB))
_SEEN = text("SELECT purchase_id, status FROM shop_settlement_callbacks WHERE callback_id = :cid")
_BALANCE = text("SELECT gold_balance FROM users WHERE id = :uid")
_LOCK_BALANCE = text("SELECT gold_balance FROM users WHERE id = :uid FOR UPDATE")
_MOVE = text(
    """
    UPDATE shop_purchases
    SET settlement_status = :to, settled_at = now(),
        reversed_gold = :reversed, unrecovered_gold = :unrecovered
    WHERE id = :tx AND settlement_status = :from
    RETURNING created_at
    """
)


def apply(
    session: Session, *, callback_id: str, tx_id: int, status: str, payload: dict[str, Any]
) -> Outcome:
    """Apply one verified callback in the caller's transaction (module docstring).

    Raises :class:`NotFound` (unknown ``tx_id``), :class:`Conflict` ``NOT_CONVERSION``,
    :class:`Duplicate` (a known callback id for another purchase or status) — nothing is
    written then. A refused transition is *returned* (``result='refused'``) so that its
    record commits; the caller turns it into :class:`InvalidTransition`."""
    if status not in STATUSES:
        raise ValueError(f"unknown settlement status {status!r}")
    p = session.execute(_LOCK_PURCHASE, {"tx": tx_id}).mappings().first()
    if p is None:
        raise NotFound("purchase not found", details={"tx_id": tx_id})
    if p["category"] != "conversion" or p["settlement_status"] is None:
        raise Conflict(
            "only conversion purchases are settled",
            code="NOT_CONVERSION",
            details={"tx_id": tx_id, "category": p["category"]},
        )
    current = p["settlement_status"]
    legal = (current, status) in TRANSITIONS
    recorded = session.execute(
        _RECORD,
        {
            "cid": callback_id,
            "pid": tx_id,
            "status": status,
            "applied": legal,
            "payload": payload,
        },
    ).first()
    if recorded is None:
        return _replayed(session, callback_id, p, status)
    if not legal:
        result = "unchanged" if current == status else "refused"
        _count_after_commit(session, result)
        return _unchanged(session, p, result)
    if status == "settled":
        return _move(session, p, "settled", reversed_=0, unrecovered=0, settlement=None)
    return _void(session, p)


def _replayed(session: Session, callback_id: str, p: Any, status: str) -> Outcome:
    seen = session.execute(_SEEN, {"cid": callback_id}).one()
    if int(seen.purchase_id) != int(p["id"]) or seen.status != status:
        raise Duplicate(
            "callback_id was already used for another settlement",
            details={"callback_id": callback_id},
        )
    _count_after_commit(session, "replayed")
    return _unchanged(session, p, "replayed")


def _unchanged(session: Session, p: Any, result: str) -> Outcome:
    balance = session.execute(_BALANCE, {"uid": p["user_id"]}).scalar_one()
    return Outcome(
        tx_id=int(p["id"]),
        result=result,
        settlement_status=p["settlement_status"],
        gold_delta=0,
        balance=int(balance),
        reversed_gold=int(p["reversed_gold"]),
        unrecovered_gold=int(p["unrecovered_gold"]),
    )


def _void(session: Session, p: Any) -> Outcome:
    """Take back the conversion's gold, as much as the balance holds (module docstring)."""
    uid, tx_id, granted = int(p["user_id"]), int(p["id"]), int(p["gold_amount"])
    balance = int(session.execute(_LOCK_BALANCE, {"uid": uid}).scalar_one())
    reversed_ = min(balance, granted)
    unrecovered = granted - reversed_
    settlement = None
    if reversed_ > 0:
        settlement = ledger.apply(
            session,
            user_id=uid,
            delta=-reversed_,
            source_type=VOID_SOURCE,
            source_id=tx_id,
            idempotency_key=f"purchase:{tx_id}:void",
            reason="conversion voided by the payment provider",
            meta={"granted": granted, "unrecovered": unrecovered},
        )
        if settlement.replayed:
            # only a void writes this key and a void is final: the state and the ledger
            # disagree, which no retry can mend
            raise RuntimeError(f"purchase {tx_id}: void ledger row exists but not voided")
    if unrecovered > 0:
        audit.record(
            session,
            None,  # the system acted (admin_id is nullable)
            "shop.void_unrecovered",
            "shop_purchase",
            tx_id,
            {
                "user_id": uid,
                "granted": granted,
                "reversed_gold": reversed_,
                "unrecovered_gold": unrecovered,
                "previous_status": p["settlement_status"],
            },
        )
    return _move(
        session, p, "voided", reversed_=reversed_, unrecovered=unrecovered, settlement=settlement
    )


def _move(
    session: Session,
    p: Any,
    to: str,
    *,
    reversed_: int,
    unrecovered: int,
    settlement: ledger.Settlement | None,
) -> Outcome:
    uid, tx_id = int(p["user_id"]), int(p["id"])
    moved = session.execute(
        _MOVE,
        {
            "tx": tx_id,
            "to": to,
            "from": p["settlement_status"],
            "reversed": reversed_,
            "unrecovered": unrecovered,
        },
    ).first()
    if moved is None:
        # someone else moved it between our read and this write (cannot happen under the
        # row lock; if it ever does, the whole unit — ledger row included — runs again)
        raise RetryTransaction("settlement state changed underneath")
    if settlement is not None:
        balance = settlement.balance
    else:
        balance = int(session.execute(_BALANCE, {"uid": uid}).scalar_one())
    outcome = Outcome(
        tx_id=tx_id,
        result=to,
        settlement_status=to,
        gold_delta=-reversed_,
        balance=balance,
        reversed_gold=reversed_,
        unrecovered_gold=unrecovered,
    )
    effects.emit(
        session,
        events.SHOP_SETTLEMENT,
        uid,
        {
            "tx_id": tx_id,
            "status": to,
            "previous_status": p["settlement_status"],
            "gold_delta": outcome.gold_delta,
            "gold_balance": balance,
            "unrecovered_gold": unrecovered,
        },
        dedupe_key=f"shop.settlement:{tx_id}:{to}",
    )
    fx = effects.of(session)
    fx.touch(uid)
    age_s = clock.time() - moved.created_at.timestamp()  # created_at is the app clock's too

    def observe() -> None:
        SHOP_SETTLEMENTS.labels(to).inc()
        SHOP_SETTLEMENT_LATENCY.labels(to).observe(max(0.0, age_s))
        if unrecovered:
            SHOP_UNRECOVERED_GOLD.inc(unrecovered)

    fx.after(observe)
    return outcome


def _count_after_commit(session: Session, result: str) -> None:
    effects.of(session).after(lambda: SHOP_SETTLEMENTS.labels(result).inc())


def count_rejected() -> None:
    """A callback refused before it could be applied (signature, body, unknown purchase)."""
    SHOP_SETTLEMENTS.labels("rejected").inc()
