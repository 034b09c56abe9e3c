"""The production encoder: an exported sentence-transformers model run by onnxruntime, torch-free.

It reproduces sentence-transformers for all-mpnet-base-v2: the model's own
``tokenizer.json`` (truncated to the manifest's max length), the transformer
in ONNX, mean pooling over the attention mask, then L2 normalisation.
Texts are sorted by token count and batched so each batch pads only to its
own longest text; rows come back in the caller's order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from arttag.encoders.manifest import OnnxManifest, read_manifest
from arttag.errors import ConfigurationError, ModelError

log = logging.getLogger(__name__)


def select_providers(execution_provider: str) -> list[str]:
    """onnxruntime providers for ``auto`` / ``cpu`` / ``cuda`` (CPU always last, as the fallback)."""
    available = ort.get_available_providers()
    if execution_provider == "cpu":
        return ["CPUExecutionProvider"]
    if execution_provider == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ConfigurationError(
                "execution_provider=cuda but onnxruntime has no CUDA provider here "
                f"(available: {', '.join(available)}); install onnxruntime-gpu or use auto/cpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray, normalize: bool = True) -> np.ndarray:
    """sentence-transformers' Pooling(mean) + Normalize, in numpy.

    Same arithmetic: masked sum over tokens divided by ``max(token count, 1e-9)``,
    then division by ``max(L2 norm, 1e-12)`` as ``torch.nn.functional.normalize`` does.
    """
    m = mask.astype(np.float32)[:, :, None]
    summed = (hidden.astype(np.float32) * m).sum(axis=1)
    counts = np.maximum(m.sum(axis=1), 1e-9)
    pooled = summed / counts
    if normalize:
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        pooled = pooled / np.maximum(norms, 1e-12)
    return pooled.astype(np.float32, copy=False)


class OnnxEncoder:
    """A :class:`~arttag.encoders.base.TextEncoder` over an exported ONNX model folder.

    Example::

        encoder = OnnxEncoder(Path("~/.cache/arttag/models/all-mpnet-base-v2-onnx").expanduser(), "int8")
        vectors = encoder.encode(["Town on Hill", "A Fishing Boat"])
    """

    def __init__(
        self,
        onnx_dir: Path,
        variant: str = "int8",
        *,
        intra_op_threads: int = 0,
        execution_provider: str = "auto",
        batch_size: int = 32,
        spin_wait: bool = False,
    ) -> None:
        self.onnx_dir = Path(onnx_dir)
        self.manifest: OnnxManifest = read_manifest(self.onnx_dir)
        self.variant = variant
        self.batch_size = max(1, batch_size)
        self.max_padding = 0.10
        self.min_batch_tokens = 256
        model_path = self.onnx_dir / self.manifest.variant(variant).file
        tokenizer_path = self.onnx_dir / self.manifest.tokenizer
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise ModelError(f"{path} is missing; run `arttag model export` again", onnx_dir=str(onnx_dir))
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # Padding is done per length bucket below; the tokenizer must not pad to a fixed length.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.manifest.max_length)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        # One request at a time per session; inter-op parallelism only adds thread contention.
        options.inter_op_num_threads = 1
        # Spinning worker threads win a little throughput on an idle machine, but next to a
        # stream worker, an API and scikit-learn they burn the cores the others need and
        # stretch tail latency; they sleep between runs unless asked otherwise.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.providers = select_providers(execution_provider)
        # onnxruntime's CPU SkipLayerNormalization kernel (the fusion of residual Add +
        # LayerNormalization) is several times slower than the two ops it replaces (1.32,
        # 1100x768 rows: ~6 ms vs ~0.9 ms); fused, it took ~19 % of the int8 model's time.
        disabled = ["SkipLayerNormFusion"] if self.providers[0] == "CPUExecutionProvider" else []
        try:
            self._session = ort.InferenceSession(
                str(model_path), options, providers=self.providers, disabled_optimizers=disabled
            )
        except Exception as exc:  # onnxruntime raises its own, unrelated exception types
            raise ModelError(f"onnxruntime cannot load {model_path}: {exc}", onnx_dir=str(onnx_dir)) from exc
        self._input_names = {i.name for i in self._session.get_inputs()}
        log.info(
            "encoder %s loaded from %s (providers %s, threads %s)",
            self.name, model_path, ",".join(self._session.get_providers()), intra_op_threads or "auto",
        )

    @property
    def name(self) -> str:
        return f"{self.manifest.model_name}/onnx-{self.variant}"

    @property
    def dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def fingerprint(self) -> str:
        """Changes whenever the model file does (a re-export), while ``name`` stays stable."""
        return self.manifest.variant(self.variant).sha256[:16]

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [enc.ids for enc in self._tokenizer.encode_batch(list(texts))]

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        longest = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), longest), self.manifest.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self._session.run([self.manifest.output], feeds)[0]
        return mean_pool_normalize(hidden, mask, self.manifest.normalize)

    def buckets(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped into batches of similar length, longest first.

        A batch holds at most ``batch_size`` texts and is closed early when the
        next (shorter) text would push padding above ``max_padding`` of the real
        tokens, unless the batch is still too small (``min_batch_tokens``) to keep
        the matrix multiplications efficient. One long text thus does not make
        31 short ones pay for its length.
        """
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        out: list[list[int]] = []
        current: list[int] = []
        real = 0
        for i in order:
            if current:
                longest = lengths[current[0]]
                padded = (len(current) + 1) * longest
                full = len(current) >= self.batch_size
                wasteful = padded > (real + lengths[i]) * (1 + self.max_padding)
                if full or (wasteful and len(current) * longest >= self.min_batch_tokens):
                    out.append(current)
                    current, real = [], 0
            current.append(i)
            real += lengths[i]
        if current:
            out.append(current)
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        token_ids = self.tokenize(texts)
        for chunk in self.buckets([len(ids) for ids in token_ids]):
            out[chunk] = self._run([token_ids[i] for i in chunk])
        return out
