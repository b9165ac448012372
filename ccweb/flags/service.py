"""Reading and writing feature flags.

Reads (:func:`value`, :func:`value_for`, :func:`client_flags`) come from the process's
copy (:mod:`ccweb.flags.cache`) and cost no round trip. :func:`value` is the flag's
value for the server as a whole (operational switches: signup, kill switches, tuning);
:func:`value_for` and :func:`client_flags` apply tier/segment targeting and the rollout
for one player, from context the caller already holds.

Writes (:func:`put`) validate the type, bump the flag's ``version`` and announce the
change after commit (:func:`announce`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session
from sqlalchemy.types import String

from ccweb import effects
from ccweb.config import get_settings
from ccweb.errors import Conflict, ValidationFailed
from ccweb.flags import cache, registry
from ccweb.flags.rules import Flag, check_value, client_view, resolve, type_of
from ccweb.redis_client import get_redis


def flags() -> dict[str, Flag]:
    return cache.get_cache().snapshot()


def value(key: str, default: Any = None) -> Any:
    """The flag's value (no targeting), else the registry default, else ``default``."""
    flag = flags().get(key)
    return flag.value if flag is not None else registry.default(key, default)


def value_for(key: str, user_id: int, tier: str | None, segment: str | None) -> Any:
    """The flag as this player gets it (targeting and rollout applied)."""
    flag = flags().get(key)
    if flag is None:
        return registry.default(key)
    return resolve(flag, user_id, tier, segment)


def client_flags(user_id: int, tier: str | None, segment: str | None) -> dict[str, Any]:
    """The client-visible flags for this player; a known client-visible flag without a
    row shows its default."""
    stored = flags()
    out = {
        k: known.default()
        for k, known in registry.KNOWN.items()
        if known.client_visible and k not in stored
    }
    out.update(client_view(list(stored.values()), user_id, tier, segment))
    return out


def invalidate_cache() -> None:
    """Forget this process's copy (tests empty the table between tests)."""
    current = cache.current()
    if current is not None:
        current.invalidate()


# -- writes ------------------------------------------------------------------------------

_UPSERT = text(
    """
    INSERT INTO feature_flags (key, value, value_type, off_value, client_visible,
                               description, rollout_percent, target_tiers, target_segments,
                               version, updated_at)
    VALUES (:key, :value, :value_type, :off_value, :client_visible, :description,
            :rollout_percent, :target_tiers, :target_segments, 1, now())
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
        value_type = EXCLUDED.value_type, off_value = EXCLUDED.off_value,
        client_visible = EXCLUDED.client_visible, description = EXCLUDED.description,
        rollout_percent = EXCLUDED.rollout_percent, target_tiers = EXCLUDED.target_tiers,
        target_segments = EXCLUDED.target_segments,
        version = feature_flags.version + 1, updated_at = now()
    RETURNING key, value, value_type, off_value, client_visible, description,
              rollout_percent, target_tiers, target_segments, version, updated_at
    """
).bindparams(
    bindparam("value", type_=JSONB),
    bindparam("off_value", type_=JSONB(none_as_null=True)),
    bindparam("target_tiers", type_=ARRAY(String())),
    bindparam("target_segments", type_=ARRAY(String())),
)

_CURRENT = text(
    "SELECT key, value, value_type, off_value, client_visible, description, rollout_percent,"
    " target_tiers, target_segments, version, updated_at FROM feature_flags WHERE key = :key"
    " FOR UPDATE"
)


def put(session: Session, key: str, fields: dict[str, Any]) -> tuple[Flag, Flag | None]:
    """Create or replace a flag; returns (new, old). ``fields`` as ``PUT`` takes them:
    ``value`` (required), ``value_type`` (optional: a known key's registered type, else
    the stored type, else the value's), ``off_value``, ``client_visible``,
    ``description``, ``rollout_percent``, ``target_tiers``, ``target_segments``, and
    ``version`` (optional: 409 ``VERSION_CONFLICT`` unless it is the stored one)."""
    row = session.execute(_CURRENT, {"key": key}).mappings().first()
    old = Flag.from_row(row) if row is not None else None
    expected = fields.get("version")
    if expected is not None and expected != (old.version if old else 0):
        raise Conflict(
            "the flag changed since it was read",
            code="VERSION_CONFLICT",
            details={"version": old.version if old else 0},
        )
    known = registry.KNOWN.get(key)
    value_type = fields.get("value_type") or (
        known.value_type if known else old.value_type if old else type_of(fields.get("value"))
    )
    if known is not None and value_type != known.value_type:
        raise ValidationFailed(
            f"{key} is a {known.value_type} flag",
            details={"fields": [_field("value_type", f"must be {known.value_type}")]},
        )
    errors = []
    for field in ("value", "off_value"):
        v = fields.get(field)
        if field == "off_value" and v is None:
            continue
        problem = check_value(value_type, v) or (known.check(v) if known and known.check else None)
        if problem:
            errors.append(_field(field, problem))
    if errors:
        raise ValidationFailed(
            f"bad value for a {value_type} flag",
            details={"fields": errors, "value_type": value_type},
        )
    params = {
        "key": key,
        "value": fields["value"],
        "value_type": value_type,
        "off_value": fields.get("off_value"),
        "client_visible": _first(
            fields.get("client_visible"),
            old.client_visible if old else None,
            known.client_visible if known else False,
        ),
        "description": _first(
            fields.get("description"),
            old.description if old else None,
            known.description if known else None,
        ),
        "rollout_percent": fields.get("rollout_percent", 100),
        "target_tiers": fields.get("target_tiers") or None,
        "target_segments": fields.get("target_segments") or None,
    }
    new = Flag.from_row(session.execute(_UPSERT, params).mappings().one())
    effects.of(session).after(lambda: announce(new))
    return new, old


def _field(name: str, message: str) -> dict[str, str]:
    """One entry of ``details.fields``, as request validation reports them."""
    return {"field": name, "message": message, "type": "flag_value"}


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def announce(flag: Flag) -> None:
    """After commit: this process reloads at once, the others when they hear it."""
    invalidate_cache()
    get_redis().publish(cache.channel(get_settings()), f"{flag.key} {flag.version}")
