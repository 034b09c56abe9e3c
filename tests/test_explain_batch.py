"""Explanations built a batch at a time say exactly what the tag-by-tag ones said, and scorers
trained on the same fields share one index and one similarity computation per batch."""

from __future__ import annotations

import gc
from datetime import datetime, timezone

import numpy as np
import pytest
import scipy.sparse as sp
from arttag.catalogue.record_words import RecordWords
from arttag.catalogue.records import load_catalogue
from arttag.catalogue.split import split_of
from arttag.catalogue.synthetic import write_synthetic_catalogue
from arttag.encoders import HashingEncoder
from arttag.events import (
    Explanation,
    ScorerContribution,
    TagSuggestion,
    TagSuggestionsPublished,
    TermEvidence,
    encode_event,
    json_form,
)
from arttag.model import explain as explain_module
from arttag.model.bundle import load_tagger
from arttag.model.explain import summarise
from arttag.model.readable import readable_evidence
from arttag.model.tagger import SuggestOptions
from arttag.model.training import train_bundle
from arttag.quality.auto_apply import mark_auto_apply
from arttag.scorers import tfidf as tfidf_module
from arttag.scorers.tfidf import rows_on_columns, similarities

FAST = {"reranker": {"max_iter": 60}}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain-batch")
    catalogue = write_synthetic_catalogue(root / "cat.jsonl.gz")
    train_bundle(catalogue, root / "bundle", HashingEncoder(), FAST)
    records, _ = load_catalogue(catalogue)
    held_out = [r.metadata for r in records if split_of(r.artwork_id) != "train"]
    return root / "bundle", held_out


@pytest.fixture(scope="module")
def tagger(bundle):
    return load_tagger(bundle[0], HashingEncoder())


def tag_by_tag(tagger, metas, options: SuggestOptions, max_evidence: int = 5) -> list[list[TagSuggestion]]:
    """The suggestions as they were built before batches: every published tag, every scorer,
    one :meth:`Scorer.explain` call each, each word naming the record's field it is in and the
    summary made of the evidence a reader can use, each decided anew."""
    batch, cands, ranked = tagger.rank(metas)
    ensemble, vocab = tagger.ensemble, tagger.vocabulary
    out = []
    for row, (meta, r) in enumerate(zip(metas, ranked)):
        assigned = {t.id for t in meta.tags}
        record = RecordWords(meta)
        suggestions = []
        for i, tag_index in enumerate(r.tags):
            if len(suggestions) >= options.limit:
                break
            tag = vocab.tags[int(tag_index)]
            confidence = float(min(max(r.probs[i], 0.0), 1.0))
            if confidence < options.min_confidence:
                break
            if not options.keeps(tag.id, tag.group, assigned):
                continue
            contributions, phrases = [], []
            for scorer, c in zip(ensemble.scorers, cands):
                score = float(r.source_scores[scorer.name][i])
                rank = int(r.source_ranks[scorer.name][i])
                if not scorer.cites(score, rank):
                    continue
                evidence = [TermEvidence(field=record.source(e.field, e.term), term=e.term, weight=e.weight)
                            if isinstance(e, TermEvidence) else e
                            for e in scorer.explain(batch, c, row, int(tag_index), max_evidence)]
                contributions.append(ScorerContribution(scorer=scorer.name, score=round(score, 6),
                                                        rank=rank or None, evidence=evidence))
                phrases += scorer.summarise_evidence(readable_evidence(evidence, record))
            proposing = r.proposed_by(i)
            suggestions.append(TagSuggestion(
                tag_id=tag.id, label=tag.label, group=tag.group, score=round(float(r.probs[i]), 6),
                confidence=round(confidence, 6), scorers=proposing, already_assigned=tag.id in assigned,
                explanation=Explanation(summary=summarise(tag.label, confidence, phrases, proposing),
                                        contributions=contributions)))
        out.append(suggestions)
    return out


def test_every_scorer_explains_a_batch_as_it_explains_each_tag(tagger, bundle):
    metas = bundle[1][:40]
    batch, cands, ranked = tagger.rank(metas)
    assert len(tagger.ensemble.scorers) == 9
    citing = set()
    for scorer, c in zip(tagger.ensemble.scorers, cands):
        # every candidate any scorer proposed, rows interleaved: what a batch's explanations ask for
        wanted = [(row, int(t)) for row, r in enumerate(ranked) for t in r.tags[:12]]
        wanted = sorted(wanted, key=lambda p: (p[1] % 3, p[0]))
        many = scorer.explain_many(batch, c, wanted, 5)
        one_by_one = [scorer.explain(batch, c, row, tag, 5) for row, tag in wanted]
        assert many == one_by_one, scorer.name
        if any(many):
            citing.add(scorer.name)
    # the synthetic catalogue has no groups or accession numbers; the others must have had something to say
    assert {"knn", "tfidf", "tfidf_artist", "linear", "semantic", "mention"} <= citing
    assert tagger.ensemble.scorers[0].explain_many(batch, cands[0], [], 5) == []


@pytest.mark.parametrize("options", [
    SuggestOptions(),
    SuggestOptions(limit=3, only_new=True),
    SuggestOptions(limit=25, min_confidence=0.05, exclude_groups=["places"]),
], ids=["default", "only-new", "long-filtered"])
def test_suggestions_equal_the_tag_by_tag_build(tagger, bundle, options):
    metas = bundle[1][:48]
    expected = tag_by_tag(tagger, metas, options)
    got = tagger.suggest(metas, options)
    assert [[s.model_dump() for s in tags] for tags in got] == [[s.model_dump() for s in tags] for tags in expected]
    assert sum(len(tags) for tags in got) > len(metas)  # there was something to compare
    # Built unvalidated, the models are the validated ones in every respect pydantic keeps.
    assert got == expected
    assert [[shape(s) for s in tags] for tags in got] == [[shape(s) for s in tags] for tags in expected]
    # The events the worker writes from the remembered JSON forms are the models' own JSON, byte for byte.
    for i, (fast, slow) in enumerate(zip(got, expected)):
        written = encode_event(event(i, fast))
        assert written == event(i, slow).model_dump_json().encode()
        assert written == event(i, fast).model_dump_json().encode()
        assert all(json_form(s) is json_form(s) for s in fast)  # remembered, not dumped again
        # a copy (auto_apply marked) is a new model without a form: serialised as usual
        marked = mark_auto_apply(fast, 0.0)
        assert [s.auto_apply for s in marked] == [not s.already_assigned for s in fast]
        assert encode_event(event(i, marked)) == event(i, marked).model_dump_json().encode()


def event(i: int, suggestions: list[TagSuggestion]) -> TagSuggestionsPublished:
    return TagSuggestionsPublished(
        suggestion_id=f"a{i}:1:0:m", artwork_id=f"a{i}", revision=1, content_hash="0" * 64, model_version="m",
        produced_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc), suggestions=suggestions)


def shape(model) -> tuple:
    """The model's type, the fields it was given (``model_fields_set``), and the same of every model inside."""
    def inner(value):
        if isinstance(value, list):
            return [inner(v) for v in value]
        return shape(value) if hasattr(value, "model_fields_set") else value

    return (type(model).__name__, sorted(model.model_fields_set),
            {name: inner(value) for name, value in model.__dict__.items()})


def test_scorers_trained_on_the_same_fields_share_the_index_and_its_similarities(tagger, bundle, monkeypatch):
    tfidf, artist, linear = (tagger.ensemble.scorer(n) for n in ("tfidf", "tfidf_artist", "linear"))
    assert tfidf.vectorizer is artist.vectorizer is linear.vectorizer
    assert tfidf.matrix is artist.matrix and tfidf.matrix_t is artist.matrix_t
    calls = []
    real = tfidf_module.similarities
    monkeypatch.setattr(tfidf_module, "similarities", lambda q, m: calls.append(m) or real(q, m))
    transforms = []
    real_transform = type(tfidf.vectorizer).transform
    monkeypatch.setattr(type(tfidf.vectorizer), "transform",
                        lambda self, fields: transforms.append(1) or real_transform(self, fields))
    metas = bundle[1][:20]
    shared = tagger.suggest(metas)
    assert len(calls) == 1 and len(transforms) == 1

    # A scorer whose index was replaced (as learning replaces it) computes its own, and nothing else changes.
    monkeypatch.setattr(artist, "matrix_t", artist.matrix_t.copy())
    calls.clear()
    assert tagger.suggest(metas) == shared
    assert len(calls) == 2


def test_similarities_are_the_sparse_product():
    rng = np.random.default_rng(7)
    matrix_t = sp.random(400, 300, density=0.02, format="csr", dtype=np.float32, random_state=rng)
    q = sp.random(9, 400, density=0.03, format="csr", dtype=np.float32, random_state=rng)
    q = sp.vstack([q, sp.csr_matrix((1, 400), dtype=np.float32)], format="csr")  # a query with no terms
    expected = (q @ matrix_t).toarray()
    got = similarities(q, matrix_t)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert got[-1].sum() == 0 and expected.any()


def test_rows_on_columns_is_scipy_fancy_indexing():
    rng = np.random.default_rng(3)
    matrix = sp.random(50, 80, density=0.1, format="csr", dtype=np.float32, random_state=rng)
    matrix = sp.vstack([matrix, sp.csr_matrix((1, 80), dtype=np.float32)], format="csr")  # an empty row
    rows = np.array([4, 50, 0, 17, 4])
    cols = np.array([70, 3, 12, 55, 0, 41])  # unsorted, as a query's terms may be
    np.testing.assert_array_equal(rows_on_columns(matrix, rows, cols), matrix[rows][:, cols].toarray())
    assert rows_on_columns(matrix, rows, np.zeros(0, dtype=np.int64)).shape == (5, 0)


def test_only_published_tags_are_explained(tagger, bundle, monkeypatch):
    asked = []
    real = explain_module.explain_picks

    def counting(scorer, c, batch, ranked, picks, *rest):
        asked.append(sum(len(p) for p in picks))
        return real(scorer, c, batch, ranked, picks, *rest)

    monkeypatch.setattr(explain_module, "explain_picks", counting)
    metas = bundle[1][:10]
    got = tagger.suggest(metas, SuggestOptions(limit=2))
    assert set(asked) == {sum(len(t) for t in got)} and max(asked) <= 20


def test_a_loaded_bundle_is_kept_out_of_the_collectors_full_passes(bundle):
    tagger = load_tagger(bundle[0], HashingEncoder())
    ids = tagger.ensemble.scorer("knn").ids
    assert gc.get_freeze_count() > 0
    assert not any(o is ids for o in gc.get_objects())  # frozen: no full collection traverses it
    assert gc.is_tracked(ids)  # an ordinary object otherwise, freed when no longer referenced
