"""``kafka`` group: forwards every event to its Kafka topic (SPEC §4, seed 002 §3).

Routing, validation and delivery live in :mod:`ccweb.kafka`; this module only turns
the producer's outcome into the worker's terms. A broker that is down, unreachable or
too slow raises :class:`worker.outage.SinkUnavailable`: the runner holds the batch and
retries it after a backoff, never dead-lettering, so the backlog waits in the Redis
streams until the broker returns (messages acknowledged before the failure are sent
again; Kafka consumers dedupe by ``event_id``). Envelopes that fail validation go to a
``.dlq`` topic and count as handled; a record the broker refuses for its content raises
an ordinary error (retried alone, dead-lettered to the Redis dead-letter stream).
"""

from __future__ import annotations

from collections.abc import Sequence

from ccweb.kafka.producer import BrokerUnavailable, Item, get_forwarder
from worker.entries import Entry
from worker.outage import SinkUnavailable

GROUP = "kafka"


def handle(entries: Sequence[Entry]) -> None:
    items = [Item(e.fields.get("data", ""), e.event_type, e.id) for e in entries]
    try:
        get_forwarder().forward(items)
    except BrokerUnavailable as exc:
        raise SinkUnavailable(f"Kafka: {exc}") from exc
