"""``segments`` group: a player's RFM segment is recomputed soon after they buy.

Takes ``shop.purchase`` events with ``status: success`` (a refused purchase changes
nothing) and ``shop.settlement`` events with ``status: voided`` (a void removes a
conversion from F and M, and may remove the player's row; a pending conversion already
counts, so settling it changes nothing). One transaction per batch: the event ids are recorded
(:func:`worker.dedupe.claim_new`) and the distinct players of the fresh events are
recomputed in one statement (:func:`ccweb.segments.rfm.recompute`, which touches the
dashboards of players whose label changed). A redelivered event is skipped; recomputing
a player twice would be harmless anyway. ``cc_segment_realtime_lag_seconds`` is the
event's time → the batch committed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from ccweb import clock, events
from ccweb.db import in_transaction
from ccweb.events import parse_ts
from ccweb.segments import rfm
from ccweb.segments.metrics import REALTIME_LAG
from worker.dedupe import claim_new
from worker.entries import Entry

GROUP = "segments"
WANTED = {events.SHOP_PURCHASE: "success", events.SHOP_SETTLEMENT: "voided"}  # payload status


def _relevant(entry: Entry) -> tuple[str, int, datetime] | None:
    """(event id, player, event time) of an event that can change a segment, else None.
    A malformed envelope raises (the batch is then retried entry by entry)."""
    env = entry.envelope
    if env["payload"].get("status") != WANTED[env["event_type"]]:
        return None
    user_id = env["user_id"]
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ValueError(f"bad user_id {user_id!r}")
    return env["event_id"], user_id, parse_ts(env["ts"])


def handle(entries: Sequence[Entry]) -> None:
    # other event types are skipped by their stream field, without parsing
    parsed = [p for e in entries if e.event_type in WANTED if (p := _relevant(e))]
    if not parsed:
        return

    def tx(session) -> None:  # type: ignore[no-untyped-def]
        fresh = claim_new(session, GROUP, (event_id for event_id, _, _ in parsed))
        users = {user_id for event_id, user_id, _ in parsed if event_id in fresh}
        rfm.recompute(session, users, clock.utcnow())

    in_transaction(tx)
    now = time.time()
    for _, _, ts in parsed:
        REALTIME_LAG.observe(max(0.0, now - ts.timestamp()))
