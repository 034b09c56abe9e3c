"""Tag labels mentioned in the metadata, weighted by how often a mention meant the tag.

Titles name what they show ("Padstow, St Issey and the Camel Estuary",
"Harwich Lighthouse"), and many of Tate's tags are exactly those names. This
scorer looks for every tag label (and its readable variants: "boat, sailing"
as "sailing boat", "Naples, Santa Lucia" also as "Santa Lucia", "Orvieto -
non-specific" as "Orvieto", "gravestone / tomb" as either) among the words of
each field (singular and plural alike), and scores a match with the share of
training artworks mentioning the label in that field that carry the tag,
smoothed towards the share for all labels of its kind (proper names, common
words):

``precision(tag, field) = (tagged + a * prior(kind, field)) / (mentions + a)``

A tag mentioned in several fields gets the noisy-or of its field precisions.
Because the prior needs no training use of the tag, a mention finds tags no
cataloguer ever assigned (a place name in a title, say), which the neighbour
scorers cannot. The explanation names the field and the words that matched,
with the learned precision as weight.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field

from arttag.events import Evidence, TermEvidence, term_evidence
from arttag.scorers.base import Batch, Candidates, Corpus, Pairs, Scorer, ScorerParams, top_k

FIELDS: tuple[str, ...] = ("title", "group_title", "other")
"""Where mentions are looked for; ``other`` is the description and inscription together."""
_OTHER = ("description", "inscription")
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset("a an and the of in on at to from with by for or as is are non specific".split())
MAX_WORDS = 5


def _stem(word: str) -> str:
    # Just enough morphology for labels against titles: plural "s"/"es"/"ies", nothing else.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower().replace("’", "'"))]


def label_variants(label: str) -> set[tuple[str, ...]]:
    """Word sequences that count as a mention of ``label``."""
    base = re.sub(r"\s*-\s*non-specific\s*$", "", label).strip().strip("'\"‘’“”").strip()
    texts = {base}
    for alt in re.split(r"\s+/\s+", base):
        texts.add(alt)
        parts = [p.strip() for p in alt.split(",") if p.strip()]
        if len(parts) == 2:
            texts.add(f"{parts[1]} {parts[0]}")  # "boat, sailing" -> "sailing boat"
            if parts[1][:1].isupper():
                texts.add(parts[1])  # "Naples, Santa Lucia" -> "Santa Lucia"
    out = set()
    for text in texts:
        seq = tuple(words(text))
        if seq and len(seq) <= MAX_WORDS and not all(w in _STOP for w in seq):
            out.add(seq)
    return out


def _kind(label: str) -> int:
    """0: common word ("bridge"), 1: proper name ("Purfleet", "Naples, Santa Lucia")."""
    return int(label[:1].isupper())


class MentionParams(ScorerParams):
    smoothing: float = Field(2.0, gt=0, description="Pseudo-mentions at the prior precision of the label's kind")


class MentionScorer(Scorer):
    name = "mention"
    Params = MentionParams
    params: MentionParams
    supervised = False
    extra_features = ("title", "group_title", "other", "log_mentions")

    def _fit(self, corpus: Corpus) -> None:
        self._build_index()
        n_tags = len(self.vocabulary)
        mentions = np.zeros((n_tags, len(FIELDS)))
        tagged = np.zeros((n_tags, len(FIELDS)))
        labels = corpus.labels.tocsr()
        for i, fields in enumerate(corpus.fields):
            carried = set(labels.indices[labels.indptr[i]:labels.indptr[i + 1]].tolist())
            for f, found in enumerate(self._matches(fields)):
                for t in found:
                    mentions[t, f] += 1
                    tagged[t, f] += t in carried
        kinds = np.array([_kind(t.label) for t in self.vocabulary])
        prior = np.zeros((2, len(FIELDS)))
        for k in (0, 1):
            m, a = mentions[kinds == k].sum(axis=0), tagged[kinds == k].sum(axis=0)
            prior[k] = np.where(m > 0, (a + 1.0) / (m + 2.0), 0.0)
        a = self.params.smoothing
        self.mentions = mentions
        self.precision = (tagged + a * prior[kinds]) / (mentions + a)

    def _build_index(self) -> None:
        index: dict[tuple[str, ...], list[int]] = {}
        for t, tag in enumerate(self.vocabulary):
            for seq in label_variants(tag.label):
                index.setdefault(seq, []).append(t)
        self.index = {k: np.array(v, dtype=np.int64) for k, v in index.items()}

    def _field_words(self, fields: dict[str, str]) -> list[list[str]]:
        other = " ".join(fields.get(n, "") for n in _OTHER)
        return [words(fields.get("title", "")), words(fields.get("group_title", "")), words(other)]

    def _matches(self, fields: dict[str, str]) -> list[dict[int, tuple[str, ...]]]:
        """Per field, tag -> the (longest) word sequence that mentioned it."""
        out = []
        for ws in self._field_words(fields):
            found: dict[int, tuple[str, ...]] = {}
            for n in range(MAX_WORDS, 0, -1):
                for i in range(len(ws) - n + 1):
                    seq = tuple(ws[i:i + n])
                    for t in self.index.get(seq, ()):
                        found.setdefault(int(t), seq)
            out.append(found)
        return out

    def _tag_precisions(self, matches: list[dict[int, tuple[str, ...]]], tags: np.ndarray) -> np.ndarray:
        """(len(tags) x fields) precision of each field's mention; 0 where the field does not mention it."""
        out = np.zeros((len(tags), len(FIELDS)))
        for f, found in enumerate(matches):
            for j, t in enumerate(tags.tolist()):
                if t in found:
                    out[j, f] = self.precision[t, f]
        return out

    @staticmethod
    def _noisy_or(p: np.ndarray) -> np.ndarray:
        return 1.0 - np.prod(1.0 - p, axis=1)

    def _score(self, batch: Batch, limit: int) -> Candidates:
        tags_out, scores_out, feats_out, state = [], [], [], []
        for fields in batch.fields:
            matches = self._matches(fields)
            found = np.array(sorted(set().union(*matches)), dtype=np.int64)
            prec = self._tag_precisions(matches, found)
            scores = self._noisy_or(prec) if len(found) else np.zeros(0)
            order = top_k(scores, limit)
            tags_out.append(found[order])
            scores_out.append(scores[order])
            feats_out.append(self._features(prec[order], found[order]))
            state.append(matches)
        return Candidates(self.name, tags_out, scores_out, feats_out, state=state)

    def _features(self, prec: np.ndarray, tags: np.ndarray) -> dict[str, np.ndarray]:
        feats = {f: prec[:, i] for i, f in enumerate(FIELDS)}
        feats["log_mentions"] = np.log1p(self.mentions[tags].sum(axis=1)) if len(tags) else np.zeros(0)
        return feats

    def tag_features(self, cands: Candidates, row: int, tags: np.ndarray) -> dict[str, np.ndarray]:
        return self._features(self._tag_precisions(cands.state[row], tags), tags)

    def _score_pairs(self, batch: Batch, cands: Candidates, pairs: Pairs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        prec = np.zeros((len(pairs), len(FIELDS)))
        for f in range(len(FIELDS)):
            found = sorted(r * pairs.n_tags + t for r, matches in enumerate(cands.state) for t in matches[f])
            hit = pairs.lookup(np.array(found, dtype=np.int64)) >= 0
            prec[hit, f] = self.precision[pairs.tags[hit], f]
        scores = self._noisy_or(prec) if len(pairs) else np.zeros(0)
        return scores, self._features(prec, pairs.tags)

    def _score_tags(self, batch: Batch, cands: Candidates, row: int, tags: np.ndarray) -> np.ndarray:
        return self._noisy_or(self._tag_precisions(cands.state[row], tags)) if len(tags) else np.zeros(0)

    def _explain(self, batch: Batch, cands: Candidates, row: int, tag: int, max_evidence: int) -> list[Evidence]:
        out = []
        for f, found in enumerate(cands.state[row]):
            if tag in found:
                out.append(TermEvidence(field=FIELDS[f], term=" ".join(found[tag]),
                                        weight=round(float(self.precision[tag, f]), 4)))
        return out[:max_evidence]

    def _explain_many(self, batch: Batch, cands: Candidates, wanted: Sequence[tuple[int, int]],
                      max_evidence: int) -> list[list[Evidence]]:
        out: list[list[Evidence]] = []
        for row, tag in wanted:
            found = [term_evidence(FIELDS[f], " ".join(matches[tag]), round(float(self.precision[tag, f]), 4))
                     for f, matches in enumerate(cands.state[row]) if tag in matches]
            out.append(found[:max_evidence])
        return out

    def summarise_evidence(self, evidence: Sequence[Evidence]) -> list[str]:
        return self._terms_phrase(evidence)

    def _save(self, directory: Path) -> None:
        np.savez_compressed(directory / "mentions.npz", mentions=self.mentions.astype(np.float32),
                            precision=self.precision.astype(np.float32))
        (directory / "fields.json").write_text(json.dumps(list(FIELDS)) + "\n")

    def _load(self, directory: Path) -> None:
        data = np.load(directory / "mentions.npz")
        self.mentions = data["mentions"].astype(np.float64)
        self.precision = data["precision"].astype(np.float64)
        self._build_index()
