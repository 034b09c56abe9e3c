"""The scorers' searches: int8-first finds what the exact product finds, ties go to the smaller
row, changed rows are found at once; the top-k kernel agrees with its numpy form."""

from __future__ import annotations

import numpy as np
import pytest
from arttag.scorers.search import InnerProductSearch
from arttag.scorers.topk import _top_k_numpy, top_k_with_values


def _unit(rng, n, dims=64):
    m = rng.normal(size=(n, dims)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def matrix():
    rng = np.random.default_rng(7)
    m = _unit(rng, 3000)
    # identical rows, as pages of one sketchbook with the same text: a group of 12 and pairs
    m[100:112] = m[2500]
    m[700] = m[10]
    return m


def _queries(matrix, rng, n=40):
    # near some rows (so the top of each list is tight), one exactly on the duplicated group
    q = matrix[rng.integers(0, len(matrix), n)] + 0.05 * rng.normal(size=(n, matrix.shape[1])).astype(np.float32)
    q[0] = matrix[2500]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_int8_search_finds_the_exact_top_rows(matrix):
    q = _queries(matrix, np.random.default_rng(1))
    exact = InnerProductSearch(matrix, "exact").search(q, 20)
    int8 = InnerProductSearch(matrix, "int8").search(q, 20)
    assert np.array_equal(exact[0], int8[0])
    np.testing.assert_allclose(exact[1], int8[1], atol=1e-5)
    assert np.all(np.diff(int8[1], axis=1) <= 0)


def test_equal_rows_are_returned_smaller_row_first_and_cut_at_the_smaller_rows(matrix):
    q = matrix[2500:2501]
    for mode in ("exact", "int8"):
        idx, sims = InnerProductSearch(matrix, mode).search(q, 5)
        # 13 rows equal the query (100..111 and 2500): the first five in row order
        assert idx[0].tolist() == [100, 101, 102, 103, 104], mode
        assert np.allclose(sims, 1.0, atol=1e-5)


def test_auto_mode_depends_on_the_rows():
    rng = np.random.default_rng(0)
    assert InnerProductSearch(_unit(rng, 100), "auto").mode == "exact"
    assert InnerProductSearch(np.zeros((9000, 8), np.float32), "auto").mode == "int8"


def test_changed_and_appended_rows_are_found_at_once(matrix, monkeypatch):
    rng = np.random.default_rng(3)
    m = matrix.copy()
    search = InnerProductSearch(m, "int8")
    q = _queries(m, rng, 10)
    search.search(q, 10)  # the int8 copy is made now
    # row 5 becomes the first query's twin; row 100 (the first of a group of equal rows) is
    # moved away; three rows are appended, one equal to the second query
    m[5] = q[0]
    m[100] = -m[100]
    grown = np.vstack([m, _unit(rng, 2), q[1:2]])
    search.changed(grown, [5, 100, len(m), len(m) + 1, len(m) + 2])
    idx, sims = search.search(q, 10)
    exact = InnerProductSearch(grown, "exact").search(q, 10)
    assert np.array_equal(idx, exact[0])
    assert idx[0, 0] == 5 and idx[1, 0] == len(m) + 2
    # the group's other rows still stand for it (row 5 now equals them: the first query lay on the group)
    on_group = search.search(grown[2500:2501], 3)[0]
    assert on_group[0].tolist() == [5, 101, 102]
    # many changes: the copy is made again, with the same answers
    monkeypatch.setattr("arttag.scorers.search.REBUILD_AFTER", 50)
    rows = np.arange(51)
    grown[rows] = _unit(rng, len(rows))
    search.changed(grown, rows)
    assert search._index is None
    assert np.array_equal(search.search(q, 10)[0], InnerProductSearch(grown, "exact").search(q, 10)[0])


@pytest.mark.parametrize("layout", ["C", "F"])
def test_top_k_kernel_matches_its_numpy_form_with_ties_and_nan(layout):
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 120))
        k = int(rng.integers(1, n + 3))
        values = rng.integers(0, 4, size=(5, n)).astype(np.float32)  # many ties
        if rng.random() < 0.3:
            values[rng.random(values.shape) < 0.2] = np.nan
        values = np.asarray(values, order=layout)
        idx, best = top_k_with_values(values, k)
        ref_idx, ref_best = _top_k_numpy(values, min(k, n))
        assert np.array_equal(idx, ref_idx) and np.array_equal(best, ref_best)
        # the largest first, and at equal values the smaller column first
        for row_idx, row_best in zip(idx, best):
            pairs = list(zip((-row_best).tolist(), row_idx.tolist()))
            assert pairs == sorted(pairs)


def test_same_artist_search_over_the_artists_works_only():
    from arttag.catalogue.records import load_catalogue
    from arttag.catalogue.synthetic import write_synthetic_catalogue
    from arttag.model.training import build_vocabulary, make_corpus, split_records
    from arttag.scorers import Batch
    from arttag.scorers.tfidf import SameArtistTfidfScorer, query_vectors, similarities
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        records, _ = load_catalogue(write_synthetic_catalogue(Path(tmp) / "cat.jsonl.gz"))
    splits = split_records(records)
    vocab = build_vocabulary(records, splits["train"])
    scorer = SameArtistTfidfScorer(vocab, {"neighbours": 8})
    scorer.fit(make_corpus(splits["train"], vocab, None, None))
    batch = Batch.from_metadata([r.metadata for r in splits["dev"][:40]])
    sims = similarities(query_vectors(batch, scorer.vectorizer), scorer.matrix_t)
    everything = scorer._topk_rows(scorer._eligible(batch, 0, sims), 8)
    own = scorer._top_neighbours(batch, 0, sims, 8)
    assert np.array_equal(everything[1], own[1])
    voting = everything[1] > 0
    assert voting.any() and np.array_equal(everything[0][voting], own[0][voting])


def test_knn_scorer_in_int8_agrees_with_exact_and_finds_a_learned_artwork_at_once(tmp_path):
    import scipy.sparse as sp
    from arttag.catalogue.records import load_catalogue
    from arttag.catalogue.synthetic import write_synthetic_catalogue
    from arttag.encoders import HashingEncoder
    from arttag.events import ArtworkMetadata
    from arttag.model.training import build_vocabulary, make_corpus, split_records
    from arttag.scorers import Batch
    from arttag.scorers.base import Corpus
    from arttag.scorers.knn import EmbeddingKnnScorer

    encoder = HashingEncoder()
    records, _ = load_catalogue(write_synthetic_catalogue(tmp_path / "cat.jsonl.gz"))
    splits = split_records(records)
    vocab = build_vocabulary(records, splits["train"])
    corpus = make_corpus(splits["train"], vocab, None, None)
    corpus.embeddings = encoder.encode(corpus.texts)
    scorers = {}
    for mode in ("exact", "int8"):
        scorers[mode] = EmbeddingKnnScorer(vocab, {"neighbours": 10, "search": mode})
        scorers[mode].fit(corpus)
    batch = Batch.from_metadata([r.metadata for r in splits["dev"][:30]])
    batch.embeddings = encoder.encode(batch.texts)
    assert scorers["int8"].searcher().mode == "int8"
    exact, int8 = (scorers[m].score(batch) for m in ("exact", "int8"))
    assert all(np.array_equal(a, b) for a, b in zip(exact.tags, int8.tags))
    # a curator's decision on a new page: its own text finds it first, at once
    page = ArtworkMetadata(title="Lighthouse at Dusk with Gulls", artists=["A. Painter"])
    learned = Corpus(ids=["P1"], texts=Batch.from_metadata([page]).texts, fields=Batch.from_metadata([page]).fields,
                     titles=[page.title], labels=sp.csr_matrix(np.eye(1, len(vocab), 0, dtype=np.float32)),
                     embeddings=encoder.encode(Batch.from_metadata([page]).texts))
    scorer = scorers["int8"]
    scorer.learn(learned)
    query = Batch.from_metadata([page])
    query.embeddings = encoder.encode(query.texts)
    idx, sims = scorer._neighbours(query)
    assert scorer.ids[idx[0][0]] == "P1" and sims[0][0] == pytest.approx(1.0, abs=1e-5)


def test_exact_search_runs_its_product_in_onnxruntime_until_the_matrix_changes(matrix, monkeypatch):
    monkeypatch.setattr("arttag.scorers.search.AUTO_INT8_ROWS", 1000)
    q = _queries(matrix, np.random.default_rng(5), 12)
    search = InnerProductSearch(matrix.copy(), "exact").prepare()
    assert search._product is not None
    idx, sims = search.search(q, 15)
    sims_ref = q @ matrix.T
    for row, (i, s) in enumerate(zip(idx, sims)):
        order = sorted(range(len(matrix)), key=lambda j: (-sims_ref[row, j], j))[:15]
        assert i.tolist() == order or np.allclose(np.sort(s), np.sort(sims_ref[row, order]), atol=1e-5)
        np.testing.assert_allclose(s, sims_ref[row, i], atol=1e-5)
    changed = search.matrix
    changed[3] = q[0]
    search.changed(changed, [3])
    assert search._product is None  # numpy from now on: the session holds the old matrix
    assert search.search(q[:1], 1)[0][0, 0] == 3
