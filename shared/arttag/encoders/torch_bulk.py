"""The bulk encoder: the same model on a GPU in half precision with large batches (needs arttag[export]).

For work measured in catalogues, not events (``arttag replay`` of a whole topic when
``ARTTAG_ENCODER__BULK_DEVICE`` is set). It computes what the ONNX fp32 export computes: the
fetched model's transformer (torch + transformers), the same ``tokenizer.json`` and truncation,
mean pooling over the attention mask and L2 normalisation in float32. It therefore answers to
the fp32 export's name (``<model>/onnx-fp32``): the name marks an embedding space, and
device and precision are execution details, as the ONNX execution provider is.

torch is imported when an instance is built, never by importing arttag's runtime modules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arttag.errors import ConfigurationError, ModelError

log = logging.getLogger(__name__)

DTYPES = ("fp32", "bf16", "fp16")


def _torch():
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigurationError(
            f'the bulk encoder needs torch and transformers: pip install "arttag[export]" ({exc})'
        ) from exc
    return torch, transformers


class TorchBulkEncoder:
    """A :class:`~arttag.encoders.base.TextEncoder` running the fetched model with torch.

    Example::

        encoder = TorchBulkEncoder(Path("~/.cache/arttag/models/all-mpnet-base-v2").expanduser(),
                                   device="cuda", dtype="bf16", batch_size=1024)
        vectors = encoder.encode(texts)
    """

    def __init__(self, model_dir: Path, *, device: str = "cuda", dtype: str = "bf16",
                 batch_size: int = 1024, tokens_per_batch: int = 0) -> None:
        from tokenizers import Tokenizer

        from arttag.encoders.export import read_sentence_config

        if dtype not in DTYPES:
            raise ConfigurationError(f"bulk dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        torch, transformers = _torch()
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigurationError(f"bulk device {device!r} but torch sees no CUDA device here; "
                                     "unset ARTTAG_ENCODER__BULK_DEVICE or use cpu")
        self.model_dir = Path(model_dir)
        self.sentence = read_sentence_config(self.model_dir)
        if not self.sentence.normalize:
            raise ModelError(f"{model_dir} does not normalise its embeddings; the bulk encoder expects it")
        tokenizer_path = self.model_dir / "tokenizer.json"
        if not tokenizer_path.is_file():
            raise ModelError(f"{tokenizer_path} is missing; run `arttag model fetch` again")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.sentence.max_length)
        self.device = torch.device(device)
        self.dtype_name = dtype
        self.torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        self.batch_size = max(1, batch_size)
        # A cap on padded tokens per batch, so a batch of long texts does not run out of memory
        # where a batch of short ones fits; 0: batch_size x 128.
        self.tokens_per_batch = tokens_per_batch or self.batch_size * 128
        # Loaded in float32 and cast: the same on every transformers version the export extra allows.
        self._model = transformers.AutoModel.from_pretrained(str(self.model_dir)).to(
            device=self.device, dtype=self.torch_dtype).eval()
        log.info("bulk encoder %s on %s in %s, batches of up to %d texts", self.name, self.device, dtype,
                 self.batch_size)

    @property
    def name(self) -> str:
        return f"{self.model_dir.name}/onnx-fp32"

    @property
    def dim(self) -> int:
        return self.sentence.embedding_dim

    def batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices sorted by length (longest first), cut at ``batch_size`` texts or ``tokens_per_batch``
        padded tokens, so each batch pads only to its own longest text."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        out: list[list[int]] = []
        current: list[int] = []
        for i in order:
            if current and (len(current) >= self.batch_size
                            or (len(current) + 1) * lengths[current[0]] > self.tokens_per_batch):
                out.append(current)
                current = []
            current.append(i)
        if current:
            out.append(current)
        return out

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        torch, _ = _torch()
        longest = max(len(ids) for ids in batch)
        ids = torch.full((len(batch), longest), self.sentence.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            hidden = self._model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            # sentence-transformers' arithmetic, in float32 whatever the model's precision.
            m = mask.unsqueeze(-1).float()
            pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1, eps=1e-12)
        return pooled.cpu().numpy().astype(np.float32, copy=False)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        token_ids = [enc.ids for enc in self._tokenizer.encode_batch(list(texts))]
        for chunk in self.batches([len(ids) for ids in token_ids]):
            out[chunk] = self._run([token_ids[i] for i in chunk])
        return out


def open_bulk_encoder(settings) -> TorchBulkEncoder:
    """The bulk encoder of :class:`~arttag.settings.EncoderSettings` (``bulk_device`` must be set)."""
    if not settings.bulk_device:
        raise ConfigurationError("no bulk device configured (ARTTAG_ENCODER__BULK_DEVICE)")
    return TorchBulkEncoder(settings.model_dir, device=settings.bulk_device, dtype=settings.bulk_dtype,
                            batch_size=settings.bulk_batch_size)
