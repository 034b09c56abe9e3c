"""The deterministic train/dev split rule, by a hash of the artwork id.

``bucket(id) = int(sha256("arttag-split-v1:" + id)[:8], 16) % 100``

* buckets 0-9   -> ``dev``   (10%: held out for evaluation only)
* buckets 10-24 -> ``rerank`` (15%: scorers never see it; the ensemble's re-ranker learns on it)
* buckets 25-99 -> ``train`` (75%: the scorers learn on it)

The rule depends only on the id, so an artwork stays in its split as the
catalogue grows and every run, machine and tool agrees.
"""

from __future__ import annotations

import hashlib
from typing import Literal

SPLIT_RULE = "sha256('arttag-split-v1:'+id)[:8] % 100: 0-9 dev, 10-24 rerank, 25-99 train"

Split = Literal["train", "rerank", "dev"]


def bucket(artwork_id: str) -> int:
    digest = hashlib.sha256(f"arttag-split-v1:{artwork_id}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def split_of(artwork_id: str) -> Split:
    b = bucket(artwork_id)
    if b < 10:
        return "dev"
    if b < 25:
        return "rerank"
    return "train"
