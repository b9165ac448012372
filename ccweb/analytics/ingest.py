"""SPEC §4 envelope → ``events_raw`` rows (migration 0001), and the batched INSERT.

The typed columns are extracted here, in Python, for every event type, so that KPIs and
the data-quality jobs read numbers instead of parsing JSON (18.16 has no
``JSONExtract*``; ``visitParamExtract*(payload, 'key')`` remains the fallback for a
field nobody extracted, e.g. ``visitParamExtractInt(payload, 'product_id')``).

Column meanings (the contract other modules rely on):

- ``entity_id``: what the event is about — the round (``game.round``), the game session
  (``game.session.*``), the live event (``event.*``), the mission (``mission.*``), the
  purchase's tx (``shop.purchase`` success, ``shop.settlement``), the reward's source
  (``reward.granted``), the achievement, the admin adjustment's ledger entry, the
  recorded action; 0 when there is none (auth, streak, level-up, refused purchases).
- ``delta_gold``: the player's net gold change caused by this event, so that
  ``sum(delta_gold)`` over a player's distinct events follows the ledger: round
  payout − bet, purchase gold_amount − price, streak reward, ``reward.granted`` gold,
  admin delta, settlement reversal. ``event.claim`` / ``mission.claim`` carry 0: the
  same ledger row is announced by their ``reward.granted`` twin, and counting it on
  both would double it (their reward is still in ``payload.reward_items``).
  ``auth.signup`` carries 0 (its payload does not say the signup grant).
- ``amount_gold``: gold spent — a round's bet, a successful purchase's price_gold.
- ``balance_after``: the player's balance after the event when the payload says it.
- ``status``: purchase success|failed, settlement status, progress item status
  (active|claimable), ``claimed`` for claims, a round's outcome.
- ``version``: progress_version when the payload has one (else 0): the
  ReplacingMergeTree version, so the latest copy wins.
- ``payload``: the envelope's payload as compact JSON text. A progress envelope
  (``event.progress`` / ``mission.progress``) carries several items; it becomes one row
  per item with the same event_id, each row's ``payload`` being ``{"items": [that
  item]}`` so that a row describes exactly its entity_id and version.

A malformed envelope raises ``ValueError`` (the entry's fault: the worker retries it
alone and dead-letters it), never a ClickHouse error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ccweb import events as ev
from ccweb.liveops.rules import reward_totals

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
MAX_INSERT_BYTES = 1 << 20  # one INSERT carries at most ~1 MB (SPEC §4 flush rule)
_ROW_OVERHEAD = 96  # bytes of the fixed-width columns and string lengths, roughly

COLUMNS = (
    "event_id",
    "event_type",
    "user_id",
    "ts",
    "ts_ms",
    "event_date",
    "entity_id",
    "delta_gold",
    "amount_gold",
    "balance_after",
    "status",
    "game_type",
    "version",
    "payload",
    "dedupe_key",
    "schema_version",
    "trace_id",
    "source_service",
    "source_host",
)
INSERT_SQL = f"INSERT INTO events_raw ({', '.join(COLUMNS)}) VALUES"

Row = tuple[Any, ...]

_ENTITY_KEY = {
    ev.GAME_ROUND: "round_id",
    ev.GAME_SESSION_START: "session_id",
    ev.GAME_SESSION_END: "session_id",
    ev.EVENT_PARTICIPATE: "event_id",
    ev.EVENT_CLAIM: "event_id",
    ev.MISSION_CLAIM: "mission_id",
    ev.REWARD_GRANTED: "source_id",
    ev.SHOP_PURCHASE: "tx_id",
    ev.SHOP_SETTLEMENT: "tx_id",
    ev.ACHIEVEMENT_UNLOCKED: "achievement_id",
    ev.ADMIN_ADJUST: "entry_id",
    ev.USER_ACTION: "action_id",
}
_PROGRESS_KEY = {ev.EVENT_PROGRESS: "event_id", ev.MISSION_PROGRESS: "mission_id"}


def _int(value: Any, what: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what}: not a number: {value!r}")
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{what}: not a number: {value!r}") from None
    if not lo <= n <= hi:
        raise ValueError(f"{what}: out of range: {n}")
    return n


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _reward_gold(payload: Mapping[str, Any]) -> int:
    items = payload.get("reward_items") or []
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ValueError("reward_items: not a list of objects")
    try:
        return reward_totals(items)[0]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"reward_items: {exc}") from None


def _gold_fields(event_type: str, p: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(delta_gold, amount_gold, balance_after)`` (module docstring)."""
    balance = p.get("gold_balance", p.get("balance_after", p.get("balance")))
    if event_type == ev.GAME_ROUND:
        delta = p.get("gold_delta")
        if delta is None:
            delta = _int(p.get("payout"), "payout") - _int(p.get("bet"), "bet")
        return _int(delta, "gold_delta"), _int(p.get("bet"), "bet"), _int(balance, "balance")
    if event_type == ev.SHOP_PURCHASE:
        if p.get("status") != "success":
            return 0, 0, _int(balance, "balance")
        return (
            _int(p.get("gold_delta"), "gold_delta"),
            _int(p.get("price_gold"), "price_gold"),
            _int(balance, "balance"),
        )
    if event_type == ev.SHOP_SETTLEMENT:
        return _int(p.get("gold_delta"), "gold_delta"), 0, _int(balance, "balance")
    if event_type == ev.STREAK_CLAIM:
        reward = p.get("reward") or {}
        if not isinstance(reward, Mapping):
            raise ValueError("reward: not an object")
        return _int(reward.get("gold"), "reward.gold"), 0, _int(balance, "balance")
    if event_type == ev.REWARD_GRANTED:
        gold = p["delta_gold"] if "delta_gold" in p else _reward_gold(p)
        return _int(gold, "delta_gold"), 0, _int(balance, "balance")
    if event_type == ev.ADMIN_ADJUST:
        return _int(p.get("delta"), "delta"), 0, _int(balance, "balance")
    if event_type in (ev.EVENT_CLAIM, ev.MISSION_CLAIM):
        _reward_gold(p)  # validated, not counted (module docstring)
    return 0, 0, _int(balance, "balance")


def _status(event_type: str, p: Mapping[str, Any]) -> str:
    if event_type in (ev.EVENT_CLAIM, ev.MISSION_CLAIM):
        return "claimed"
    if event_type == ev.GAME_ROUND:
        return _str(p.get("outcome"))
    return _str(p.get("status"))


def _ts(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"ts: not an ISO-8601 string: {value!r}")
    try:
        return ev.parse_ts(value)
    except ValueError as exc:
        raise ValueError(f"ts: {exc}") from None


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def rows_of(envelope: Any) -> list[Row]:
    """The ``events_raw`` rows (in :data:`COLUMNS` order) of one envelope."""
    if not isinstance(envelope, Mapping):
        raise ValueError("envelope: not an object")
    event_id, event_type = envelope.get("event_id"), envelope.get("event_type")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError(f"event_id: missing or not a string: {event_id!r}")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError(f"event_type: missing or not a string: {event_type!r}")
    payload = envelope.get("payload")
    if not isinstance(payload, Mapping):
        raise ValueError("payload: missing or not an object")
    user_id = envelope.get("user_id")
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
        raise ValueError(f"user_id: not an integer: {user_id!r}")
    ts = _ts(envelope.get("ts"))
    source = envelope.get("source") or {}
    if not isinstance(source, Mapping):
        raise ValueError("source: not an object")
    common_head = (event_id, event_type, _int(user_id, "user_id", 0, UINT64_MAX))
    ts_s = ts.replace(microsecond=0)
    time_cols = (ts_s, ts.microsecond // 1000, ts.date())
    tail = (
        _str(envelope.get("dedupe_key")) or event_id,
        _int(envelope.get("schema_version", 1), "schema_version", 0, 65535),
        _str(envelope.get("trace_id")),
        _str(source.get("service")),
        _str(source.get("host")),
    )

    def row(entity: Any, version: Any, status: str, game_type: str, body: Any) -> Row:
        delta, amount, balance = _gold_fields(event_type, payload)
        return (
            *common_head,
            *time_cols,
            _int(entity, "entity_id", 0, UINT64_MAX),
            delta,
            amount,
            balance,
            status,
            game_type,
            _int(version, "progress_version", 0, UINT64_MAX),
            _json(body),
            *tail,
        )

    game_type = _str(payload.get("game_type"))
    key = _PROGRESS_KEY.get(event_type)
    if key is not None and "items" in payload:
        items = payload["items"]
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise ValueError("items: not a list of objects")
        return [
            row(
                it.get(key),
                it.get("progress_version"),
                _str(it.get("status")),
                game_type,
                {"items": [it]},
            )
            for it in items
        ]
    entity = payload.get(key or _ENTITY_KEY.get(event_type, ""))
    return [
        row(
            entity,
            payload.get("progress_version"),
            _status(event_type, payload),
            game_type,
            payload,
        )
    ]


def row_bytes(row: Row) -> int:
    """Approximate bytes of a row on the wire (strings dominate)."""
    return _ROW_OVERHEAD + sum(len(v) for v in row if isinstance(v, str))


def chunks(rows: Sequence[Row], max_bytes: int = MAX_INSERT_BYTES) -> Iterable[list[Row]]:
    """Split ``rows`` so that no INSERT carries more than ``max_bytes`` (a single larger
    row still goes alone)."""
    chunk: list[Row] = []
    size = 0
    for r in rows:
        n = row_bytes(r)
        if chunk and size + n > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(r)
        size += n
    if chunk:
        yield chunk


def event_time(row: Row) -> float:
    """The event's time (epoch seconds, ms precision) of a row, for the ingest lag."""
    ts: datetime = row[3]
    return ts.replace(tzinfo=ts.tzinfo or UTC).timestamp() + row[4] / 1000
