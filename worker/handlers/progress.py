"""``progress`` group: gameplay events (``game.round``, ``streak.claim``,
``shop.purchase``) advance events, missions and achievements
(:mod:`ccweb.liveops.progress`). A batch is one transaction that also records its
event ids, so redelivery after a crash never counts an event twice, and a crash
before commit loses nothing (the entries stay pending and are redelivered)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ccweb.db import in_transaction
from ccweb.liveops.progress import apply_facts
from ccweb.liveops.rules import PROGRESS_EVENT_TYPES, Fact, fact_from_envelope
from ccweb.metrics import PROGRESS_LAG
from worker.dedupe import claim_new
from worker.entries import Entry

GROUP = "progress"


def handle(entries: Sequence[Entry]) -> None:
    # The stream field says the type, so the progress events this group emits itself (and
    # every other type) are skipped without parsing. A malformed entry raises here,
    # failing the batch → its entries are retried one by one.
    relevant = [e for e in entries if e.event_type in PROGRESS_EVENT_TYPES]
    if not relevant:
        return
    # Every relevant event is recorded, even one that counts for nothing (a refused or
    # free purchase): "the group recorded every event id it handled" is what reconcile
    # checks, and what tells a lost event from one with no effect.
    parsed = [(e.envelope["event_id"], fact_from_envelope(e.envelope)) for e in relevant]
    facts = [f for _, f in parsed if f is not None]

    def tx(session) -> None:  # type: ignore[no-untyped-def]
        fresh = claim_new(session, GROUP, (event_id for event_id, _ in parsed))
        todo: list[Fact] = []
        for event_id, fact in parsed:
            if event_id in fresh:
                fresh.discard(event_id)  # the same event twice in one batch counts once
                if fact is not None:
                    todo.append(fact)
        apply_facts(session, todo)

    in_transaction(tx)
    now = time.time()
    for f in facts:
        PROGRESS_LAG.observe(max(0.0, now - f.ts.timestamp()))
