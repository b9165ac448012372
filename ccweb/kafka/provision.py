"""``python -m ccweb.kafka.provision [--partitions N] [--retention-hours H] [--replication R]``

Creates every topic the forwarder writes to (:data:`ccweb.kafka.topics.TOPICS`) and its
``.dlq`` (plus ``unrouted.dlq``), with the deployment's prefix (``CC_KAFKA_TOPIC_PREFIX``)
on the broker of ``KAFKA_BOOTSTRAP_SERVERS``. Idempotent: topics that exist are left as
they are and reported (with a warning when they have fewer partitions than asked —
partitions are never changed here, because adding some moves keys to other partitions
and breaks their order).

Main topics get ``--partitions`` (default 4); dead-letter topics one partition (seed 002
§3), so their messages stay in arrival order. Retention is ``retention.ms``
(``--retention-hours``, default 7 days; ``--dlq-retention-hours`` default 14 days, so
refused messages outlive the data they could be repaired into).

Tansu (the development and test broker) answers CreateTopics with partitions and
configs, and ListTopics/DescribeTopics report the partitions; it returns no configs
from DescribeConfigs and its memory storage does not delete by ``retention.ms``, so
retention is only enforced on a real Kafka cluster. Tansu also creates a topic that a
producer writes to before it was provisioned (with its default partition count and no
retention): the forwarder works without this command there, but only provisioned
topics have the partitions and retention asked for, so run it before the worker. The
replication factor must not exceed the broker count (1 on a single broker).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka import errors as kerr
from kafka.admin import NewTopic

from ccweb.config import get_settings
from ccweb.kafka import topics
from ccweb.kafka.producer import TOPIC_PREFIX_ENV, topic_prefix

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DEFAULT_PARTITIONS = 4
DEFAULT_RETENTION_HOURS = 7 * 24
DEFAULT_DLQ_RETENTION_HOURS = 14 * 24


@dataclass(frozen=True)
class TopicSpec:
    name: str  # the broker's name (prefixed)
    partitions: int
    retention_ms: int


@dataclass
class Report:
    created: list[str]
    existing: dict[str, int]  # name → partitions it has
    too_few_partitions: list[str]


def specs(
    prefix: str = "",
    partitions: int = DEFAULT_PARTITIONS,
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    dlq_retention_hours: float = DEFAULT_DLQ_RETENTION_HOURS,
) -> list[TopicSpec]:
    main = [
        TopicSpec(topics.topic_name(prefix, t), partitions, int(retention_hours * HOUR_MS))
        for t in topics.TOPICS
    ]
    dlq = [
        TopicSpec(topics.topic_name(prefix, t), 1, int(dlq_retention_hours * HOUR_MS))
        for t in topics.DLQ_TOPICS
    ]
    return main + dlq


def provision(
    bootstrap_servers: str,
    wanted: Sequence[TopicSpec],
    replication: int = 1,
    timeout_ms: int = 10_000,
) -> Report:
    """Create the missing topics of ``wanted``; report the ones already there."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id="ccweb-provision",
        request_timeout_ms=timeout_ms,
    )
    try:
        return _provision(admin, wanted, replication, timeout_ms)
    finally:
        admin.close()


def _partitions(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}


def _provision(
    admin: KafkaAdminClient, wanted: Sequence[TopicSpec], replication: int, timeout_ms: int
) -> Report:
    present = set(admin.list_topics())
    report = Report(created=[], existing={}, too_few_partitions=[])
    for spec in wanted:
        if spec.name in present:
            continue
        try:
            admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        spec.partitions,
                        replication,
                        topic_configs={"retention.ms": str(spec.retention_ms)},
                    )
                ],
                timeout_ms=timeout_ms,
            )
            report.created.append(spec.name)
        except kerr.TopicAlreadyExistsError:  # created meanwhile by someone else
            present.add(spec.name)
    by_name = {s.name: s for s in wanted}
    report.existing = _partitions(admin, sorted(n for n in present if n in by_name))
    report.too_few_partitions = [n for n, p in report.existing.items() if p < by_name[n].partitions]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccweb.kafka.provision")
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    parser.add_argument("--retention-hours", type=float, default=DEFAULT_RETENTION_HOURS)
    parser.add_argument("--dlq-retention-hours", type=float, default=DEFAULT_DLQ_RETENTION_HOURS)
    parser.add_argument("--replication", type=int, default=1)
    parser.add_argument(
        "--bootstrap", default=None, help="default: KAFKA_BOOTSTRAP_SERVERS from the environment"
    )
    parser.add_argument("--prefix", default=None, help=f"default: ${TOPIC_PREFIX_ENV}")
    args = parser.parse_args(argv)
    if args.partitions < 1 or args.replication < 1 or args.retention_hours <= 0:
        parser.error("--partitions and --replication must be >= 1, --retention-hours > 0")
    bootstrap = args.bootstrap or get_settings().kafka_bootstrap_servers
    if not bootstrap:
        parser.error("no broker: set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap")
    prefix = topic_prefix() if args.prefix is None else args.prefix
    wanted = specs(prefix, args.partitions, args.retention_hours, args.dlq_retention_hours)
    try:
        report = provision(bootstrap, wanted, args.replication)
    except kerr.KafkaError as exc:
        print(f"provisioning failed: {exc}", file=sys.stderr)
        return 1
    for name in report.created:
        print(f"created  {name}")
    for name, parts in report.existing.items():
        if name not in report.created:
            print(f"exists   {name} ({parts} partitions)")
    for name in report.too_few_partitions:
        print(
            f"WARNING  {name} has fewer partitions than {args.partitions}; not changed",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
