"""Scorers on the synthetic catalogue: they find the known tags and explain themselves faithfully."""

from __future__ import annotations

import numpy as np
import pytest
from arttag.catalogue.records import load_catalogue
from arttag.catalogue.synthetic import write_synthetic_catalogue
from arttag.encoders import HashingEncoder
from arttag.errors import ConfigurationError, ModelError
from arttag.events import (
    ArtworkMetadata,
    NeighbourEvidence,
    TagTextEvidence,
    TermEvidence,
)
from arttag.model.training import build_vocabulary, make_corpus, split_records
from arttag.scorers import Batch, get_scorer_class
from arttag.scorers.knn import EmbeddingKnnScorer
from arttag.scorers.semantic import SemanticScorer
from arttag.scorers.tfidf import TfidfKnnScorer

ENCODER = HashingEncoder()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = write_synthetic_catalogue(tmp_path_factory.mktemp("syn") / "cat.jsonl.gz")
    records, report = load_catalogue(path)
    splits = split_records(records)
    vocab = build_vocabulary(records, splits["train"])
    train = splits["train"]
    corpus = make_corpus(train, vocab, None, ENCODER.encode([t.text for t in vocab]))
    corpus.embeddings = ENCODER.encode(corpus.texts)
    return records, vocab, corpus


def _batch(*metas: ArtworkMetadata) -> Batch:
    batch = Batch.from_metadata(metas)
    batch.embeddings = ENCODER.encode(batch.texts)
    return batch


HARBOUR = ArtworkMetadata(title="Fishing Boats in Naples Harbour", artists=["Joseph Mallord William Turner"],
                          medium="Oil paint on canvas")
MOUNTAIN = ArtworkMetadata(title="Snow on the Mountain, Lucerne", artists=["John Robert Cozens"])


@pytest.mark.parametrize("name", ["knn", "tfidf", "linear", "centroid", "hybrid"])
def test_supervised_scorers_find_the_known_tags(data, name):
    _, vocab, corpus = data
    scorer = get_scorer_class(name)(vocab, {"limit": 5})
    scorer.fit(corpus)
    cands = scorer.score(_batch(HARBOUR, MOUNTAIN))
    top = [{vocab.tags[i].label for i in c[:2]} for c in cands.tags]
    assert top[0] == {"harbour", "boat, fishing"}
    assert top[1] == {"mountain", "snow"}
    assert all(np.all(np.diff(s) <= 0) for s in cands.scores)
    # Vote shares lie in (0, 1]; the ridge model's outputs are regression values near that range.
    assert 0 < cands.scores[0][0] <= (1.0 if name != "linear" else 1.5)


def test_semantic_scorer_proposes_a_tag_nobody_assigned(data):
    _, vocab, corpus = data
    lighthouse = vocab.index("99")
    assert vocab.tags[lighthouse].usage == 0  # only a dev artwork carries it
    scorer = SemanticScorer(vocab, {"limit": 3})
    scorer.fit(corpus)
    batch = _batch(ArtworkMetadata(title="Lighthouse"))
    cands = scorer.score(batch)
    assert cands.tags[0][0] == lighthouse
    [ev] = scorer.explain(batch, cands, 0, lighthouse)
    assert isinstance(ev, TagTextEvidence) and ev.tag_text == "lighthouse (seascapes and coasts)"
    assert ev.similarity == pytest.approx(cands.scores[0][0], abs=1e-3)


@pytest.mark.parametrize("cls", [EmbeddingKnnScorer, TfidfKnnScorer])
def test_neighbour_evidence_cites_real_training_artworks_that_carry_the_tag(data, cls):
    records, vocab, corpus = data
    scorer = cls(vocab, {"neighbours": 10})
    scorer.fit(corpus)
    batch = _batch(HARBOUR)
    cands = scorer.score(batch)
    harbour = vocab.index("1")
    evidence = [e for e in scorer.explain(batch, cands, 0, harbour, max_evidence=50) if isinstance(e, NeighbourEvidence)]
    assert evidence
    by_id = {r.artwork_id: r for r in records}
    train_ids = set(corpus.ids)
    for e in evidence:
        assert e.artwork_id in train_ids
        assert by_id[e.artwork_id].metadata.title == e.title
        assert "1" in {t.id for t in by_id[e.artwork_id].metadata.tags}
    # The score is exactly the voters' share of the vote.
    voters = scorer.voters(cands, 0, harbour)
    total = cands.state[0][2]
    expected = sum(s ** scorer.params.power for _, s in voters) / total
    assert scorer.score_tags(batch, cands, 0, np.array([harbour]))[0] == pytest.approx(expected)


@pytest.mark.parametrize("cls", [EmbeddingKnnScorer, TfidfKnnScorer])
def test_removing_the_cited_neighbours_changes_the_score(data, cls):
    _, vocab, corpus = data
    scorer = cls(vocab, {"neighbours": 10})
    scorer.fit(corpus)
    # A query between two themes, so the harbour tag has some voters but not all.
    batch = _batch(ArtworkMetadata(title="Fishing Boats by the Cathedral, Lucerne"))
    cands = scorer.score(batch)
    harbour = vocab.index("1")
    before = scorer.score_tags(batch, cands, 0, np.array([harbour]))[0]
    assert 0 < before < 1
    cited = {e.artwork_id for e in scorer.explain(batch, cands, 0, harbour, max_evidence=50)
             if isinstance(e, NeighbourEvidence)}
    keep = [i for i, a in enumerate(corpus.ids) if a not in cited]
    reduced = make_corpus_subset(corpus, keep)
    again = cls(vocab, {"neighbours": 10})
    again.fit(reduced)
    cands2 = again.score(batch)
    after = again.score_tags(batch, cands2, 0, np.array([harbour]))[0]
    assert after != pytest.approx(before)
    assert not cited & {e.artwork_id for e in again.explain(batch, cands2, 0, harbour, 50)
                        if isinstance(e, NeighbourEvidence)}


def make_corpus_subset(corpus, keep):
    from arttag.scorers.base import Corpus

    return Corpus([corpus.texts[i] for i in keep], [corpus.fields[i] for i in keep], corpus.embeddings[keep],
                  ids=[corpus.ids[i] for i in keep], titles=[corpus.titles[i] for i in keep],
                  labels=corpus.labels[keep], tag_embeddings=corpus.tag_embeddings)


def test_tfidf_term_evidence_is_faithful(data):
    _, vocab, corpus = data
    scorer = TfidfKnnScorer(vocab, {"neighbours": 10})
    scorer.fit(corpus)
    meta = ArtworkMetadata(title="The Cathedral at Genoa")
    batch = _batch(meta)
    cands = scorer.score(batch)
    cathedral = vocab.index("7")
    terms = [e for e in scorer.explain(batch, cands, 0, cathedral) if isinstance(e, TermEvidence)]
    assert terms and terms[0].field == "title"
    assert "cathedral" in {t.term for t in terms}
    before = scorer.score_tags(batch, cands, 0, np.array([cathedral]))[0]
    # Take the cited word out of the title: the tag's score changes (here: it drops).
    without = _batch(ArtworkMetadata(title="The at Genoa"))
    cands2 = scorer.score(without)
    after = scorer.score_tags(without, cands2, 0, np.array([cathedral]))[0]
    assert after < before


def test_params_are_validated_and_registry_is_lazy(data):
    _, vocab, _ = data
    with pytest.raises(ValueError):
        TfidfKnnScorer(vocab, {"neighbours": 0})
    with pytest.raises(ValueError):
        TfidfKnnScorer(vocab, {"no_such_param": 1})
    with pytest.raises(ConfigurationError):
        get_scorer_class("omikuji")
    with pytest.raises(ModelError):
        TfidfKnnScorer(vocab).score(_batch(HARBOUR))  # not trained


def test_embedding_scorers_refuse_a_batch_without_embeddings(data):
    _, vocab, corpus = data
    scorer = EmbeddingKnnScorer(vocab)
    scorer.fit(corpus)
    with pytest.raises(ModelError):
        scorer.score(Batch.from_metadata([HARBOUR]))


def test_scorers_save_and_load(data, tmp_path):
    _, vocab, corpus = data
    batch = _batch(HARBOUR, MOUNTAIN)
    for name in ("knn", "tfidf", "semantic", "centroid", "group", "artist", "hybrid", "accession", "mention", "linear", "tfidf_artist"):
        cls = get_scorer_class(name)
        scorer = cls(vocab, {"limit": 7})
        scorer.fit(corpus)
        scorer.save(tmp_path / name)
        loaded = cls.load(tmp_path / name, vocab)
        a, b = scorer.score(batch), loaded.score(batch)
        assert [t.tolist() for t in a.tags] == [t.tolist() for t in b.tags]
        np.testing.assert_allclose(np.concatenate(a.scores), np.concatenate(b.scores), atol=2e-3)


def test_group_scorer_votes_with_the_artworks_of_the_same_group():
    from arttag.catalogue.records import CatalogueRecord
    from arttag.catalogue.vocabulary import Vocabulary
    from arttag.events import AssignedTag
    from arttag.scorers.group import GroupScorer

    def rec(i, title, group, tags):
        meta = ArtworkMetadata(title=title, group_title=group, tags=[AssignedTag(id=t, label=t) for t in tags])
        return CatalogueRecord(line=i, artwork_id=str(i), metadata=meta)

    train = [rec(1, "Page 1", "Alps Sketchbook", ["mountain"]), rec(2, "Page 2", "Alps  sketchbook", ["mountain", "snow"]),
             rec(3, "Page 3", "Thames Sketchbook", ["river"])]
    vocab = Vocabulary.from_records(train)
    scorer = GroupScorer(vocab)
    scorer.fit(make_corpus(train, vocab, None, None))
    batch = Batch.from_metadata([ArtworkMetadata(title="Page 9", group_title="ALPS sketchbook"),
                                 ArtworkMetadata(title="Loose sheet")])
    cands = scorer.score(batch)
    assert [vocab.tags[i].label for i in cands.tags[0]] == ["mountain", "snow"]
    assert cands.scores[0].tolist() == [1.0, 0.5]
    assert len(cands.tags[1]) == 0
    assert [e.artwork_id for e in scorer.explain(batch, cands, 0, vocab.index("snow"))] == ["2"]


def test_accession_scorer_votes_with_neighbouring_numbers_of_the_same_series(tmp_path):
    from arttag.catalogue.records import CatalogueRecord
    from arttag.catalogue.vocabulary import Vocabulary
    from arttag.events import AssignedTag
    from arttag.scorers.accession import AccessionScorer, parse_accession

    def rec(i, acno, tags):
        meta = ArtworkMetadata(title=f"Page {i}", accession_number=acno,
                               tags=[AssignedTag(id=t, label=t) for t in tags])
        return CatalogueRecord(line=i, artwork_id=str(i), metadata=meta)

    train = [rec(1, "D12344", ["bridge"]), rec(2, "D12346", ["bridge", "river"]), rec(3, "D12349", ["castle"]),
             rec(4, "T12345", ["portrait"]), rec(5, "D12400", ["ship"]), rec(6, None, ["ship"])]
    vocab = Vocabulary.from_records(train)
    scorer = AccessionScorer(vocab, {"window": 5})
    scorer.fit(make_corpus(train, vocab, None, None))
    batch = Batch.from_metadata([ArtworkMetadata(title="Page", accession_number="D12345"),
                                 ArtworkMetadata(title="Loose sheet", accession_number="unnumbered"),
                                 ArtworkMetadata(title="No number")])
    cands = scorer.score(batch)
    # D12344 and D12346 (distance 1, weight 1/2 each) outvote D12349 (distance 4, weight 1/5); the other
    # series (T) and numbers outside the window do not vote.
    labels = [vocab.tags[i].label for i in cands.tags[0]]
    assert labels[0] == "bridge" and set(labels) == {"bridge", "river", "castle"}
    np.testing.assert_allclose(cands.scores[0][0], 1.0 / 1.2)
    assert len(cands.tags[1]) == 0 and len(cands.tags[2]) == 0
    cited = scorer.explain(batch, cands, 0, vocab.index("bridge"))
    assert [(e.artwork_id, e.similarity) for e in cited] == [("1", 0.5), ("2", 0.5)]
    assert parse_accession("p77521a") == ("P", 77521) and parse_accession("12345") is None
    scorer.save(tmp_path / "acc")
    loaded = AccessionScorer.load(tmp_path / "acc", vocab)
    assert loaded.score(batch).tags[0].tolist() == cands.tags[0].tolist()


def test_mention_scorer_learns_how_often_a_mentioned_label_is_assigned():
    from arttag.catalogue.records import CatalogueRecord
    from arttag.catalogue.vocabulary import Vocabulary
    from arttag.events import AssignedTag
    from arttag.scorers.mention import MentionScorer, label_variants

    def rec(i, title, tags):
        meta = ArtworkMetadata(title=title, tags=[AssignedTag(id=t, label=t) for t in tags])
        return CatalogueRecord(line=i, artwork_id=str(i), metadata=meta)

    # "Purfleet" in a title always meant the tag; "figure" in a title only once in four times.
    train = [rec(1, "River Banks, Purfleet", ["Purfleet", "river"]), rec(2, "Purfleet from the Thames", ["Purfleet"]),
             rec(3, "A Figure", ["figure"]), rec(4, "Figure Studies", ["man"]), rec(5, "Figure on a Bridge", ["bridge"]),
             rec(6, "Figures by a Church", ["church"]), rec(7, "Sketch", ["Padstow"])]
    vocab = Vocabulary.from_records(train)
    scorer = MentionScorer(vocab)
    scorer.fit(make_corpus(train, vocab, None, None))
    batch = Batch.from_metadata([ArtworkMetadata(title="Figures near Purfleet"),
                                 ArtworkMetadata(title="Padstow Harbour"),
                                 ArtworkMetadata(title="Untitled")])
    cands = scorer.score(batch)
    labels = [vocab.tags[i].label for i in cands.tags[0]]
    assert labels == ["Purfleet", "figure"]
    assert cands.scores[0][0] > 0.7 > 0.4 > cands.scores[0][1]
    # Never mentioned in training, still found by its name (scored with the proper-name prior).
    assert [vocab.tags[i].label for i in cands.tags[1]] == ["Padstow"]
    assert len(cands.tags[2]) == 0
    [evidence] = scorer.explain(batch, cands, 0, vocab.index("Purfleet"))
    assert (evidence.field, evidence.term) == ("title", "purfleet") and evidence.weight == round(cands.scores[0][0], 4)
    assert scorer.explain(batch, cands, 2, vocab.index("Purfleet")) == []
    assert ("sailing", "boat") in label_variants("boat, sailing")
    assert ("santa", "lucia") in label_variants("Naples, Santa Lucia")
    assert label_variants("Orvieto - non-specific") == {("orvieto",)}
    assert {("gravestone",), ("tomb",)} <= label_variants("gravestone / tomb")


def test_linear_contributions_sum_to_the_score_and_removing_the_top_word_lowers_it(data):
    from arttag.scorers.linear import EMBEDDING_FIELD, LinearScorer

    _, vocab, corpus = data
    scorer = LinearScorer(vocab, {"components": 32})
    scorer.fit(corpus)
    batch = _batch(HARBOUR)
    cands = scorer.score(batch)
    tag = int(cands.tags[0][0])
    parts = scorer.contributions(cands, 0, tag)
    assert sum(c for _, _, c in parts) + scorer.intercept(tag) == pytest.approx(cands.scores[0][0], abs=1e-4)
    evidence = scorer.explain(batch, cands, 0, tag)
    assert evidence and all(isinstance(e, TermEvidence) for e in evidence)
    assert [e.weight for e in evidence] == sorted((e.weight for e in evidence), reverse=True)
    word = next(e for e in evidence if e.field == "title" and e.field != EMBEDDING_FIELD)
    title = " ".join(w for w in HARBOUR.title.split() if w.lower() != word.term)
    assert title != HARBOUR.title
    without = _batch(HARBOUR.model_copy(update={"title": title}))
    assert scorer.score_tags(without, scorer.score(without), 0, np.array([tag]))[0] < cands.scores[0][0]


def test_same_artist_tfidf_lets_only_the_same_artists_works_vote():
    from arttag.catalogue.records import CatalogueRecord
    from arttag.catalogue.vocabulary import Vocabulary
    from arttag.events import AssignedTag
    from arttag.scorers.tfidf import SameArtistTfidfScorer

    def rec(i, title, artist, tags):
        meta = ArtworkMetadata(title=title, artists=[artist], tags=[AssignedTag(id=t, label=t) for t in tags])
        return CatalogueRecord(line=i, artwork_id=str(i), metadata=meta)

    train = [rec(1, "Study of a Bridge", "J.M.W. Turner", ["bridge", "river"]),
             rec(2, "Study of a Bridge", "Bridget Riley", ["abstraction"]),
             rec(3, "A Lake", "J.M.W. Turner", ["lake"])]
    vocab = Vocabulary.from_records(train)
    scorer = SameArtistTfidfScorer(vocab)
    scorer.fit(make_corpus(train, vocab, None, None))
    batch = Batch.from_metadata([ArtworkMetadata(title="Study of a Bridge", artists=["Bridget Riley"]),
                                 ArtworkMetadata(title="Study of a Bridge", artists=["Someone Else"]),
                                 ArtworkMetadata(title="Study of a Bridge")])
    cands = scorer.score(batch)
    assert [vocab.tags[i].label for i in cands.tags[0]] == ["abstraction"]
    assert [e.artwork_id for e in scorer.explain(batch, cands, 0, vocab.index("abstraction"))
            if e.kind == "neighbour"] == ["2"]
    assert len(cands.tags[1]) == 0 and len(cands.tags[2]) == 0


def test_centroid_contributions_sum_to_the_score_and_cite_the_tags_artworks(data):
    from arttag.scorers.centroid import CentroidScorer

    _, vocab, corpus = data
    scorer = CentroidScorer(vocab)
    scorer.fit(corpus)
    batch = _batch(HARBOUR)
    cands = scorer.score(batch)
    harbour = vocab.index("1")
    score = scorer.score_tags(batch, cands, 0, np.array([harbour]))[0]
    parts = scorer.contributions(batch, 0, harbour)
    assert sum(c for _, c in parts) == pytest.approx(score, abs=1e-4)
    cited = scorer.explain(batch, cands, 0, harbour, max_evidence=3)
    assert [e.artwork_id for e in cited] == [corpus.ids[j] for j, _ in parts[:3]]
    assert all(corpus.labels[corpus.ids.index(e.artwork_id), harbour] for e in cited)


def test_the_documented_example_scorer_trains_scores_and_reloads(data, tmp_path):
    import inspect

    import arttag.scorers.base as base

    code = inspect.cleandoc(base.__doc__.split("::\n", 1)[1].split("\nRegister it", 1)[0])
    namespace = {"np": np, **vars(base)}
    exec(code, namespace)
    prior_scorer = namespace["PriorScorer"]
    _, vocab, corpus = data
    scorer = prior_scorer(vocab, {"limit": 3})
    scorer.fit(corpus)
    batch = _batch(HARBOUR, MOUNTAIN)
    cands = scorer.score(batch)
    usage = np.asarray(corpus.labels.sum(axis=0)).ravel()
    assert cands.tags[0][0] == int(np.argmax(usage)) and np.array_equal(cands.tags[0], cands.tags[1])
    scorer.save(tmp_path / "prior")
    again = prior_scorer.load(tmp_path / "prior", vocab)
    assert np.array_equal(again.score(batch).scores[0], cands.scores[0])
    assert scorer.summarise_evidence([]) == []  # says nothing beyond being named as a proposer


def test_each_scorer_words_its_own_evidence_and_decides_what_it_cites(data):
    _, vocab, _ = data
    near = NeighbourEvidence(artwork_id="A1", title="Harbour at Dusk", similarity=0.8123)
    word = TermEvidence(field="title", term="harbour", weight=0.5)
    text = TagTextEvidence(tag_text="harbour (ports)", similarity=0.4)
    every = [near, word, text]

    def phrases(name: str) -> list[str]:
        return get_scorer_class(name)(vocab).summarise_evidence(every)

    assert phrases("knn") == ["knn: 1 similar tagged artwork(s) by embedding carry it "
                              "(closest 'Harbour at Dusk', similarity 0.81)"]
    assert phrases("tfidf") == ["tfidf: 1 similar tagged artwork(s) by text carry it "
                                "(closest 'Harbour at Dusk', similarity 0.81)", "tfidf words: 'harbour' (title)"]
    assert phrases("linear") == ["linear words: 'harbour' (title)"]
    assert phrases("mention") == ["mention words: 'harbour' (title)"]
    assert phrases("semantic") == ["semantic: tag text 'harbour (ports)' similarity 0.40"]
    assert get_scorer_class("knn")(vocab).summarise_evidence([word]) == []
    # A vote share is exactly its voters: a voting scorer that gave 0 has nothing to cite.
    assert not get_scorer_class("group")(vocab).cites(0.0, 3) and get_scorer_class("group")(vocab).cites(0.1, 0)
    assert get_scorer_class("semantic")(vocab).cites(0.0, 3) and not get_scorer_class("semantic")(vocab).cites(0.0, 0)


def test_fitted_objects_are_plain_pickles_and_older_joblib_files_still_load(tmp_path):
    import joblib
    from arttag.scorers.base import load_fitted, save_fitted
    from sklearn.feature_extraction.text import TfidfVectorizer

    fitted = TfidfVectorizer().fit(["harbour at dawn", "boats in a harbour"])
    save_fitted(fitted, tmp_path, "vectorizer")
    assert (tmp_path / "vectorizer.pkl").exists() and not (tmp_path / "vectorizer.joblib").exists()
    assert load_fitted(tmp_path, "vectorizer").vocabulary_ == fitted.vocabulary_
    older = tmp_path / "older"
    older.mkdir()
    joblib.dump(fitted, older / "vectorizer.joblib", compress=3)  # how bundles stored it before
    assert load_fitted(older, "vectorizer").vocabulary_ == fitted.vocabulary_
