"""Kafka client configuration shared by every arttag process that writes: one producer
configuration (``producer``) and the partition function it implies (``partitioning``)."""

from arttag.kafka.partitioning import murmur2, murmur2_partitioner, partition_for
from arttag.kafka.producer import aiokafka_producer_options, make_producer, producer_config

__all__ = [
    "aiokafka_producer_options",
    "make_producer",
    "murmur2",
    "murmur2_partitioner",
    "partition_for",
    "producer_config",
]
