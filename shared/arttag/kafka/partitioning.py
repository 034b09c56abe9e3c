"""Which partition a key goes to: Kafka's default (Java) partitioner, murmur2 of the key bytes.

Every arttag producer partitions this way (librdkafka ``murmur2_random``, aiokafka's
default), so one artwork's records carry the same partition number on every topic with
the same partition count. A consumer can use :func:`partition_for` to find an artwork's
partition without reading the topic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's ``Utils.murmur2`` computes it, as an unsigned 32-bit integer."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a keyed record: ``toPositive(murmur2(key)) % partitions``, as in Java."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def murmur2_partitioner(key: bytes | None, all_partitions: Sequence[int],
                        available: Sequence[int]) -> int:
    """The same rule with aiokafka's (and so faust's) partitioner signature.

    Records without a key (none of arttag's) go to a random available partition.
    """
    if key is None:
        return random.choice(list(available) or list(all_partitions))
    return all_partitions[partition_for(key, len(all_partitions))]
