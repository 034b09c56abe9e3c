"""Creating arttag's topics with the Kafka AdminClient, idempotently."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from arttag.errors import ArttagError
from arttag.kafka.topics import TOPICS, TopicSpec, topic_name
from arttag.settings import KafkaSettings

log = logging.getLogger(__name__)


def admin_client(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(kafka.confluent_config())


def create_topics(
    kafka: KafkaSettings, specs: tuple[TopicSpec, ...] = TOPICS, timeout_s: float = 30.0
) -> dict[str, str]:
    """Create missing topics; returns topic -> "created" | "exists"."""
    admin = admin_client(kafka)
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise ArttagError(
            f"cannot reach Kafka at {kafka.bootstrap_servers}: {exc}", bootstrap=kafka.bootstrap_servers
        ) from exc
    outcome: dict[str, str] = {}
    wanted = []
    for spec in specs:
        name = topic_name(spec.name, kafka.topic_prefix)
        if name in existing:
            outcome[name] = "exists"
        else:
            wanted.append(
                NewTopic(
                    name,
                    num_partitions=kafka.partitions,
                    replication_factor=kafka.replication_factor,
                    config=spec.config(),
                )
            )
    if wanted:
        for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
            try:
                future.result()
                outcome[name] = "created"
                log.info("created topic %s", name)
            except KafkaException as exc:
                if exc.args and exc.args[0].code() == 36:  # TOPIC_ALREADY_EXISTS: a racing creator
                    outcome[name] = "exists"
                else:
                    raise ArttagError(f"cannot create topic {name}: {exc}", topic=name) from exc
        await_visible(admin, [name for name, v in outcome.items() if v == "created"], kafka.partitions, timeout_s)
    return outcome


class MetadataClient(Protocol):
    """What reads the cluster metadata: an AdminClient, a Consumer or a Producer."""

    def list_topics(self, topic: str | None = ..., timeout: float = ...) -> Any: ...


def await_visible(client: MetadataClient, names: list[str], partitions: int, timeout_s: float,
                  poll_s: float = 0.1) -> bool:
    """Wait until the cluster metadata lists every topic in ``names`` with all ``partitions``.

    A created topic reaches the brokers' metadata a moment after the controller accepted it, and
    its partitions may appear one by one; a consumer or ``arttag tail`` started in between is told
    the topic does not exist, or never reads a partition it did not see. Returns False (and logs)
    when some are still missing after ``timeout_s``."""
    if not names:
        return True
    deadline = time.monotonic() + timeout_s
    while True:
        topics = client.list_topics(timeout=max(0.1, deadline - time.monotonic())).topics
        missing = [n for n in names
                   if n not in topics or topics[n].error is not None or len(topics[n].partitions) < partitions]
        if not missing:
            return True
        if time.monotonic() >= deadline:
            log.warning("topics not yet in the cluster metadata with %d partitions after %.0f s: %s",
                        partitions, timeout_s, missing)
            return False
        time.sleep(poll_s)
