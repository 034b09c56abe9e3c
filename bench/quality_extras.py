"""Adds to ``bench/results/quality.json`` (written by ``arttag train --json``) what one training run
cannot measure: the faithfulness of explanations, and the new-acquisitions view.

* ``--bundle B``: the bundle the quality file describes (its model version must match); the top
  ``--top`` suggestions of the first ``--artworks`` tagged dev artworks are measured with
  :func:`arttag.quality.faithfulness.measure` (comprehensiveness, sufficiency; means, medians,
  histograms) -> ``faithfulness`` and headline ``faithfulness_comprehensiveness``,
  ``faithfulness_sufficiency``;
* ``--new-acquisitions FILE``: the ``--json`` of ``arttag evaluate --split new-acquisitions`` with
  a bundle trained on the artworks acquired before 2000 -> ``new_acquisitions`` and headline
  ``new_acq_*``.

    nice -n 5 .venv/bin/python bench/quality_extras.py --bundle B --catalogue ../shared/data/tate/artworks.jsonl.gz \\
        [--new-acquisitions new_acq.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
DEFAULT_QUALITY = REPO / "bench" / "results" / "quality.json"


def faithfulness(bundle: Path, catalogue: Path, artworks: int, top: int, expected_version: str | None) -> dict:
    from arttag.catalogue.records import load_catalogue
    from arttag.model.bundle import open_tagger
    from arttag.model.training import split_records
    from arttag.quality.faithfulness import measure
    from arttag.settings import CliSettings

    tagger = open_tagger(bundle, CliSettings().encoder)
    if expected_version and tagger.model_version != expected_version:
        print(f"note: {bundle} is {tagger.model_version}, the quality file describes {expected_version}; "
              "the faithfulness section names the bundle it measured")
    records, _ = load_catalogue(catalogue)
    dev = split_records(records)["dev"][:artworks]
    # Suggested for the artwork as a new one: its own tags would otherwise be marked "already assigned".
    metas = [r.metadata.model_copy(update={"tags": []}) for r in dev]
    t0 = time.perf_counter()
    result = measure(tagger, metas, top=top, progress=True)
    result["seconds"] = time.perf_counter() - t0
    result["model_version"] = tagger.model_version
    result["artworks_chosen"] = f"the first {artworks} tagged dev artworks in catalogue order"
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quality", type=Path, default=DEFAULT_QUALITY)
    p.add_argument("--bundle", type=Path, default=None, help="measure explanations of this bundle")
    p.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    p.add_argument("--artworks", type=int, default=500)
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--new-acquisitions", type=Path, default=None, metavar="JSON")
    p.add_argument("--faithfulness-from", type=Path, default=None, metavar="JSON",
                   help="take the faithfulness section of an earlier quality file (of a bundle of the same recipe) "
                        "instead of measuring with --bundle")
    args = p.parse_args(argv)
    data = json.loads(args.quality.read_text())
    head = data["headline"]
    if args.new_acquisitions:
        na = json.loads(args.new_acquisitions.read_text())
        data["new_acquisitions"] = {k: na.get(k) for k in (
            "headline", "model_version", "command", "split", "acquired_from", "dev_artworks", "training_artworks",
            "novel_text_artworks", "ensemble", "novel_text", "views", "auto_apply", "training")}
        h = na["headline"]
        head.update({"new_acq_f1_at_5": h["f1_at_5"], "new_acq_ndcg_at_10": h["ndcg_at_10"],
                     "new_acq_p_at_1": h["p_at_1"], "new_acq_unseen_tag_recall_at_10": h["unseen_tag_recall_at_10"],
                     "new_acq_artworks": na["dev_artworks"]})
    f = None
    if args.faithfulness_from:
        f = json.loads(args.faithfulness_from.read_text())["faithfulness"]
    elif args.bundle:
        f = faithfulness(args.bundle, args.catalogue, args.artworks, args.top, data.get("model_version"))
    if f is not None:
        data["faithfulness"] = f
        head["faithfulness_comprehensiveness"] = f["comprehensiveness"]["mean"]
        head["faithfulness_sufficiency"] = f["sufficiency"]["mean"]
        print(f"faithfulness on {f['suggestions']} suggestions: comprehensiveness {f['comprehensiveness']['mean']:.3f} "
              f"(median {f['comprehensiveness']['median']:.3f}), sufficiency {f['sufficiency']['mean']:.3f} "
              f"(median {f['sufficiency']['median']:.3f}) in {f['seconds']:.0f} s")
    args.quality.write_text(json.dumps(data, indent=2, default=float) + "\n")
    print(f"written to {args.quality}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
