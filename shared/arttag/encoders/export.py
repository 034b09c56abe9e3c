"""``arttag model export``: a fetched sentence-transformers model to fp32 and int8 ONNX, with a manifest.

Needs the ``export`` extra (torch, transformers, optimum); the runtime that
loads the result (:mod:`arttag.encoders.onnx`) does not.

Steps: optimum exports the transformer (task ``feature-extraction``, output
``last_hidden_state``); onnxruntime's transformer optimizer fuses bias + GELU
into one kernel (fp32); the int8 model is a
static, calibrated quantization of the unfused export (see :class:`QuantRecipe`);
the tokenizer is copied; the manifest is written last.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from arttag.checksums import file_sha256
from arttag.encoders.manifest import (
    MANIFEST_NAME,
    OnnxManifest,
    OnnxVariant,
    write_manifest,
)
from arttag.encoders.export_noise import expected_export_noise_silenced, optimizer_steps_quiet
from arttag.errors import ModelError

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
DEFAULT_OPSET = 18
SAMPLE_CATALOGUE = Path(__file__).parents[1] / "data" / "tate_sample.jsonl.gz"


@dataclass(frozen=True)
class QuantRecipe:
    """How the int8 variant is made: SmoothQuant, then static (calibrated) QDQ int8 of the weight MatMuls.

    Why each choice (the alternatives measured, with their cosines to fp32, are in
    docs/decisions.md):

    - **static, not dynamic**: dynamic quantization computes activation scales
      from the whole batch at run time, so a text's embedding would depend on
      the texts batched with it. Calibrated (fixed) scales make every row's
      arithmetic independent of the others: the stream can batch whatever arrives.
    - **SmoothQuant, alpha 0.8, 0.7 for the FFN inputs** (:func:`smooth_activations`):
      MPNet's LayerNorm and GELU outputs have a few channels 10-100x larger than
      the rest; one per-tensor uint8 scale sized for them leaves the others a
      handful of levels. Dividing each channel by ``s`` and multiplying the weight
      rows by ``s`` is exact in fp32 and moves most of the outliers into the
      per-channel weight scales.
    - **only MatMuls with a weight**: the activation-by-activation attention
      products are a small share of the FLOPs at catalogue text lengths.
    - **no output quantization** (``OpTypesToExcludeOutputQuantization``): the
      MatMul results stay float (onnxruntime runs int8 x int8 -> float), saving
      a requantization error per layer.
    - **the FFN output projection of layer 1 stays fp32**: its input (an early
      GELU output) is the hardest to quantize; 1 of 72 MatMuls (~3 % of the FLOPs).
    - **per-channel int8 weights** (symmetric), uint8 activations (asymmetric).
    - **MinMax calibration on 128 single texts**: ranges from unpadded inputs,
      so padding never widens them; more texts widen the ranges and cost resolution.
    """

    name: str = "smoothquant-static-qdq-v3"
    calibrate_method: str = "MinMax"
    per_channel: bool = True
    exclude_patterns: tuple[str, ...] = ("layer.1/output/dense/MatMul",)
    calibration_size: int = 128
    reduce_range: bool = False
    smooth_alpha: float | None = 0.8
    smooth_alpha_overrides: tuple[tuple[str, float], ...] = (("intermediate/dense", 0.7),)
    """``(node name pattern, alpha)`` pairs; the first match wins over ``smooth_alpha``."""
    smooth_alpha_grid: tuple[float, ...] = ()
    """When set, each activation's alpha is searched on this grid (lowest simulated error)."""
    extra_options: dict = field(
        default_factory=lambda: {
            "ActivationSymmetric": False,
            "WeightSymmetric": True,
            "OpTypesToExcludeOutputQuantization": ["MatMul"],
        }
    )


DEFAULT_RECIPE = QuantRecipe()


def _require_export_deps() -> None:
    missing = []
    for module in ("torch", "transformers", "optimum.exporters.onnx", "onnx"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module.split(".")[0])
    if missing:
        raise ModelError(
            f"model export needs {', '.join(missing)}: pip install \"arttag[export]\"",
            missing=missing,
        )


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("torch", "transformers", "sentence-transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class SentenceConfig:
    """What sentence-transformers does around the transformer, read from the model folder."""

    max_length: int
    pooling: str
    normalize: bool
    embedding_dim: int
    pad_token_id: int


def read_sentence_config(model_dir: Path) -> SentenceConfig:
    try:
        config = json.loads((model_dir / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{model_dir} is not a sentence-transformers model folder: {exc}") from exc
    # sentence-transformers < 5.x keeps max_seq_length in sentence_bert_config.json; 5.x in the
    # tokenizer config's model_max_length. Either way it cannot exceed the position table.
    sbert = model_dir / "sentence_bert_config.json"
    max_length = json.loads(sbert.read_text()).get("max_seq_length") if sbert.is_file() else None
    tok_config = model_dir / "tokenizer_config.json"
    if max_length is None and tok_config.is_file():
        candidate = json.loads(tok_config.read_text()).get("model_max_length")
        max_length = candidate if isinstance(candidate, int) and candidate < 100_000 else None
    positions = int(config.get("max_position_embeddings", 514)) - 2
    max_length = min(int(max_length or positions), positions)
    pooling_path = next((m["path"] for m in modules if m["type"].endswith(".Pooling")), None)
    if pooling_path is None:
        raise ModelError(f"{model_dir} has no Pooling module; only mean-pooled models are supported")
    pooling = json.loads((model_dir / pooling_path / "config.json").read_text())
    if "pooling_mode" in pooling:
        modes = [pooling["pooling_mode"]] if isinstance(pooling["pooling_mode"], str) else list(pooling["pooling_mode"])
    else:
        modes = [k.removeprefix("pooling_mode_").removesuffix("_tokens") for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if modes != ["mean"]:
        raise ModelError(f"unsupported pooling {modes} in {model_dir}; only mean pooling is supported")
    dim = pooling.get("word_embedding_dimension") or pooling.get("embedding_dimension") or config["hidden_size"]
    return SentenceConfig(
        max_length=max_length,
        pooling="mean",
        normalize=any(m["type"].endswith(".Normalize") for m in modules),
        embedding_dim=int(dim),
        pad_token_id=int(config.get("pad_token_id", 0)),
    )


def calibration_texts(n: int, catalogue: Path = SAMPLE_CATALOGUE, seed: int = 0) -> list[str]:
    """``n`` model input texts from the bundled sample (deterministic), via :func:`arttag.catalogue.text.build_text`."""
    from arttag.catalogue.records import load_catalogue
    from arttag.catalogue.text import build_text

    records, _ = load_catalogue(catalogue)
    texts = sorted({build_text(r.metadata) for r in records})
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(texts), size=min(n, len(texts)), replace=False)
    return [texts[i] for i in sorted(picks)]


class _CalibrationReader:
    """Feeds one unpadded text at a time, so the calibrated ranges come from real tokens only."""

    def __init__(self, tokenizer_path: Path, texts: Sequence[str], max_length: int, input_names: set[str], progress: bool):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length)
        self._encodings = tokenizer.encode_batch(list(texts))
        self._input_names = input_names
        self._progress = progress
        self._iter = self._feeds()

    def _feeds(self) -> Iterator[dict[str, np.ndarray]]:
        from tqdm import tqdm

        bar = tqdm(total=len(self._encodings), desc="calibrate", unit="text", disable=not self._progress)
        for enc in self._encodings:
            ids = np.array([enc.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if "token_type_ids" in self._input_names:
                feed["token_type_ids"] = np.zeros_like(ids)
            bar.update(1)
            yield feed
        bar.close()

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = self._feeds()


@dataclass
class _ActivationStats:
    """Per-channel min and max of one activation over the calibration texts, plus a row sample."""

    low: np.ndarray
    high: np.ndarray
    rows: list[np.ndarray] = field(default_factory=list)


def _activation_stats(
    model_path: Path, tensors: list[str], feeds: Iterator[dict[str, np.ndarray]], keep: float = 0.15, seed: int = 0
) -> dict[str, _ActivationStats]:
    """Run the fp32 model over the calibration inputs and observe ``tensors`` (the MatMul inputs)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    known = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in known:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    # Basic optimisations only: fusions could swallow the tensors we want to observe.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    del model
    rng = np.random.default_rng(seed)
    stats: dict[str, _ActivationStats] = {}
    for feed in feeds:
        values = session.run(tensors, feed)
        picked = None
        for name, value in zip(tensors, values):
            flat = value.reshape(-1, value.shape[-1])
            if picked is None:
                picked = rng.random(len(flat)) < keep
            low, high = flat.min(axis=0), flat.max(axis=0)
            if name not in stats:
                stats[name] = _ActivationStats(low, high)
            else:
                stats[name].low = np.minimum(stats[name].low, low)
                stats[name].high = np.maximum(stats[name].high, high)
            if picked.any():
                stats[name].rows.append(flat[picked].copy())
    return stats


def _smooth_scale(a_max: np.ndarray, w_max: np.ndarray, alpha: float) -> np.ndarray:
    scale = np.maximum(a_max, 1e-5) ** alpha / np.maximum(w_max, 1e-5) ** (1 - alpha)
    return np.clip(scale, 1e-2, 1e2).astype(np.float32)


def _simulated_error(stats: _ActivationStats, weights: list[np.ndarray], scale: np.ndarray) -> float:
    """Relative output error of the group's MatMuls under the int8 scheme (uint8 per-tensor
    activations over the calibrated range, int8 symmetric per-column weights), on the row sample."""
    x = np.concatenate(stats.rows) if stats.rows else np.zeros((1, len(scale)), np.float32)
    low = min(0.0, float((stats.low / scale).min()))
    high = max(0.0, float((stats.high / scale).max()))
    step = max(high - low, 1e-8) / 255.0
    zero = np.round(-low / step)
    xq = (np.clip(np.round(x / scale / step) + zero, 0, 255) - zero) * step
    err = ref = 0.0
    for w in weights:
        ws = w * scale[:, None]
        col = np.maximum(np.abs(ws).max(axis=0), 1e-12) / 127.0
        wq = np.round(ws / col) * col
        y = x @ w
        err += float(np.square(y - xq @ wq).sum())
        ref += float(np.square(y).sum())
    return (err / max(ref, 1e-12)) ** 0.5


def smooth_activations(
    model_path: Path,
    out_path: Path,
    nodes: list[str],
    feeds: Iterator[dict[str, np.ndarray]],
    alpha: float,
    overrides: Sequence[tuple[str, float]] = (),
    grid: Sequence[float] = (),
) -> dict:
    """SmoothQuant: move activation outliers into the weights before int8 quantization.

    For each activation ``x`` feeding weight MatMuls (Q, K and V share one),
    per input channel ``s = max|x|^alpha / max|W|^(1-alpha)``; the graph gets
    ``x / s`` (one Mul) and the weights ``s * W`` (rows), which leaves the fp32
    result unchanged but flattens the few huge channels of LayerNorm and GELU
    outputs that would otherwise dictate a coarse per-tensor activation scale.
    The Mul is explicit because these activations also feed residual
    connections (LayerNorm) or come from a non-linearity (GELU), so ``s`` cannot be folded.

    With a ``grid``, each group gets the alpha whose simulated int8 output error
    on calibration rows is lowest (layers differ: GELU outputs want more
    migration than LayerNorm outputs).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    inits = {i.name: i for i in model.graph.initializer}
    wanted = set(nodes)
    groups: dict[str, list] = {}
    for node in model.graph.node:
        if node.name in wanted:
            groups.setdefault(node.input[0], []).append(node)
    stats = _activation_stats(model_path, list(groups), feeds)
    consumers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    new_nodes = []
    chosen: dict[str, float] = {}
    errors: list[float] = []
    for tensor, group in groups.items():
        weights = [numpy_helper.to_array(inits[n.input[1]]) for n in group]
        if any(consumers.get(n.input[1], 0) != 1 for n in group):
            continue  # a shared weight cannot be rescaled for one consumer only
        w_max = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        a_max = np.maximum(np.abs(stats[tensor].low), np.abs(stats[tensor].high))
        if grid:
            trials = {a: _simulated_error(stats[tensor], weights, _smooth_scale(a_max, w_max, a)) for a in grid}
            a = min(trials, key=trials.get)
            errors.append(trials[a])
        else:
            a = next((v for pattern, v in overrides if pattern in group[0].name), alpha)
        chosen[group[0].name] = float(a)
        scale = _smooth_scale(a_max, w_max, a)
        for n, w in zip(group, weights):
            inits[n.input[1]].CopyFrom(numpy_helper.from_array((w * scale[:, None]).astype(np.float32), n.input[1]))
        inv_name, out_name = f"{tensor}_smooth_inv", f"{tensor}_smoothed"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inv_name))
        new_nodes.append((group, onnx.helper.make_node("Mul", [tensor, inv_name], [out_name], name=f"{tensor}_smooth")))
        for n in group:
            n.input[0] = out_name
    # Keep the graph topologically sorted: each Mul goes right before the first node it feeds.
    for group, mul in new_nodes:
        nodes_list = list(model.graph.node)
        first = min(nodes_list.index(n) for n in group)
        model.graph.node.insert(first, mul)
    onnx.save(model, str(out_path))
    out: dict = {"smoothed_activations": len(new_nodes), "alphas": chosen}
    if errors:
        out["simulated_error_mean"] = round(float(np.mean(errors)), 5)
        out["simulated_error_max"] = round(float(np.max(errors)), 5)
    return out


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    *,
    tokenizer_path: Path,
    max_length: int,
    texts: Sequence[str],
    recipe: QuantRecipe = DEFAULT_RECIPE,
    progress: bool = True,
    calibration_cache: Path | None = None,
) -> dict:
    """Static int8 quantization of ``fp32_path`` per ``recipe``; returns the recipe as recorded in the manifest."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    record = asdict(recipe)
    with tempfile.TemporaryDirectory(prefix="arttag-quant-") as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        # Shape inference + constant folding first, as onnxruntime's quantizer expects.
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=False)
        model = onnx.load(str(prepped), load_external_data=False)
        weights = {i.name for i in model.graph.initializer}
        matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
        selected = [n.name for n in matmuls if not any(p in n.name for p in recipe.exclude_patterns)]
        input_names = {i.name for i in model.graph.input}
        del model
        reader = _CalibrationReader(tokenizer_path, texts, max_length, input_names, progress)
        source = prepped
        if recipe.smooth_alpha is not None or recipe.smooth_alpha_grid:
            source = Path(tmp) / "smoothed.onnx"
            record.update(
                smooth_activations(
                    prepped, source, selected, reader._feeds(), recipe.smooth_alpha or 0.5,
                    recipe.smooth_alpha_overrides, recipe.smooth_alpha_grid,
                )
            )
            reader.rewind()
        quantize_static(
            str(source),
            str(out_path),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=selected,
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, recipe.calibrate_method),
            extra_options=dict(recipe.extra_options),
            calibration_cache_path=str(calibration_cache) if calibration_cache else None,
        )
    record["calibration_texts"] = len(texts)
    record["quantized_matmuls"] = len(selected)
    record["fp32_matmuls"] = len(matmuls) - len(selected)
    return record


def _optimize_fp32(raw: Path, out: Path, num_heads: int, hidden_size: int) -> None:
    """Fuse bias+GELU (onnxruntime's BERT optimizer; MPNet shares the pattern).

    Residual Add + LayerNormalization is left unfused: onnxruntime's CPU
    SkipLayerNormalization kernel is several times slower than the two ops
    (GPU providers fuse them again at load time). Attention is not fused:
    MPNet adds a relative position bias the fused kernel does not take. The
    result stays portable across execution providers.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    fusion = FusionOptions("bert")
    fusion.enable_skip_layer_norm = False
    fusion.enable_bias_skip_layer_norm = False
    optimized = optimize_model(
        str(raw), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0,
        optimization_options=fusion,
    )
    optimized.save_model_to_file(str(out))


def export_onnx(
    model_dir: Path,
    onnx_dir: Path,
    *,
    variants: Sequence[str] = ("fp32", "int8"),
    opset: int = DEFAULT_OPSET,
    recipe: QuantRecipe = DEFAULT_RECIPE,
    texts: Sequence[str] | None = None,
    optimize: bool = True,
    progress: bool = True,
) -> OnnxManifest:
    """Export ``model_dir`` (a sentence-transformers folder) into ``onnx_dir``; returns the written manifest.

    Re-exporting into an existing folder replaces files one by one (atomic
    renames) and the manifest last, so readers see either the old or the new export.
    """
    _require_export_deps()
    from optimum.exporters.onnx import main_export

    model_dir, onnx_dir = Path(model_dir), Path(onnx_dir)
    unknown = set(variants) - {"fp32", "int8"}
    if unknown or not variants:
        raise ModelError(f"unknown variants {sorted(unknown)}; choose from fp32, int8")
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"no model in {model_dir}; run `arttag model fetch` first", model_dir=str(model_dir))
    sentence = read_sentence_config(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        weights = model_dir / "pytorch_model.bin"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    steps = ["export"] + (["optimize"] if optimize and "fp32" in variants else []) + (["int8"] if "int8" in variants else [])
    from tqdm import tqdm

    # Never reach for a model hub: everything comes from the local folder.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix=".export-", dir=onnx_dir) as tmp, tqdm(
        total=len(steps), desc="export", unit="step", disable=not progress
    ) as bar:
        tmp_path = Path(tmp)
        raw_dir = tmp_path / "raw"
        bar.set_postfix_str("optimum export")
        try:
            # the exporter's expected deprecation and tracing warnings, and why each is expected,
            # are in arttag.encoders.export_noise; everything else still shows
            with expected_export_noise_silenced():
                main_export(
                    str(model_dir),
                    raw_dir,
                    task="feature-extraction",
                    library_name="transformers",
                    opset=opset,
                    do_validation=False,
                    local_files_only=True,
                    device="cpu",
                )
        except Exception as exc:  # optimum/torch raise many unrelated types; the CLI needs one
            raise ModelError(f"ONNX export of {model_dir} failed: {exc}", model_dir=str(model_dir)) from exc
        bar.update(1)
        raw = raw_dir / "model.onnx"
        import onnx

        graph = onnx.load(str(raw), load_external_data=False).graph
        inputs = [i.name for i in graph.input]
        output = graph.output[0].name
        staged: dict[str, Path] = {}
        records: dict[str, dict | None] = {}
        if "fp32" in variants:
            fp32 = tmp_path / FP32_FILE
            if optimize:
                bar.set_postfix_str("fuse fp32")
                with optimizer_steps_quiet():
                    _optimize_fp32(raw, fp32, int(config["num_attention_heads"]), int(config["hidden_size"]))
                bar.update(1)
            else:
                shutil.copyfile(raw, fp32)
            staged["fp32"], records["fp32"] = fp32, None
        tokenizer_src = model_dir / "tokenizer.json"
        if not tokenizer_src.is_file():
            tokenizer_src = raw_dir / "tokenizer.json"
        if "int8" in variants:
            bar.set_postfix_str("int8 static quantization")
            int8 = tmp_path / INT8_FILE
            calib = list(texts) if texts is not None else calibration_texts(recipe.calibration_size)
            with optimizer_steps_quiet():
                records["int8"] = quantize_int8(
                    raw, int8, tokenizer_path=tokenizer_src, max_length=sentence.max_length,
                    texts=calib, recipe=recipe, progress=progress,
                )
            staged["int8"] = int8
            bar.update(1)
        shutil.copyfile(tokenizer_src, tmp_path / "tokenizer.json")
        staged_files = {"tokenizer": tmp_path / "tokenizer.json", **staged}
        variant_entries = {}
        for name, path in staged.items():
            variant_entries[name] = OnnxVariant(
                file=path.name, size=path.stat().st_size, sha256=file_sha256(path), quantization=records[name]
            )
        for path in staged_files.values():
            os.replace(path, onnx_dir / path.name)
    # Keep variants exported earlier (e.g. fp32) when only one is re-exported, if their files are intact.
    previous = onnx_dir / MANIFEST_NAME
    if previous.is_file():
        try:
            old = OnnxManifest.model_validate_json(previous.read_text())
            if old.source_sha256 == file_sha256(weights):
                for name, entry in old.variants.items():
                    path = onnx_dir / entry.file
                    if name not in variant_entries and path.is_file() and path.stat().st_size == entry.size:
                        variant_entries[name] = entry
        except ValueError:
            pass
    manifest = OnnxManifest(
        model_name=model_dir.name,
        source_sha256=file_sha256(weights),
        opset=opset,
        variants=variant_entries,
        max_length=sentence.max_length,
        embedding_dim=sentence.embedding_dim,
        pad_token_id=sentence.pad_token_id,
        normalize=sentence.normalize,
        inputs=inputs,
        output=output,
        libraries=_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_manifest(onnx_dir, manifest)
    log.info("exported %s to %s (%s)", model_dir.name, onnx_dir, ", ".join(variant_entries))
    return manifest
