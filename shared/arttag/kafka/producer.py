"""The one producer configuration of every arttag process that writes to Kafka.

Three guarantees, which callers cannot override:

- ``acks=all``: a record counts as written once every in-sync replica has it;
- idempotence: a retried send is written once, in order;
- murmur2 partitioning of the key (Kafka's Java default, see :mod:`arttag.kafka.partitioning`),
  so an artwork's records share a partition number on every topic. librdkafka's own default
  (``consistent_random``, CRC32) would put them elsewhere.

The confluent-kafka producers (API, backfill, replay, demo, bench) are built by
:func:`make_producer`; the faust worker's aiokafka producer takes
:func:`aiokafka_producer_options`. Other settings (``linger.ms``, timeouts) may vary per caller.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Producer

from arttag.kafka.partitioning import murmur2_partitioner
from arttag.settings import KafkaSettings

GUARANTEES: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "partitioner": "murmur2_random",
}

_DEFAULTS: dict[str, Any] = {"linger.ms": 5}


class LibrdkafkaLog:
    """librdkafka's log lines into Python logging (logger ``arttag.kafka.librdkafka``).

    An idempotent producer first asks the transaction coordinator for a producer id; on a
    fresh broker the coordinator is still loading and librdkafka logs a warning for each
    retry ("Failed to acquire idempotence PID ... Coordinator load in progress: retrying")
    although it recovers by itself. Those retries are logged at DEBUG; a failure that does
    not recover still reaches the caller as a delivery error.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("arttag.kafka.librdkafka")

    def log(self, level: int, msg: str, *args: Any) -> None:
        facility = args[0] if args else ""
        text = str(args[-1]) if args else msg
        if facility == "GETPID" and text.rstrip().endswith("retrying"):
            level = logging.DEBUG
        self.logger.log(level, msg, *args)


def producer_config(kafka: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """librdkafka configuration: connection from ``kafka``, the guarantees, then ``overrides``.

    Overrides use librdkafka's names (``linger.ms``, ``delivery.timeout.ms``...); changing a
    guarantee is refused.
    """
    clash = sorted(k for k in overrides if k in GUARANTEES and overrides[k] != GUARANTEES[k])
    if clash:
        raise ValueError(f"arttag producers always use {GUARANTEES}; cannot override {clash}")
    return {**kafka.confluent_config(), **_DEFAULTS, **overrides, **GUARANTEES}


def make_producer(kafka: KafkaSettings, **overrides: Any) -> Producer:
    """A confluent-kafka producer with :func:`producer_config`; librdkafka logs go to Python logging."""
    return Producer({**producer_config(kafka, **overrides), "logger": LibrdkafkaLog()})


def aiokafka_producer_options() -> dict[str, Any]:
    """The same guarantees under aiokafka's names, for the faust worker's producer."""
    return {"acks": "all", "enable_idempotence": True, "partitioner": murmur2_partitioner}
