"""``X-Idempotency-Key`` handling for mutating money endpoints (SPEC §2).

Same key + same user + same request → the stored response is replayed with
``Idempotent-Replay: true``; the same key while the first request still runs → 409
``IN_PROGRESS``; the same key with a different request → 409 ``DUPLICATE``.

Only successful (2xx) responses are stored. A request that fails with a domain error
changed nothing (units of work are all-or-nothing), so its key is released and a retry
runs again. A marker left ``in progress`` by a crashed process is taken over after
``STALE_AFTER_S``; the money underneath stays exactly-once because the ledger key is
derived from the same idempotency key.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, g, make_response, request
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from ccweb.db import unit_of_work
from ccweb.errors import Duplicate, InProgress, ValidationFailed

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "X-Idempotency-Key"
STALE_AFTER_S = 60
MAX_KEY_LEN = 128

_CLAIM = text(
    """
    INSERT INTO idempotency_keys (user_id, key, endpoint, request_hash)
    VALUES (:uid, :key, :endpoint, :hash)
    ON CONFLICT (user_id, key) DO UPDATE SET created_at = now()
        WHERE idempotency_keys.status_code IS NULL
          AND idempotency_keys.request_hash = EXCLUDED.request_hash
          AND idempotency_keys.created_at < now() - make_interval(secs => :stale)
    RETURNING 1
    """
)
_EXISTING = text(
    "SELECT request_hash, status_code, response FROM idempotency_keys"
    " WHERE user_id = :uid AND key = :key"
)
_STORE = text(
    """
    UPDATE idempotency_keys SET status_code = :status, response = :response,
        completed_at = now()
    WHERE user_id = :uid AND key = :key
    """
).bindparams(bindparam("response", type_=JSONB))
_RELEASE = text("DELETE FROM idempotency_keys WHERE user_id = :uid AND key = :key")


def request_key() -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    raw = raw.strip()
    if not raw or len(raw) > MAX_KEY_LEN or "\x00" in raw:
        raise ValidationFailed(f"{HEADER} must be 1–{MAX_KEY_LEN} characters")
    return raw


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


def idempotent(fn: F) -> F:
    """Wrap an authenticated view (``g.user_id`` set). Views read the key with
    :func:`request_key` to derive their ledger idempotency keys."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request_key()
        if key is None:
            return fn(*args, **kwargs)
        uid, endpoint = g.user_id, request.endpoint or request.path
        fingerprint = _fingerprint(endpoint)
        with unit_of_work() as s:
            claimed = s.execute(
                _CLAIM,
                {
                    "uid": uid,
                    "key": key,
                    "endpoint": endpoint,
                    "hash": fingerprint,
                    "stale": STALE_AFTER_S,
                },
            ).first()
            existing = None if claimed else s.execute(_EXISTING, {"uid": uid, "key": key}).one()
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise Duplicate(
                    "idempotency key already used for a different request", details={"key": key}
                )
            if existing.status_code is None:
                raise InProgress(details={"key": key})
            return _replay(existing.status_code, existing.response)
        try:
            resp = make_response(fn(*args, **kwargs))
        except BaseException:
            with unit_of_work() as s:
                s.execute(_RELEASE, {"uid": uid, "key": key})
            raise
        with unit_of_work() as s:
            if 200 <= resp.status_code < 300 and resp.is_json:
                s.execute(
                    _STORE,
                    {
                        "uid": uid,
                        "key": key,
                        "status": resp.status_code,
                        "response": resp.get_json(),
                    },
                )
            else:
                s.execute(_RELEASE, {"uid": uid, "key": key})
        return resp

    meta = dict(getattr(fn, "__openapi__", {}))
    meta["idempotent"] = True
    wrapper.__openapi__ = meta  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
