"""EXTERNAL_STUB: a stand-in for the external payment provider that settles conversions.

Not part of the game server. A real provider collects the player's points and, later,
calls ``POST /api/shop/webhook/settlement`` with a signed callback; this module does the
same from our side of the fence so dev and tests exercise the real HTTP path: it builds
the callback body, signs it exactly as the provider would (:func:`ccweb.shop.settlement.
signature_header` with the keyring purpose ``settlement`` — the secret we would share
with the provider), and POSTs it. ``python -m ccweb.manage settle-pending [--older-than
S] [--void-every N] [--url URL]`` settles every pending conversion (every N-th is voided
instead, to rehearse chargebacks).

It reads the database only to find pending conversions, which a real provider would
know from its own records. Replace it with the provider's integration; nothing in the
server imports it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from ccweb import clock, db
from ccweb.events import iso
from ccweb.shop import keyring, settlement

WEBHOOK_PATH = "/api/shop/webhook/settlement"

# (raw body, headers) -> (HTTP status, parsed JSON body or None)
Send = Callable[[bytes, dict[str, str]], tuple[int, Any]]


def build_callback(
    tx_id: int,
    status: str,
    *,
    callback_id: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A callback body as the provider sends it (a fresh unique ``callback_id``)."""
    body: dict[str, Any] = {
        "callback_id": callback_id or f"stub-{uuid.uuid4().hex}",
        "tx_id": tx_id,
        "status": status,
        "occurred_at": iso(clock.utcnow()),
    }
    if reason is not None:
        body["reason"] = reason
    return body


def signed(
    body: dict[str, Any], *, timestamp: int | None = None, key: keyring.SigningKey | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw bytes and headers of a signed callback (current settlement key unless one
    is given; now unless a ``timestamp`` is given)."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    key = key or keyring.current(settlement.PURPOSE)
    ts = int(clock.time()) if timestamp is None else timestamp
    return raw, {
        "Content-Type": "application/json",
        settlement.TIMESTAMP_HEADER: str(ts),
        settlement.SIGNATURE_HEADER: settlement.signature_header(key.version, key.secret, ts, raw),
    }


def pending_conversions(older_than_s: float = 0.0, limit: int = 1000) -> list[int]:
    """tx ids of conversions still pending and at least ``older_than_s`` old, oldest first."""
    with db.autocommit() as conn:
        rows = conn.execute(
            text(
                "SELECT id FROM shop_purchases WHERE settlement_status = 'pending'"
                " AND created_at <= now() - make_interval(secs => :s) ORDER BY created_at, id"
                " LIMIT :limit"
            ),
            {"s": float(older_than_s), "limit": limit},
        ).scalars()
        return [int(r) for r in rows]


def http_sender(base_url: str, timeout_s: float = 10.0) -> Send:
    """POST to the webhook of the server at ``base_url`` (e.g. http://127.0.0.1:8000)."""
    url = base_url.rstrip("/") + WEBHOOK_PATH

    def send(raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        req = urllib.request.Request(url, data=raw, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                return exc.code, json.loads(payload or b"null")
            except ValueError:
                return exc.code, None

    return send


def settle_pending(send: Send, *, older_than_s: float = 0.0, void_every: int = 0) -> dict[str, Any]:
    """Send one signed callback per pending conversion: ``settled``, or ``voided`` for
    every ``void_every``-th (0 = never). Returns counts and the per-purchase answers."""
    results = []
    for n, tx_id in enumerate(pending_conversions(older_than_s), start=1):
        status = "voided" if void_every > 0 and n % void_every == 0 else "settled"
        raw, headers = signed(build_callback(tx_id, status))
        code, answer = send(raw, headers)
        results.append({"tx_id": tx_id, "status": status, "http": code, "answer": answer})
    return {
        "sent": len(results),
        "ok": sum(1 for r in results if r["http"] == 200),
        "settled": sum(1 for r in results if r["http"] == 200 and r["status"] == "settled"),
        "voided": sum(1 for r in results if r["http"] == 200 and r["status"] == "voided"),
        "results": results,
    }
