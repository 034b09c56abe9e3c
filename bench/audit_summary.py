"""Headline figures of an ``arttag audit`` run, for bench/results/.

    arttag audit ../shared/data/tate/artworks.jsonl.gz --out /tmp/audit --bundle BUNDLE
    python bench/audit_summary.py /tmp/audit/audit.json --wall-s 1189 --note "..." --out bench/results/audit_tate_full.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def summary(audit: dict) -> dict:
    cov, use, dup, con = audit["coverage"], audit["usage"], audit["duplicates"], audit["consistency"]
    out = {
        "catalogue": audit["catalogue"],
        "encoder": audit["encoder"],
        "model_version": audit["model_version"],
        "timings_s": audit["timings_s"],
        "rows": {k: audit["rows"][k] for k in ("read", "good", "bad")},
        "untagged": cov["untagged"],
        "untagged_share": cov["untagged_share"],
        "tags_per_artwork_mean": cov["tags_per_artwork"]["mean"],
        "field_absent_share": {k: v["absent_share"] for k, v in cov["fields"].items()},
        "distinct_tags": use["distinct_tags"],
        "tags_used_once": use["used_once"]["count"],
        "tags_used_at_most_5": use["long_tail"]["count"],
        "lexical_duplicate_groups": dup["lexical"]["count"],
        "embedding_duplicate_pairs": dup["semantic"]["count"],
        "consistency": {k: con.get(k) for k in (
            "artworks_in_blocks", "artworks_compared", "artworks_in_near_identical_groups",
            "inconsistent_groups", "inconsistent_groups_uninformative_titles")},
    }
    if not audit["overlooked"].get("skipped"):
        o = audit["overlooked"]
        out["overlooked"] = {k: o[k] for k in ("scope", "artworks_reviewed", "count", "artworks_with_candidates")}
    if not audit["learnability"].get("skipped"):
        learn = audit["learnability"]
        out["learnability"] = {"dev_artworks": learn["dev_artworks_evaluated"], "micro": learn["micro"],
                               "diagnoses": learn["diagnoses"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audit_json", type=Path)
    parser.add_argument("--wall-s", type=float, help="wall-clock seconds of the whole command")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"wall_s": args.wall_s, "note": args.note, **summary(json.loads(args.audit_json.read_text()))}
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
