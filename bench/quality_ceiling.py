"""How far the ensemble's signals can carry it on held-out artworks: what the candidates hold, what
other candidate sources would add, and whether a re-ranker that learns from the evaluated kind of
artworks themselves ranks the same candidates better. Writes ``bench/results/quality_ceiling.json``.

Three measurements on one bundle and its held-out artworks (``--split``, as ``arttag evaluate``;
by default the new acquisitions with a bundle trained on the artworks acquired before 2000):

1. **Candidates.** The share of the true (artwork, tag) pairs among each scorer's candidates, the
   share only that scorer proposes, and the share among all candidates (every true tag counts,
   also those outside the vocabulary, as in ``arttag evaluate``).
2. **Other candidate sources**, each fitted here on the artworks the bundle learnt from, ranked
   alone (F1@5, nDCG@10) and by the true pairs its top 30 adds to the ensemble's candidates:
   MPNet cosine between the *title alone* and each tag text; the 50 training artworks nearest by
   *title* embedding voting with ``similarity ** 6``; and a ridge map from the artwork's embedding
   to the mean embedding of its tags' texts, ranked by cosine to every tag text (it shares what it
   learns across tags, so a tag few training artworks carry still gets a score). Titles are encoded
   here (``--no-titles`` skips the first two).
3. **The re-ranker on its own ground.** The held-out artworks are split in two by a hash of the
   first artist; a re-ranker with the bundle's parameters learns from one half's candidates (the
   same features) and ranks the other half, against the bundle's re-ranker on that half. If it
   does no better, the ranking is limited by what the features carry, not by a change in how the
   held-out artworks were catalogued (new acquisitions were catalogued after 2000).

    nice -n 5 .venv/bin/python bench/quality_ceiling.py --catalogue ../shared/data/tate/artworks.jsonl.gz \\
        --bundle BUNDLE_BEFORE_2000 --embedding-cache ~/.cache/arttag/embeddings
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import write_result
from machine_info import machine_details, portable_command

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
DEFAULT_OUT = REPO / "bench" / "results" / "quality_ceiling.json"
SOURCE_LIMIT = 30
TITLE_NEIGHBOURS = 50
TITLE_POWER = 6.0
PROJECTION_ALPHA = 1.0


def pair_share(found: Sequence[set[int]], gold: Sequence[set[int]]) -> float:
    """The share of all true (artwork, tag) pairs that ``found`` holds."""
    total = sum(len(g) for g in gold)
    return sum(len(f & g) for f, g in zip(found, gold)) / total if total else 0.0


def candidate_shares(per_scorer: dict[str, list[set[int]]], gold: Sequence[set[int]]) -> dict[str, Any]:
    """Per scorer, the share of true pairs among its candidates and the share no other scorer
    proposes; and the union's share and mean size."""
    n = len(gold)
    union = [set().union(*(s[i] for s in per_scorer.values())) for i in range(n)]
    out: dict[str, Any] = {"scorers": {}}
    for name, sets in per_scorer.items():
        others = [set().union(*(s[i] for o, s in per_scorer.items() if o != name)) for i in range(n)]
        out["scorers"][name] = {"true_share": pair_share(sets, gold),
                                "true_share_only_it": pair_share([s - o for s, o in zip(sets, others)], gold)}
    out["union_true_share"] = pair_share(union, gold)
    out["union_mean_candidates"] = float(np.mean([len(u) for u in union])) if n else 0.0
    return out, union


def source_report(rankings: Sequence[np.ndarray], gold: Sequence[set[int]], union: Sequence[set[int]]) -> dict[str, Any]:
    """A source's top ``SOURCE_LIMIT`` tags per artwork (best first), ranked alone and by the
    true pairs they add to the ensemble's candidates (``union``)."""
    from arttag.quality.ranking import ranking_metrics

    alone = ranking_metrics([np.asarray(r)[:10].tolist() for r in rankings], gold)
    proposed = [{int(t) for t in np.asarray(r)[:SOURCE_LIMIT]} for r in rankings]
    return {"f1_at_5": alone["f1_at_5"], "ndcg_at_10": alone["ndcg_at_10"],
            "true_share": pair_share(proposed, gold),
            "true_share_added": pair_share([p - u for p, u in zip(proposed, union)], gold)}


def title_sources(training: Sequence[Any], held_out: Sequence[Any], vocab: Any, tag_emb: np.ndarray,
                  train_titles: np.ndarray, held_titles: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The title alone through the ensemble's own scorers: the semantic scorer (cosine to each tag
    text) and the embedding kNN (the 50 nearest training titles vote with ``similarity ** 6``),
    fitted on the training artworks' titles; each artwork's top ``SOURCE_LIMIT`` tags."""
    from arttag.model.training import make_batch, make_corpus
    from arttag.scorers.knn import EmbeddingKnnScorer
    from arttag.scorers.semantic import SemanticScorer

    corpus = make_corpus(training, vocab, train_titles, tag_emb)
    batch = make_batch(held_out, held_titles)
    out = {}
    for name, scorer in (("title_tag_text_cosine", SemanticScorer(vocab, {"limit": SOURCE_LIMIT, "search": "exact"})),
                         ("title_neighbours", EmbeddingKnnScorer(vocab, {"limit": SOURCE_LIMIT, "search": "exact",
                                                                         "neighbours": TITLE_NEIGHBOURS,
                                                                         "power": TITLE_POWER}))):
        scorer.fit(corpus)
        out[name] = scorer.score(batch).tags
    return out


def label_space_projection(train_emb: np.ndarray, labels: Any, tag_emb: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Ridge map from an artwork's embedding to the mean embedding of its tags' texts; the
    queries' mapped vectors' cosine to every tag text."""
    import scipy.sparse as sp

    counts = np.asarray(labels.sum(axis=1)).ravel()
    target = sp.diags(1.0 / np.maximum(counts, 1.0)) @ labels @ tag_emb
    gram = train_emb.T @ train_emb + PROJECTION_ALPHA * np.eye(train_emb.shape[1], dtype=np.float32)
    mapping = np.linalg.solve(gram, train_emb.T @ np.asarray(target, dtype=np.float32))
    mapped = queries @ mapping
    mapped /= np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12)
    return mapped @ tag_emb.T


def first_artist_half(meta: Any) -> int:
    name = meta.artists[0] if meta.artists else ""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % 2


def reranker_on_its_own_ground(tagger: Any, held_out: Sequence[Any], embeddings: np.ndarray | None,
                               gold: Sequence[set[int]], batch_size: int) -> tuple[dict[str, Any], dict[str, list[set[int]]]]:
    """Features of every held-out candidate; per half (by first artist), the bundle's re-ranker
    against one that learnt from the other half. Also returns each scorer's candidates."""
    from threadpoolctl import threadpool_limits

    from arttag.model.ensemble import RerankerParams
    from arttag.model.training import make_batch
    from arttag.quality.ranking import ranking_metrics

    ens = tagger.ensemble
    per_scorer: dict[str, list[set[int]]] = {s.name: [] for s in ens.scorers}
    batches, ys, rows = [], [], []
    for start in range(0, len(held_out), batch_size):
        part = held_out[start:start + batch_size]
        batch = make_batch(part, None if embeddings is None else embeddings[start:start + batch_size])
        cands = ens.gather(batch)
        for c in cands:
            per_scorer[c.scorer] += [{int(t) for t in tags} for tags in c.tags]
        feats = ens.features(batch, cands)
        batches.append(feats)
        ys.append(feats.pairs.marks(gold[start:start + batch_size]).astype(np.int8))
        rows.append(feats.pairs.rows + start)
    x, y, row = np.vstack([f.matrix for f in batches]), np.concatenate(ys), np.concatenate(rows)
    bounds = np.cumsum([0] + [len(f.matrix) for f in batches])
    half = np.array([first_artist_half(r.metadata) for r in held_out])
    params = RerankerParams(**tagger.manifest.get("params", {}).get("reranker", {}))

    def top_ten(probs: np.ndarray) -> list[list[int]]:
        """Every held-out artwork's ten best candidates by ``probs``, as the ensemble ranks them."""
        return [r.tags[:10].tolist() for f, a, b in zip(batches, bounds[:-1], bounds[1:]) for r in f.ranked(probs[a:b])]

    bundle_top = top_ten(ens._merge(x))
    report: dict[str, Any] = {"halves": []}
    for h in (0, 1):
        learn, members = half[row] != h, np.flatnonzero(half == h).tolist()
        model = ens.new_reranker(params, int(learn.sum()))
        with threadpool_limits(limits=params.threads):
            model.fit(x[learn], y[learn])
        own_top = top_ten(model.predict_proba(x)[:, 1])
        g = [gold[i] for i in members]
        report["halves"].append({
            "half": h, "artworks": len(members), "learning_pairs": int(learn.sum()),
            "learning_artworks": int((half != h).sum()), "iterations": int(model.n_iter_),
            "bundle_reranker": ranking_metrics([bundle_top[i] for i in members], g),
            "reranker_learnt_on_other_half": ranking_metrics([own_top[i] for i in members], g)})
    n = len(held_out)
    for key in ("bundle_reranker", "reranker_learnt_on_other_half"):
        for metric in ("f1_at_5", "ndcg_at_10"):
            report[f"{key}_{metric}"] = sum(hv[key][metric] * hv["artworks"] for hv in report["halves"]) / n
    return report, per_scorer


def main(argv: list[str] | None = None) -> int:
    from arttag.catalogue.records import load_catalogue
    from arttag.catalogue.text import build_text
    from arttag.model.bundle import open_tagger
    from arttag.model.training import embed_texts, evaluation_records, held_out_gold, label_matrix
    from arttag.scorers.topk import top_k_with_values
    from arttag.settings import CliSettings

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--split", choices=("new-acquisitions", "dev"), default="new-acquisitions",
                   help="held-out artworks, as `arttag evaluate --split` (default: new-acquisitions)")
    p.add_argument("--embedding-cache", type=lambda v: Path(v).expanduser(), default=None)
    p.add_argument("--no-titles", action="store_true", help="skip the two title sources (no title encoding)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    records, _ = load_catalogue(args.catalogue)
    tagger = open_tagger(args.bundle, CliSettings().encoder)
    fitted_on = tagger.manifest.get("training", {}).get("scorers_fitted_on", ["train"])
    held_out, training, _ = evaluation_records(records, args.split, fitted_on)
    vocab = tagger.vocabulary
    gold = held_out_gold(held_out, vocab)
    bare = getattr(tagger.encoder, "inner", tagger.encoder)
    print(f"{len(held_out)} held-out artworks, {len(training)} the bundle learnt from; embedding")
    held_emb = embed_texts(bare, [build_text(r.metadata) for r in held_out], args.embedding_cache, progress=True)
    train_emb = embed_texts(bare, [build_text(r.metadata) for r in training], args.embedding_cache, progress=True)
    timings["embed_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    print("features of every candidate; the re-ranker on each half by first artist")
    rerank, per_scorer = reranker_on_its_own_ground(tagger, held_out, held_emb, gold, args.batch_size)
    timings["reranker_s"] = time.perf_counter() - t1
    candidates, union = candidate_shares(per_scorer, gold)

    t1 = time.perf_counter()
    labels = label_matrix(training, vocab).astype(np.float32).tocsr()
    # the tag texts' embeddings the bundle holds, or (a bundle without the semantic scorer) encoded here
    if "semantic" in [s.name for s in tagger.ensemble.scorers]:
        tag_emb = tagger.ensemble.scorer("semantic").tag_matrix
    else:
        tag_emb = embed_texts(bare, [t.text for t in vocab.tags], args.embedding_cache, progress=True)
    projected, _ = top_k_with_values(label_space_projection(train_emb, labels, tag_emb, held_emb), SOURCE_LIMIT)
    sources: dict[str, Any] = {"label_space_projection": source_report(list(projected), gold, union)}
    if not args.no_titles:
        print("encoding titles")
        held_titles = embed_texts(bare, [r.metadata.title or "" for r in held_out], None, progress=True)
        train_titles = embed_texts(bare, [r.metadata.title or "" for r in training], None, progress=True)
        for name, rankings in title_sources(training, held_out, vocab, tag_emb, train_titles, held_titles).items():
            sources[name] = source_report(rankings, gold, union)
    timings["sources_s"] = time.perf_counter() - t1

    headline = {
        "split": args.split, "artworks": len(held_out), "bundle": tagger.model_version,
        "union_true_share": candidates["union_true_share"],
        "union_mean_candidates": candidates["union_mean_candidates"],
        "bundle_reranker_f1_at_5": rerank["bundle_reranker_f1_at_5"],
        "bundle_reranker_ndcg_at_10": rerank["bundle_reranker_ndcg_at_10"],
        "reranker_learnt_on_other_half_f1_at_5": rerank["reranker_learnt_on_other_half_f1_at_5"],
        "reranker_learnt_on_other_half_ndcg_at_10": rerank["reranker_learnt_on_other_half_ndcg_at_10"],
        **{f"{name}_true_share_added": s["true_share_added"] for name, s in sources.items()},
    }
    result = {
        "headline": headline,
        "candidates": candidates,
        "other_sources": sources,
        "reranker": rerank,
        "bundle": tagger.model_version,
        "scorers_fitted_on": list(fitted_on),
        "training_artworks": len(training),
        "command": portable_command("bench/quality_ceiling.py", sys.argv[1:] if argv is None else argv),
        "catalogue": str(args.catalogue.name),
        "timings": timings,
        "total_s": time.perf_counter() - t0,
        "machine": machine_details(),
        "what": "true (artwork, tag) pairs among each scorer's candidates and their union; other candidate "
                "sources alone and what they add; the bundle's re-ranker against one learnt from the other "
                "half (by first artist) of the held-out artworks",
    }
    print(f"{'':<44}{'F1@5':>8}{'nDCG@10':>9}")
    print(f"{'bundle re-ranker':<44}{headline['bundle_reranker_f1_at_5']:>8.4f}{headline['bundle_reranker_ndcg_at_10']:>9.4f}")
    print(f"{'re-ranker learnt on the other half':<44}{headline['reranker_learnt_on_other_half_f1_at_5']:>8.4f}"
          f"{headline['reranker_learnt_on_other_half_ndcg_at_10']:>9.4f}")
    print(f"true pairs among the candidates: {candidates['union_true_share']:.4f}")
    for name, s in sources.items():
        print(f"{name:<44}{s['f1_at_5']:>8.4f}{s['ndcg_at_10']:>9.4f}  adds {s['true_share_added']:.4f}")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
