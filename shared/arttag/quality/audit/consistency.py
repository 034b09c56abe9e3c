"""Labelling consistency: groups of near-identical artworks whose tags disagree.

Comparing all 63k artworks with each other is O(n^2), so artworks are first
blocked: by group title (the sketchbook or series a work belongs to), or, for
works without one, by their normalised title. Within a block, artworks whose
text embeddings are nearly identical are linked, and linked artworks form a
group. A group whose members carry different tags is a finding; per tag, how
often it splits such groups feeds the learnability diagnosis.

Only tagged artworks are compared: an untagged one is a coverage gap, not a
disagreement. A cheap ``prefilter`` encoder (the hashing one: shared words) first
keeps only artworks with a likely twin in their block, comparing the texts
without the group title they all share; only those are then encoded by the
real encoder (the full model text, so training's embedding cache applies).
Groups are formed around leaders, so they cannot chain through a sketchbook.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from arttag.catalogue.records import CatalogueRecord
from arttag.catalogue.text import build_text
from arttag.encoders.base import TextEncoder
from arttag.quality.audit.neighbours import histogram, leader_groups, similar_pairs

_SPACE = re.compile(r"\s+")
_UNINFORMATIVE = re.compile(r"^\W*(title not known|untitled|no title|unknown)\W*$", re.IGNORECASE)


def uninformative_title(title: str) -> bool:
    """``[title not known]``, ``Untitled``...: identical text there says nothing about the image."""
    return bool(_UNINFORMATIVE.match(title.strip()))


def block_key(record: CatalogueRecord) -> str:
    meta = record.metadata
    if meta.group_title and meta.group_title.strip():
        return "group: " + _SPACE.sub(" ", meta.group_title).strip().lower()
    return "title: " + _SPACE.sub(" ", meta.title).strip().lower()


def encode_texts(
    encoder: TextEncoder, texts: Sequence[str], batch_size: int = 256, progress: bool = True,
    desc: str = "artwork texts",
) -> np.ndarray:
    """Embeddings of ``texts``, each distinct text encoded once."""
    unique = sorted(set(texts))
    row_of = {t: i for i, t in enumerate(unique)}
    parts = []
    for start in tqdm(range(0, len(unique), batch_size), desc=desc, unit="batch", disable=not progress):
        parts.append(np.asarray(encoder.encode(unique[start:start + batch_size]), dtype=np.float32))
    vectors = np.vstack(parts) if parts else np.zeros((0, encoder.dim), dtype=np.float32)
    return vectors[[row_of[t] for t in texts]]


def _prefilter(
    tagged: Sequence[CatalogueRecord], blocks: dict[str, list[int]], encoder: TextEncoder,
    threshold: float, batch_size: int, progress: bool,
) -> dict[str, list[int]]:
    """Blocks reduced to the artworks with a likely near-identical twin by the cheap encoder."""
    order = sorted(i for members in blocks.values() for i in members)
    position = {i: p for p, i in enumerate(order)}
    # Every member of a block shares its group title; leave it out so the differences count.
    texts = [build_text(tagged[i].metadata.model_copy(update={"group_title": None})) for i in order]
    vectors = encode_texts(encoder, texts, batch_size, progress, desc="prefilter texts")
    kept: dict[str, list[int]] = {}
    for key, members in blocks.items():
        pairs = similar_pairs(vectors[[position[i] for i in members]], threshold)
        keep = sorted({members[a] for a, _, _ in pairs} | {members[b] for _, b, _ in pairs})
        if len(keep) > 1:
            kept[key] = keep
    return kept


def labelling_consistency(
    records: Sequence[CatalogueRecord],
    encoder: TextEncoder,
    threshold: float = 0.95,
    max_groups: int = 300,
    max_members: int = 25,
    batch_size: int = 256,
    progress: bool = True,
    prefilter: TextEncoder | None = None,
    prefilter_threshold: float = 0.9,
) -> dict[str, Any]:
    tagged = [r for r in records if r.metadata.tags]
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(tagged):
        blocks[block_key(r)].append(i)
    blocks = {k: v for k, v in blocks.items() if len(v) > 1}
    blocked = sum(len(v) for v in blocks.values())
    if prefilter is not None and blocks:
        blocks = _prefilter(tagged, blocks, prefilter, prefilter_threshold, batch_size, progress)
    needed = sorted(i for members in blocks.values() for i in members)
    position = {i: p for p, i in enumerate(needed)}
    vectors = encode_texts(encoder, [build_text(tagged[i].metadata) for i in needed], batch_size, progress)

    labels: dict[str, str] = {}
    for r in tagged:
        for t in r.metadata.tags:
            labels.setdefault(t.id, t.label or t.id)

    groups: list[dict[str, Any]] = []
    grouped_artworks = 0
    tag_split: Counter[str] = Counter()
    tag_agreed: Counter[str] = Counter()
    for key, members in tqdm(sorted(blocks.items()), desc="consistency blocks", unit="block",
                             disable=not progress):
        block_vectors = vectors[[position[i] for i in members]]
        pairs = similar_pairs(block_vectors, threshold)
        if not pairs:
            continue
        for component, min_sim in leader_groups(len(members), pairs):
            grouped_artworks += len(component)
            recs = [tagged[members[c]] for c in component]
            tag_sets = [frozenset(t.id for t in r.metadata.tags) for r in recs]
            union = frozenset().union(*tag_sets)
            common = frozenset.intersection(*tag_sets)
            for tag in union:
                (tag_agreed if tag in common else tag_split)[tag] += 1
            if union == common:
                continue
            carriers = Counter(t for s in tag_sets for t in s)
            groups.append({
                "block": key,
                "uninformative_titles": all(uninformative_title(r.metadata.title) for r in recs),
                "size": len(recs),
                "min_similarity": round(min_sim, 4),
                "agreement": round(len(common) / len(union), 4),
                "common_tags": sorted(labels[t] for t in common),
                "disagreeing_tags": sorted(
                    ({"tag_id": t, "label": labels[t], "carried_by": carriers[t]} for t in union - common),
                    key=lambda d: (-d["carried_by"], d["label"]),
                ),
                "members": [
                    {
                        "artwork_id": r.artwork_id,
                        "title": r.metadata.title,
                        "tags": sorted(t.label or t.id for t in r.metadata.tags),
                    }
                    for r in recs[:max_members]
                ],
            })
    # Mostly-agreeing groups first: one member lacking a tag the others share is the likeliest
    # omission. Groups sharing little (generic titles like "Shipping" across a sketchbook) come
    # later, and works titled "[title not known]" last: their text cannot tell the images apart.
    groups.sort(key=lambda g: (g["uninformative_titles"], -g["agreement"], -g["size"], g["block"]))
    per_tag = {
        t: {
            "label": labels[t],
            "split": tag_split[t],
            "agreed": tag_agreed[t],
            "inconsistency": round(tag_split[t] / (tag_split[t] + tag_agreed[t]), 4),
        }
        for t in set(tag_split) | set(tag_agreed)
    }
    return {
        "encoder": encoder.name,
        "threshold": threshold,
        "tagged_artworks": len(tagged),
        "artworks_in_blocks": blocked,
        "prefilter": None if prefilter is None else {"encoder": prefilter.name, "threshold": prefilter_threshold},
        "blocks_compared": len(blocks),
        "artworks_compared": len(needed),
        "artworks_in_near_identical_groups": grouped_artworks,
        "inconsistent_groups": len(groups),
        "agreement_histogram": histogram([g["agreement"] for g in groups]),
        "inconsistent_groups_uninformative_titles": sum(g["uninformative_titles"] for g in groups),
        "shown": min(len(groups), max_groups),
        "groups": groups[:max_groups],
        "per_tag": per_tag,
    }
