"""Quality of this code against an earlier commit's, on the same bundle: ``arttag evaluate`` run
by both on the bundle's whole dev split (and its views), from the same embedding cache.

    python bench/quality_check.py --bundle BUNDLE --catalogue artworks.jsonl.gz [--before COMMIT]

The earlier commit is checked out into a temporary git worktree and run with this checkout's
environment. Speed work must leave quality where it was (issue: within 0.003 of F1@5 and
nDCG@10); this records both evaluations and their differences. Writes
``bench/results/quality_check.json`` (``--out``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from machine_info import machine_details, portable_command, portable_path

BEFORE = "a074714"
"""The last commit before the int8 searches and the compiled top-k (issue #18)."""

FIGURES = ("f1_at_5", "ndcg_at_10", "p_at_1", "unseen_tag_recall_at_10", "novel_text_f1_at_5",
           "novel_text_ndcg_at_10", "isolated_f1_at_5", "isolated_ndcg_at_10",
           "isolated_new_artist_f1_at_5", "isolated_new_artist_ndcg_at_10")


def evaluate(tree: Path, args: argparse.Namespace, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{tree / 'shared'}{os.pathsep}{tree / 'services'}"}
    command = [sys.executable, "-c", "import sys; from arttag_cli.main import main; sys.exit(main())",
               "evaluate", str(args.catalogue), "--bundle", str(args.bundle), "--json", str(out)]
    if args.embedding_cache:
        command += ["--embedding-cache", str(args.embedding_cache)]
    subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["headline"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--catalogue", type=Path, required=True)
    ap.add_argument("--before", default=BEFORE)
    ap.add_argument("--embedding-cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quality_check.json")
    args = ap.parse_args()
    started = datetime.now(UTC).isoformat()
    with tempfile.TemporaryDirectory(prefix="arttag-quality-check-") as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), args.before], cwd=REPO, check=True)
        try:
            print(f"evaluating {args.before} ...", flush=True)
            before = evaluate(tree, args, Path(tmp) / "before.json")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
        print("evaluating this code ...", flush=True)
        after = evaluate(REPO, args, Path(tmp) / "after.json")
    rows = {k: {"before": round(before[k], 4), "after": round(after[k], 4), "difference": round(after[k] - before[k], 4)}
            for k in FIGURES if k in before and k in after}
    worst = max(abs(after[k] - before[k]) for k in ("f1_at_5", "ndcg_at_10"))
    result = {
        "command": portable_command("bench/quality_check.py", sys.argv[1:]),
        "started_at": started,
        "machine": machine_details(),
        "bundle": portable_path(args.bundle),
        "before": {"commit": args.before},
        "split": "dev (the bundle's held-out artworks, every view arttag evaluate reports)",
        "figures": rows,
        "headline": {"f1_at_5": round(after["f1_at_5"], 4), "f1_at_5_before": round(before["f1_at_5"], 4),
                     "ndcg_at_10": round(after["ndcg_at_10"], 4),
                     "ndcg_at_10_before": round(before["ndcg_at_10"], 4),
                     "largest_difference_f1_ndcg": round(worst, 4), "within_0_003": worst <= 0.003},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'figure':34s} {'before':>8s} {'after':>8s} {'diff':>8s}")
    for k, r in rows.items():
        print(f"{k:34s} {r['before']:8.4f} {r['after']:8.4f} {r['difference']:+8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
