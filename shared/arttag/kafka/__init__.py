"""Kafka for every arttag process: topic names (``topics``) and their creation (``admin``), the one
producer configuration (``producer``) and the partition function it implies (``partitioning``),
consumers and reading to the end (``clients``), the compacted-topic follower (``follower``), the
publishing contract (``sink``) and the one dead-letter rule (``dead_letters``). Submodules import confluent-kafka; nothing here imports faust."""

from arttag.kafka.partitioning import murmur2, murmur2_partitioner, partition_for
from arttag.kafka.producer import (
    aiokafka_producer_options,
    make_producer,
    producer_config,
)

__all__ = [
    "aiokafka_producer_options",
    "make_producer",
    "murmur2",
    "murmur2_partitioner",
    "partition_for",
    "producer_config",
]
