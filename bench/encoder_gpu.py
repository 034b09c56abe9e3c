"""Benchmark of the torch bulk encoder on a CUDA GPU (arttag.encoders.torch_bulk); refuses to run without one.

1. **speed** at Tate's text lengths: a randomly initialised model of all-mpnet-base-v2's
   shape (MPNet-base: hidden 768, 12 layers, 12 heads, FFN 3072, max length 384), built from
   the config by :func:`arttag.encoders.tiny.build_tiny_mpnet` with a WordPiece tokenizer
   trained on the texts (the real model's tokenizer when ``--model-dir`` holds one), so no
   download is needed and the token counts are real. Runs: bf16 at batch 1024, fp16 at batch
   1024, fp32 at batch 256; docs/s, tokens/s, useful GFLOP/s (real tokens only, as
   bench/encoder.py counts them) and peak GPU memory. Random weights cost what trained ones
   cost: the arithmetic does not depend on the values;
2. **agreement**: a small random MPNet exported to ONNX fp32 by ``export_onnx`` (the code
   behind ``arttag model export``) and run on the CPU by :class:`OnnxEncoder`, against the
   bulk encoder on the GPU in each precision: cosine min and mean over ``--agreement-texts``.

    .venv/bin/python bench/encoder_gpu.py [--catalogue ../shared/data/tate/artworks.jsonl.gz] [--texts 20000]

Writes ``bench/results/encoder_gpu.json`` (machine and GPU details, all figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from machine_info import machine_details, portable_path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
SAMPLE = REPO / "shared" / "arttag" / "data" / "tate_sample.jsonl.gz"
SPEED_RUNS = (("bf16", 1024), ("fp16", 1024), ("fp32", 256))
MPNET_BASE = {"hidden_size": 768, "layers": 12, "heads": 12, "intermediate_size": 3072,
              "max_seq_length": 384, "vocab_size": 30527}


def require_cuda() -> None:
    """Exit with a clear message unless torch sees a CUDA device."""
    try:
        import torch
    except ImportError:
        sys.exit('bench/encoder_gpu.py needs torch: pip install "arttag[export]"')
    if not torch.cuda.is_available():
        sys.exit("bench/encoder_gpu.py measures the bulk encoder on a CUDA GPU, and torch sees none here "
                 f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                 "run it on a machine with an NVIDIA GPU and a CUDA build of torch")


def load_texts(catalogue: Path, n: int, seed: int) -> list[str]:
    from arttag.catalogue.records import load_catalogue
    from arttag.catalogue.text import build_text

    records, _ = load_catalogue(catalogue)
    texts = sorted({build_text(r.metadata) for r in records})
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.choice(len(texts), size=min(n, len(texts)), replace=False)]


def useful_flops(tokens: int, hidden: int, layers: int, intermediate: int) -> int:
    """Multiply-adds x 2 of the encoder on one text of ``tokens`` tokens (as bench/encoder.py counts)."""
    per_layer = 8 * tokens * hidden * hidden + 4 * tokens * tokens * hidden + 4 * tokens * hidden * intermediate
    return layers * per_layer


def speed_model(work: Path, texts: list[str], model_dir: Path | None) -> Path:
    """A random MPNet-base sentence-transformers folder; the real tokenizer when ``model_dir`` has one."""
    from arttag.encoders.tiny import build_tiny_mpnet

    out = build_tiny_mpnet(work / "mpnet-base-random", texts, **MPNET_BASE)
    if model_dir is not None and (model_dir / "tokenizer.json").is_file():
        # Token counts from the real tokenizer: its ids need the real vocabulary's embedding rows.
        from transformers import MPNetModel

        real_vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
        model = MPNetModel.from_pretrained(str(out))
        model.resize_token_embeddings(real_vocab)
        model.save_pretrained(str(out), safe_serialization=True)
        (out / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
    return out


def run_speed(model: Path, texts: list[str], dtype: str, batch: int) -> dict:
    import torch
    from arttag.encoders.torch_bulk import TorchBulkEncoder

    encoder = TorchBulkEncoder(model, device="cuda", dtype=dtype, batch_size=batch)
    tokens = [len(ids) for ids in (e.ids for e in encoder._tokenizer.encode_batch(texts))]
    encoder.encode(texts[: batch])  # warm-up: kernels chosen, memory pools grown
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    encoder.encode(texts)  # returns numpy: the GPU has finished
    took = time.perf_counter() - started
    flops = sum(useful_flops(t, MPNET_BASE["hidden_size"], MPNET_BASE["layers"], MPNET_BASE["intermediate_size"])
                for t in tokens)
    return {
        "dtype": dtype, "batch_size": batch, "texts": len(texts), "seconds": round(took, 3),
        "docs_per_s": round(len(texts) / took, 1), "tokens_per_s": round(sum(tokens) / took),
        "mean_tokens": round(float(np.mean(tokens)), 1), "useful_tflop_per_s": round(flops / took / 1e12, 2),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }


def run_agreement(work: Path, texts: list[str]) -> dict:
    from arttag.encoders.export import export_onnx
    from arttag.encoders.onnx import OnnxEncoder
    from arttag.encoders.tiny import build_tiny_mpnet
    from arttag.encoders.torch_bulk import TorchBulkEncoder

    small = build_tiny_mpnet(work / "mpnet-small-random", texts, hidden_size=128, layers=4, heads=4,
                             intermediate_size=512, max_seq_length=384, vocab_size=2000)
    onnx_dir = small.with_name(small.name + "-onnx")
    export_onnx(small, onnx_dir, variants=("fp32",), texts=texts[:32], progress=False)
    reference = OnnxEncoder(onnx_dir, "fp32", execution_provider="cpu").encode(texts)
    out = {}
    for dtype in ("fp32", "bf16", "fp16"):
        vectors = TorchBulkEncoder(small, device="cuda", dtype=dtype, batch_size=1024).encode(texts)
        cos = (vectors * reference).sum(axis=1)
        out[dtype] = {"cos_min": round(float(cos.min()), 6), "cos_mean": round(float(cos.mean()), 6)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE,
                    help="Tate export (default: the full file beside the checkout, else the bundled sample)")
    ap.add_argument("--model-dir", type=Path, default=None,
                    help="the fetched all-mpnet-base-v2, for its tokenizer only (optional)")
    ap.add_argument("--texts", type=int, default=20_000, help="texts per speed run")
    ap.add_argument("--agreement-texts", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "encoder_gpu.json")
    args = ap.parse_args(argv)
    require_cuda()
    import torch
    import transformers

    catalogue = args.catalogue if args.catalogue.is_file() else SAMPLE
    texts = load_texts(catalogue, args.texts, args.seed)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="arttag-gpu-bench-") as tmp:
        work = Path(tmp)
        model = speed_model(work, texts, args.model_dir)
        speed = []
        for dtype, batch in SPEED_RUNS:
            speed.append(run_speed(model, texts, dtype, batch))
            print(json.dumps(speed[-1]))
            torch.cuda.empty_cache()
        agreement = run_agreement(work, texts[: args.agreement_texts])
        print(json.dumps({"agreement_with_onnx_fp32_cpu": agreement}))
    result = {
        "command": "bench/encoder_gpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_details(torch=torch.__version__, transformers=transformers.__version__,
                                   gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda),
        "catalogue": portable_path(catalogue),
        "started_at": started_at,
        "model": {"architecture": "MPNet-base, random weights", **MPNET_BASE,
                  "tokenizer": "all-mpnet-base-v2" if args.model_dir else "WordPiece trained on the texts"},
        "speed": speed,
        "agreement_with_onnx_fp32_cpu": agreement,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {portable_path(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
