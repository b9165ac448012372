"""Purchase receipts: a canonical JSON document, its sha256 ``integrity_hash`` and an HMAC
``signature`` with the ``signature_version`` of the key that made it.

The canonical form is compact JSON with sorted keys (UTF-8), so any party holding the
receipt recomputes the same bytes. The hash detects a changed receipt; the HMAC (keyed
by :mod:`ccweb.shop.keyring`, purpose ``receipt``) proves the server issued it. A
signature verifies while its key version is ``current`` or ``previous``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb.shop import keyring

PURPOSE = "receipt"


@dataclass(frozen=True)
class Seal:
    integrity_hash: str
    signature: str
    signature_version: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "integrity_hash": self.integrity_hash,
            "signature": self.signature,
            "signature_version": self.signature_version,
        }


def canonical(receipt: dict[str, Any]) -> bytes:
    return json.dumps(receipt, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def integrity_hash(receipt: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(receipt)).hexdigest()


def _mac(secret: bytes, digest: str) -> str:
    return hmac.new(secret, digest.encode(), hashlib.sha256).hexdigest()


def seal(receipt: dict[str, Any], conn: Connection | Session | None = None) -> Seal:
    """Hash and sign ``receipt`` with the current receipt key."""
    key = keyring.current(PURPOSE, conn)
    digest = integrity_hash(receipt)
    return Seal(digest, _mac(key.secret, digest), key.version)


def _same(expected: str, given: object) -> bool:
    """Constant-time equality that also takes what a client may send instead of hex: on
    ``str`` arguments ``hmac.compare_digest`` raises ``TypeError`` for non-ASCII text
    (a 500 for a forged receipt), on bytes it never does."""
    return hmac.compare_digest(expected.encode(), str(given).encode())


@dataclass(frozen=True)
class Verdict:
    valid: bool
    integrity_ok: bool
    signature_ok: bool
    key_state: str | None  # current / previous; None when the version cannot verify

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "integrity_ok": self.integrity_ok,
            "signature_ok": self.signature_ok,
            "key_state": self.key_state,
        }


def verify(
    receipt: dict[str, Any], integrity_hash_: str, signature: str, signature_version: int
) -> Verdict:
    """Check a receipt against its hash and signature (constant-time comparisons)."""
    digest = integrity_hash(receipt)
    integrity_ok = _same(digest, integrity_hash_)
    key = keyring.verifying(PURPOSE, int(signature_version))
    signature_ok = key is not None and _same(_mac(key.secret, str(integrity_hash_)), signature)
    return Verdict(
        integrity_ok and signature_ok,
        integrity_ok,
        signature_ok,
        key.state if key is not None else None,
    )
