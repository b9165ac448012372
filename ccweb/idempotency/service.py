"""``X-Idempotency-Key`` handling for mutating money endpoints (SPEC §2).

Same key + same user + same request → the stored response is replayed with
``Idempotent-Replay: true``; the same key while the first request still runs → 409
``IN_PROGRESS``; the same key with a different request → 409 ``DUPLICATE``.

The response is stored **in the same transaction (or statement) as the effect**, so a
crash at any point leaves either nothing applied (the key is free again, see below) or
the effect AND its response: a retry then replays the original result and never plays a
second round. Money views run their unit of work through :func:`transaction` (session
work) or attach :func:`store_attachment` to their one settle statement (game rounds).

Lifecycle of a key: :func:`idempotent` claims it (a row with ``status_code`` NULL, one
autocommit statement) before the view runs; the view's transaction completes it
(``UPDATE … WHERE status_code IS NULL``: if another request completed it first — a
takeover of a stale claim racing its original — this transaction rolls back and the
stored response is replayed). A request that fails with a domain error changed nothing,
so its claim is deleted and a retry runs again. A claim left open — its process died
before committing, or the store went away before the claim could be released — is taken
over by a retry after ``CC_IDEMPOTENCY_STALE_S`` (10 s). A takeover is safe at any age:
if the original is in fact still running, whichever completes second rolls back whole
and replays the first; the window only spares the work of running one request twice at
once. (It was 60 s: after a database outage, clients retrying a request whose claim
could not be released got 409 IN_PROGRESS for a minute.)
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy.exc
from flask import Response, g, has_request_context, make_response, request
from prometheus_client import Counter
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ccweb import db
from ccweb.config import get_settings
from ccweb.cte import Attachment
from ccweb.errors import Duplicate, InProgress, ValidationFailed

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
HEADER = "X-Idempotency-Key"

IDEMPOTENT_REQUESTS = Counter(
    "cc_idempotency_requests_total",
    "Requests sent with X-Idempotency-Key to an idempotent endpoint: executed under the"
    " key, or replayed (answered with the stored response)",
    ["result"],
)
_EXECUTED = IDEMPOTENT_REQUESTS.labels("executed")
_REPLAYED = IDEMPOTENT_REQUESTS.labels("replayed")
MAX_KEY_LEN = 128

# Claim the key, or take over a stale claim of the same request; otherwise report the row.
_CLAIM = text(
    """
    WITH ins AS (
        INSERT INTO idempotency_keys (user_id, key, endpoint, request_hash)
        VALUES (:uid, :key, :endpoint, :hash)
        ON CONFLICT (user_id, key) DO UPDATE SET created_at = now()
            WHERE idempotency_keys.status_code IS NULL
              AND idempotency_keys.request_hash = EXCLUDED.request_hash
              AND idempotency_keys.created_at < now() - make_interval(secs => :stale)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins) AS claimed, k.request_hash, k.status_code, k.response
    FROM (SELECT 1) AS one
    LEFT JOIN idempotency_keys k ON k.user_id = :uid AND k.key = :key
    """
)
_COMPLETE = text(
    """
    UPDATE idempotency_keys SET status_code = :status, response = :response,
        completed_at = now()
    WHERE user_id = :uid AND key = :key AND status_code IS NULL
    RETURNING 1
    """
).bindparams(bindparam("response", type_=JSONB))
_EXISTING = text(
    "SELECT request_hash, status_code, response FROM idempotency_keys"
    " WHERE user_id = :uid AND key = :key"
)
_RELEASE = text(
    "DELETE FROM idempotency_keys WHERE user_id = :uid AND key = :key AND status_code IS NULL"
)


@dataclass
class Claim:
    """The key this request holds (``g.idempotency``)."""

    user_id: int
    key: str
    completed: bool = False  # the view's transaction stored the response


class AlreadyCompleted(Exception):
    """Another request with this key committed first: roll back and replay its result."""


def stale_after_s() -> float:
    return get_settings().idempotency_stale_s


def request_key() -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    raw = raw.strip()
    if not raw or len(raw) > MAX_KEY_LEN or "\x00" in raw:
        raise ValidationFailed(f"{HEADER} must be 1–{MAX_KEY_LEN} characters")
    return raw


def current() -> Claim | None:
    """The claim of the request being served, if it sent a key."""
    return g.get("idempotency") if has_request_context() else None


def _fingerprint(endpoint: str) -> str:
    h = hashlib.sha256()
    h.update(endpoint.encode())
    h.update(request.path.encode())
    h.update(request.get_data(cache=True))
    return h.hexdigest()


def _replay(status: int, body: Any) -> Response:
    resp = make_response(json.dumps(body), status)
    resp.headers["Content-Type"] = "application/json"
    resp.headers["Idempotent-Replay"] = "true"
    return resp


def is_completed(conn: Any, claim: Claim) -> bool:
    row = conn.execute(_EXISTING, {"uid": claim.user_id, "key": claim.key}).first()
    return row is not None and row.status_code is not None


def _stored(claim: Claim) -> Response:
    with db.autocommit() as conn:
        row = conn.execute(_EXISTING, {"uid": claim.user_id, "key": claim.key}).one()
    return _replay(row.status_code, row.response)


def complete(session: Session, claim: Claim, body: Any, status: int = 200) -> None:
    """Store the response of ``claim`` in ``session``'s transaction (before its commit)."""
    done = session.execute(
        _COMPLETE, {"uid": claim.user_id, "key": claim.key, "status": status, "response": body}
    ).first()
    if done is None:
        raise AlreadyCompleted(claim.key)
    claim.completed = True


def transaction(fn: Callable[[Session], T], status: int = 200) -> T:
    """``db.in_transaction(fn)`` that also stores the result as this request's idempotent
    response in the same transaction (when the request sent a key)."""
    claim = current()
    if claim is None:
        return db.in_transaction(fn)

    def work(session: Session) -> T:
        body = fn(session)
        complete(session, claim, body, status)
        return body

    return db.in_transaction(work)


def store_guard(claim: Claim) -> tuple[str, dict[str, Any]]:
    """SQL condition (and parameters) for a single-statement money write's guard: the
    claim is still open. With :func:`store_attachment`, it makes the effect and the stored
    response one atomic statement that cannot run for a completed key."""
    return (
        "EXISTS (SELECT 1 FROM idempotency_keys WHERE user_id = :ik_uid AND key = :ik_key"
        " AND status_code IS NULL)",
        {"ik_uid": claim.user_id, "ik_key": claim.key},
    )


def store_attachment(claim: Claim, body: dict[str, Any], from_upd: dict[str, str]) -> Attachment:
    """The stored response as a CTE of a ledger statement: ``body`` merged with values
    only the statement knows (``{"gold_balance": "upd.gold_balance"}``). The caller's
    guard must include :func:`store_guard`; the caller sets ``claim.completed``."""
    fields = ", ".join(f"'{k}', {expr}" for k, expr in from_upd.items())
    return Attachment(
        name="idem",
        sql=f"""UPDATE idempotency_keys SET status_code = 200, completed_at = now(),
                response = CAST(:ik_body AS jsonb) || jsonb_build_object({fields})
            FROM upd WHERE user_id = :ik_uid AND key = :ik_key AND status_code IS NULL""",
        params={"ik_body": body},
        types={"ik_body": "jsonb"},
    )


def idempotent(fn: F) -> F:
    """Wrap an authenticated view (``g.user_id`` set) of a money endpoint. Counts keyed
    requests in ``cc_idempotency_requests_total{result}`` (admin stats' replay ratio): a
    replay writes nothing, so only this layer sees it."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request_key()
        if key is None:
            return fn(*args, **kwargs)
        resp: Response | None = None
        try:
            resp = _keyed(fn, key, args, kwargs)
            return resp
        finally:
            if resp is not None and resp.headers.get("Idempotent-Replay") == "true":
                _REPLAYED.inc()
            elif g.get("idempotency") is not None:  # ran under its key (whatever the outcome)
                _EXECUTED.inc()

    meta = dict(getattr(fn, "__openapi__", {}))
    meta["idempotent"] = True
    wrapper.__openapi__ = meta  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _keyed(fn: Callable[..., Any], key: str, args: Any, kwargs: Any) -> Response:
    uid, endpoint = g.user_id, request.endpoint or request.path
    fingerprint = _fingerprint(endpoint)
    params = {"uid": uid, "key": key, "endpoint": endpoint, "hash": fingerprint}
    with db.autocommit() as conn:
        row = conn.execute(_CLAIM, {**params, "stale": stale_after_s()}).one()
    if not row.claimed:
        if row.request_hash is None:
            # claimed by a transaction that committed after this statement's snapshot
            raise InProgress(details={"key": key})
        if row.request_hash != fingerprint:
            raise Duplicate(
                "idempotency key already used for a different request", details={"key": key}
            )
        if row.status_code is None:
            raise InProgress(details={"key": key})
        return _replay(row.status_code, row.response)
    claim = g.idempotency = Claim(uid, key)
    try:
        resp = make_response(fn(*args, **kwargs))
    except AlreadyCompleted:
        return _stored(claim)
    except (
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.TimeoutError,
    ):
        # PostgreSQL is down or hung: releasing would wait for it again; the open
        # claim is taken over by a retry once it is stale
        raise
    except BaseException:
        _release(claim)
        raise
    if not claim.completed:
        try:
            _finish(claim, resp)
        except AlreadyCompleted:
            return _stored(claim)
    return resp


def _release(claim: Claim) -> None:
    """The request failed and changed nothing: free the key for a retry. If even this
    fails (the store is down), a retry takes the claim over once it is stale."""
    try:
        with db.autocommit() as conn:
            conn.execute(_RELEASE, {"uid": claim.user_id, "key": claim.key})
    except Exception:
        log.warning("could not release idempotency key %r", claim.key, exc_info=True)


def _finish(claim: Claim, resp: Response) -> None:
    """A view that does not store its response in its own transaction (no money moved):
    store a 2xx JSON response now, or free the key."""
    with db.unit_of_work() as s:
        if 200 <= resp.status_code < 300 and resp.is_json:
            complete(s, claim, resp.get_json(), resp.status_code)
        else:
            s.execute(_RELEASE, {"uid": claim.user_id, "key": claim.key})
