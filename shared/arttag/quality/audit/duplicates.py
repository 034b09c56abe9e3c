"""Near-duplicate tags: labels that differ only in case, accents, punctuation, word order or plural,
and labels whose embeddings are nearly identical (``Jacob - ladder`` / ``Jacob's ladder``).

Embeddings rate structured siblings very close (``Luke, chapter 3`` / ``Luke, chapter 4``,
``Venice, Palazzo Reale`` / ``Venice, Palazzo Rezzonico``, ``George I`` / ``George II``); those
are distinct on purpose, so pairs whose numbers differ, or that share the part before the first
comma and differ after it, are left out unless nearly identical (cosine >= 0.95: typos).

Each finding names its tags with usage counts and example artworks, and
proposes the most used tag as the one to keep, so a curator can merge the
others into it or write definitions that tell them apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from arttag.catalogue.records import CatalogueRecord
from arttag.encoders.base import TextEncoder
from arttag.quality.audit.neighbours import similar_pairs
from arttag.quality.audit.usage import tag_table

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_NON_SPECIFIC = re.compile(r"\s*-\s*non-specific\s*$", re.IGNORECASE)


_NUMBER = re.compile(r"\b(?:\d+|[IVX]+)\b")
SIBLING_MAX_SIMILARITY = 0.95


def fold_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _words(label: str) -> list[str]:
    return _PUNCT.sub(" ", fold_accents(_NON_SPECIFIC.sub("", label))).lower().split()


def structured_siblings(a: str, b: str) -> bool:
    """Distinct on purpose: different numbers (chapters, regnal numerals, years), or the same
    head before the first comma with a different specific part after it."""
    na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
    if na and nb and na != nb:
        return True
    if "," in a and "," in b:
        (head_a, tail_a), (head_b, tail_b) = a.split(",", 1), b.split(",", 1)
        if head_a.strip().lower() != head_b.strip().lower():
            return False
        words_a, words_b = set(_words(tail_a)), set(_words(tail_b))
        # "seascape, stormy" / "seascape, stormy, night" refine each other; they are not siblings.
        return not (words_a <= words_b or words_b <= words_a)
    return False


def singular(word: str) -> str:
    """A crude English singular, enough to pair ``bridge``/``bridges``, ``city``/``cities``, ``church``/``churches``."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def lexical_key(label: str) -> str:
    """Labels with the same key differ only in case, punctuation, word order or plural."""
    return " ".join(sorted(singular(w) for w in _words(label)))


def difference_kind(a: str, b: str) -> str:
    """The smallest difference between two labels: same label, case, accents, punctuation, word order,
    plural or other."""
    if a == b:
        return "same label"
    if a.lower() == b.lower():
        return "case"
    if fold_accents(a).lower() == fold_accents(b).lower():
        return "accents"
    wa, wb = _words(a), _words(b)
    if wa == wb:
        return "punctuation"
    if sorted(wa) == sorted(wb):
        return "word order"
    if sorted(singular(w) for w in wa) == sorted(singular(w) for w in wb):
        return "plural"
    return "other"


def qualified_variants(table: dict[str, dict[str, Any]], describe: Any) -> list[dict[str, Any]]:
    """Tags labelled ``base, qualifier`` beside a tag labelled ``base`` in the same group
    ("townscape" and "townscape, distant"): a curator should define how they differ, or merge them.

    Embeddings of such pairs are often only moderately close (the qualifier moves them), so
    they are found by their labels.
    """
    base_of: dict[tuple[str, str | None], str] = {}
    for tag_id, row in sorted(table.items(), key=lambda kv: (-kv[1]["usage"], kv[0])):
        base_of.setdefault((lexical_key(row["label"]), row["group"]), tag_id)
    variants: dict[str, list[str]] = defaultdict(list)
    for tag_id, row in table.items():
        label = _NON_SPECIFIC.sub("", row["label"])
        if "," not in label:
            continue
        head = label.split(",", 1)[0]
        base = base_of.get((lexical_key(head), row["group"]))
        if base is not None and base != tag_id:
            variants[base].append(tag_id)
    groups = []
    for base, ids in variants.items():
        ids.sort(key=lambda i: (-table[i]["usage"], table[i]["label"]))
        groups.append({
            "base": describe(base),
            "variants": [describe(i) for i in ids],
            "total_usage": table[base]["usage"] + sum(table[i]["usage"] for i in ids),
        })
    groups.sort(key=lambda g: (-g["total_usage"], g["base"]["label"]))
    return groups


def embedding_label(label: str) -> str:
    return _NON_SPECIFIC.sub("", label).strip()


def _examples(records: Sequence[CatalogueRecord], per_tag: int) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in records:
        for t in r.metadata.tags:
            if len(out[t.id]) < per_tag:
                out[t.id].append({"artwork_id": r.artwork_id, "title": r.metadata.title})
    return out


def near_duplicate_tags(
    records: Sequence[CatalogueRecord],
    encoder: TextEncoder | None,
    threshold: float = 0.85,
    examples: int = 3,
    max_pairs: int = 500,
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    table = tag_table(records)
    ex = _examples(records, examples)

    def describe(tag_id: str) -> dict[str, Any]:
        return {**table[tag_id], "examples": ex.get(tag_id, [])}

    by_key: dict[str, list[str]] = defaultdict(list)
    for tag_id, row in table.items():
        key = lexical_key(row["label"])
        if key:
            by_key[key].append(tag_id)
    lexical = []
    lexical_pairs: set[frozenset[str]] = set()
    for key, ids in by_key.items():
        if len(ids) < 2:
            continue
        ids.sort(key=lambda i: (-table[i]["usage"], table[i]["label"]))
        keep = ids[0]
        kinds = sorted({difference_kind(table[keep]["label"], table[i]["label"]) for i in ids[1:]})
        lexical.append({
            "key": key,
            "kinds": kinds,
            "keep": keep,
            "total_usage": sum(table[i]["usage"] for i in ids),
            "tags": [
                {**describe(i), "difference": None if i == keep else difference_kind(table[keep]["label"], table[i]["label"])}
                for i in ids
            ],
        })
        lexical_pairs.update(frozenset((a, b)) for a in ids for b in ids if a != b)
    lexical.sort(key=lambda g: (-g["total_usage"], g["key"]))

    qualified = qualified_variants(table, describe)

    semantic: list[dict[str, Any]] = []
    semantic_total = 0
    siblings = 0
    if encoder is not None and len(table) > 1:
        ids = sorted(table)
        labels = [embedding_label(table[i]["label"]) for i in ids]
        unique = sorted(set(labels))
        chunks = []
        for start in tqdm(range(0, len(unique), batch_size), desc="tag labels", unit="batch",
                          disable=not progress):
            chunks.append(encoder.encode(unique[start:start + batch_size]))
        import numpy as np

        vectors = np.vstack(chunks).astype(np.float32)
        row_of = {label: k for k, label in enumerate(unique)}
        # Tags whose cleaned labels are identical are lexical findings already; compare distinct labels.
        tags_of: dict[int, list[str]] = defaultdict(list)
        for tag_id, label in zip(ids, labels):
            tags_of[row_of[label]].append(tag_id)
        pairs = similar_pairs(vectors, threshold)
        found = []
        for i, j, sim in pairs:
            if sim < SIBLING_MAX_SIMILARITY and structured_siblings(unique[i], unique[j]):
                siblings += 1
                continue
            for a in tags_of[i]:
                for b in tags_of[j]:
                    if frozenset((a, b)) in lexical_pairs:
                        continue
                    if (table[b]["usage"], table[a]["label"]) > (table[a]["usage"], table[b]["label"]):
                        a, b = b, a
                    found.append((sim, a, b))
        found.sort(key=lambda f: (-f[0], -(table[f[1]]["usage"] + table[f[2]]["usage"]), f[1], f[2]))
        semantic_total = len(found)
        semantic = [
            {
                "similarity": round(sim, 4),
                "keep": a,
                "same_group": table[a]["group"] == table[b]["group"],
                "tags": [describe(a), describe(b)],
            }
            for sim, a, b in found[:max_pairs]
        ]
    return {
        "lexical": {"count": len(lexical), "groups": lexical},
        "qualified": {"count": len(qualified), "groups": qualified},
        "semantic": {
            "encoder": getattr(encoder, "name", None),
            "threshold": threshold,
            "count": semantic_total,
            "structured_siblings_left_out": siblings,
            "shown": len(semantic),
            "pairs": semantic,
        },
    }
