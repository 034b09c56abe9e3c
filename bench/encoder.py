"""Benchmark of the sentence encoder on real Tate texts: PyTorch vs ONNX fp32 vs ONNX int8, in one run.

Measures, for sentence-transformers (PyTorch, fp32), the ONNX fp32 and the ONNX int8
model (both through :class:`arttag.encoders.onnx.OnnxEncoder`, the production path):

1. **speed**: docs/s and p50/p95 latency of one ``encode`` call at batch 1, 8, 32 and 64.
   Batches are consecutive texts of a shuffled sample (as the stream batches whatever
   arrives); every engine encodes the same batches. The engines take turns segment by
   segment, so the load that other processes put on the shared cores hits all of them alike;
2. **parity** on ``--parity-texts`` texts (the batch-32 run's outputs): cosine of ONNX fp32
   to PyTorch, and of int8 to fp32 (min, mean);
3. **int8 batch invariance**: each of ``--invariance-texts`` texts encoded alone vs in its batch of 32;
4. **GEMM ceiling**: a MatMul-only ONNX graph with one MPNet layer's GEMM shapes
   (768x2304, 768x768, 768x3072, 3072x768) at the batch-32 token count, run by the same
   onnxruntime with the same threads, in turn with the engines. ONNX fp32's achieved
   GFLOP/s = docs/s x FLOPs per document, from the model config and each text's real token
   count (padding is not counted as useful work).

    .venv/bin/python bench/encoder.py [--catalogue ../shared/data/tate/artworks.jsonl.gz]

Prints a table and writes ``bench/results/encoder.json`` (machine details, all figures,
a ``headline`` and the targets).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from machine_info import machine_details

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
BATCH_SIZES = (1, 8, 32, 64)

log = logging.getLogger("bench.encoder")


def machine() -> dict:
    import onnxruntime
    import torch

    return machine_details(
        onnxruntime=onnxruntime.__version__, torch=torch.__version__,
        note="2 cores shared with other engineers' processes; engines take turns to share the noise",
    )


def layer_flops(n: int, hidden: int, intermediate: int) -> int:
    """Multiply-adds x 2 of one MPNet layer on ``n`` tokens: QKV + O projections, scores, context, FFN."""
    return 8 * n * hidden * hidden + 4 * n * n * hidden + 4 * n * hidden * intermediate


def doc_flops(tokens: int, config: dict) -> int:
    return config["num_hidden_layers"] * layer_flops(tokens, config["hidden_size"], config["intermediate_size"])


def gemm_graph(path: Path, hidden: int, intermediate: int) -> int:
    """A MatMul-only ONNX graph with one layer's GEMM shapes; returns FLOPs per input row."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    shapes = {"w_qkv": (hidden, 3 * hidden), "w_o": (hidden, hidden), "w_in": (hidden, intermediate), "w_out": (intermediate, hidden)}
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.02).astype(np.float32), n) for n, s in shapes.items()]
    nodes = [
        helper.make_node("MatMul", ["x", "w_qkv"], ["qkv"]),
        helper.make_node("MatMul", ["x", "w_o"], ["o"]),
        helper.make_node("MatMul", ["x", "w_in"], ["h"]),
        helper.make_node("MatMul", ["h", "w_out"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", hidden])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("qkv", "o", "y")], inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return 2 * (hidden * 3 * hidden + hidden * hidden + 2 * hidden * intermediate)


def load_texts(catalogue: Path, n: int, seed: int) -> list[str]:
    from arttag.catalogue.records import load_catalogue
    from arttag.catalogue.text import build_text

    records, _ = load_catalogue(catalogue)
    texts = sorted({build_text(r.metadata) for r in records})
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.choice(len(texts), size=min(n, len(texts)), replace=False)]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    from arttag.settings import EncoderSettings

    defaults = EncoderSettings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    ap.add_argument("--model-dir", type=Path, default=defaults.model_dir)
    ap.add_argument("--onnx-dir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parity-texts", type=int, default=512, help="texts of the batch-32 run, used for parity too")
    ap.add_argument("--docs", default="1:48,8:160,32:512,64:256", help="batch:docs for the speed runs")
    ap.add_argument("--invariance-texts", type=int, default=128)
    ap.add_argument("--segments", type=int, default=4, help="turns the engines take per batch size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "encoder.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    import onnxruntime as ort
    import torch
    from arttag.encoders.onnx import OnnxEncoder
    from sentence_transformers import SentenceTransformer

    onnx_dir = args.onnx_dir or args.model_dir.with_name(args.model_dir.name + "-onnx")
    docs_per_bs = {int(b): int(n) for b, n in (part.split(":") for part in args.docs.split(","))}
    docs_per_bs[32] = max(docs_per_bs.get(32, 0), args.parity_texts)
    result: dict = {"machine": machine(), "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    config = json.loads((args.model_dir / "config.json").read_text())

    t0 = time.perf_counter()
    texts = load_texts(args.catalogue, max(docs_per_bs.values()), args.seed)
    log.info("%d texts from %s in %.1fs", len(texts), args.catalogue, time.perf_counter() - t0)

    torch.set_num_threads(args.threads)
    st = SentenceTransformer(str(args.model_dir), device="cpu")
    fp32 = OnnxEncoder(onnx_dir, "fp32", intra_op_threads=args.threads, execution_provider="cpu")
    int8 = OnnxEncoder(onnx_dir, "int8", intra_op_threads=args.threads, execution_provider="cpu")
    tokens = [len(ids) for ids in fp32.tokenize(texts)]
    flops = [doc_flops(n, config) for n in tokens]

    def run_torch(batch: list[str]) -> np.ndarray:
        return st.encode(batch, batch_size=len(batch), convert_to_numpy=True, show_progress_bar=False)

    def run_onnx(encoder: OnnxEncoder):
        def run(batch: list[str]) -> np.ndarray:
            encoder.batch_size = len(batch)
            return encoder.encode(batch)
        return run

    engines = {"torch_fp32": run_torch, "onnx_fp32": run_onnx(fp32), "onnx_int8": run_onnx(int8)}

    # GEMM ceiling graph, at the batch-32 run's mean computed (bucketed, padded) token count per call.
    tmp = Path(tempfile.mkdtemp(prefix="bench-gemm-"))
    gemm_row_flops = gemm_graph(tmp / "gemm.onnx", config["hidden_size"], config["intermediate_size"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    gemm = ort.InferenceSession(str(tmp / "gemm.onnx"), options, providers=["CPUExecutionProvider"])

    speed: dict = {}
    outputs: dict[str, np.ndarray] = {}
    gemm_rates: list[float] = []
    for bs in BATCH_SIZES:
        n = min(docs_per_bs.get(bs, 0), len(texts))
        if n == 0:
            continue
        batches = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]
        for name, run in engines.items():  # warm-up: first-call allocations are not what we measure
            run([texts[i] for i in batches[0]])
        segments = np.array_split(np.arange(len(batches)), min(args.segments, len(batches)))
        latencies: dict[str, list[float]] = {name: [] for name in engines}
        busy: dict[str, float] = {name: 0.0 for name in engines}
        out = {name: np.zeros((n, fp32.dim), np.float32) for name in engines}
        # Rows the fp32 encoder really computes: each call is cut into length buckets.
        padded_tokens = sum(
            len(bucket) * max(tokens[b[i]] for i in bucket)
            for b in batches
            for bucket in fp32.buckets([tokens[i] for i in b])
        )
        gemm_rows = max(1, round(padded_tokens / len(batches)))
        x = np.random.default_rng(1).standard_normal((gemm_rows, config["hidden_size"])).astype(np.float32)
        for segment in segments:
            for name, run in engines.items():
                for b in segment:
                    idx = batches[b]
                    start = time.perf_counter()
                    vectors = run([texts[i] for i in idx])
                    elapsed = time.perf_counter() - start
                    latencies[name].append(elapsed)
                    busy[name] += elapsed
                    out[name][idx] = vectors
            if bs == 32:
                # The ceiling takes its turn too, under the same load as the engines.
                gemm.run(None, {"x": x})
                reps, start = 0, time.perf_counter()
                while time.perf_counter() - start < 2.0:
                    gemm.run(None, {"x": x})
                    reps += 1
                gemm_rates.append(reps * gemm_rows * gemm_row_flops / (time.perf_counter() - start) / 1e9)
        speed[bs] = {}
        doc_flops_mean = float(np.mean(flops[:n]))
        for name in engines:
            docs_s = n / busy[name]
            speed[bs][name] = {
                "docs": n,
                "docs_per_s": round(docs_s, 2),
                "latency_p50_ms": round(percentile(latencies[name], 50) * 1e3, 1),
                "latency_p95_ms": round(percentile(latencies[name], 95) * 1e3, 1),
                "gflop_per_s": round(docs_s * doc_flops_mean / 1e9, 1),
            }
        speed[bs]["tokens_mean"] = round(float(np.mean(tokens[:n])), 1)
        speed[bs]["computed_tokens_per_call"] = gemm_rows
        speed[bs]["gflop_per_doc"] = round(doc_flops_mean / 1e9, 3)
        log.info(
            "batch %d: %s", bs,
            ", ".join(f"{k} {v['docs_per_s']} docs/s" for k, v in speed[bs].items() if isinstance(v, dict)),
        )
        if bs == 32:
            outputs = out
    result["speed"] = {str(k): v for k, v in speed.items()}

    # Parity on the batch-32 run's texts.
    def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    n_par = len(outputs["torch_fp32"])
    c_fp32 = cos(outputs["onnx_fp32"], outputs["torch_fp32"])
    c_int8 = cos(outputs["onnx_int8"], outputs["onnx_fp32"])
    c_int8_t = cos(outputs["onnx_int8"], outputs["torch_fp32"])
    result["parity"] = {
        "texts": n_par,
        "onnx_fp32_vs_torch": {"min": float(c_fp32.min()), "mean": float(c_fp32.mean())},
        "onnx_int8_vs_onnx_fp32": {
            "min": float(c_int8.min()), "mean": float(c_int8.mean()), "p01": float(np.percentile(c_int8, 1)),
        },
        "onnx_int8_vs_torch": {"min": float(c_int8_t.min()), "mean": float(c_int8_t.mean())},
    }

    # Batch invariance: alone vs in its batch of 32 (from the speed run).
    k = min(args.invariance_texts, n_par)
    alone = np.stack([int8.encode([texts[i]])[0] for i in range(k)])
    c_inv = cos(alone, outputs["onnx_int8"][:k])
    result["int8_batch_invariance"] = {"texts": k, "min": float(c_inv.min()), "mean": float(c_inv.mean())}

    gemm_ceiling = float(np.median(gemm_rates)) if gemm_rates else float("nan")
    fp32_rate = speed[32]["onnx_fp32"]["gflop_per_s"]
    result["gemm_ceiling"] = {
        "gflop_per_s_median": round(gemm_ceiling, 1),
        "gflop_per_s_runs": [round(r, 1) for r in gemm_rates],
        "rows": speed[32]["computed_tokens_per_call"],
        "shapes": "x[rows,768] @ 768x2304, 768x768, 768x3072; h[rows,3072] @ 3072x768",
    }
    s32 = speed[32]
    result["headline"] = {
        "onnx_fp32_vs_torch_bs32": round(s32["onnx_fp32"]["docs_per_s"] / s32["torch_fp32"]["docs_per_s"], 2),
        "int8_vs_fp32_bs32": round(s32["onnx_int8"]["docs_per_s"] / s32["onnx_fp32"]["docs_per_s"], 2),
        "fp32_cos_min": round(float(c_fp32.min()), 6),
        "int8_cos_mean": round(float(c_int8.mean()), 5),
        "int8_cos_min": round(float(c_int8.min()), 5),
        "int8_batch_invariance_cos_min": round(float(c_inv.min()), 6),
        "fp32_gemm_ceiling_fraction": round(fp32_rate / gemm_ceiling, 3),
    }
    h = result["headline"]
    result["targets"] = {
        "onnx_fp32_vs_torch_bs32 >= 2": h["onnx_fp32_vs_torch_bs32"] >= 2,
        "fp32_cos_min >= 0.9999": h["fp32_cos_min"] >= 0.9999,
        "int8_vs_fp32_bs32 >= 2": h["int8_vs_fp32_bs32"] >= 2,
        "int8_cos_mean >= 0.995": h["int8_cos_mean"] >= 0.995,
        "int8_cos_min >= 0.98": h["int8_cos_min"] >= 0.98,
        "int8_batch_invariance_cos_min >= 0.9999": h["int8_batch_invariance_cos_min"] >= 0.9999,
        "fp32_gemm_ceiling_fraction >= 0.75": h["fp32_gemm_ceiling_fraction"] >= 0.75,
    }
    from arttag.encoders.manifest import read_manifest

    manifest = read_manifest(onnx_dir)
    result["model"] = {
        "model_dir": str(args.model_dir),
        "onnx_dir": str(onnx_dir),
        "source_sha256": manifest.source_sha256,
        "int8_recipe": manifest.variants["int8"].quantization,
        "threads": args.threads,
        "catalogue": str(args.catalogue),
    }
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'batch':>5} {'engine':<11} {'docs/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'GFLOP/s':>8}")
    for bs, row in speed.items():
        for name in engines:
            r = row[name]
            print(f"{bs:>5} {name:<11} {r['docs_per_s']:>8} {r['latency_p50_ms']:>8} {r['latency_p95_ms']:>8} {r['gflop_per_s']:>8}")
    print(f"\nGEMM ceiling (onnxruntime MatMul, {args.threads} threads): {gemm_ceiling:.1f} GFLOP/s")
    print(f"parity on {n_par} texts: " + json.dumps(result["parity"]))
    print("headline: " + json.dumps(h))
    print("targets: " + json.dumps(result["targets"]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
