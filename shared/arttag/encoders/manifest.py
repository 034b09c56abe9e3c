"""The manifest of an exported ONNX encoder: what the runtime needs to reproduce sentence-transformers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from arttag.errors import ModelError

MANIFEST_NAME = "manifest.json"
"""Written last by ``arttag model export``: its presence means the export is complete."""


class OnnxVariant(BaseModel):
    """One exported model file (``fp32`` or ``int8``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    file: str
    size: int
    sha256: str
    quantization: dict | None = Field(None, description="The recipe, for int8 variants")


class OnnxManifest(BaseModel):
    """Everything the torch-free runtime needs besides the ``.onnx`` files and ``tokenizer.json``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format: int = 1
    model_name: str
    source_sha256: str = Field(description="sha256 of the source model.safetensors")
    opset: int
    variants: dict[str, OnnxVariant]
    tokenizer: str = "tokenizer.json"
    pooling: Literal["mean"] = "mean"
    normalize: bool = True
    max_length: int
    embedding_dim: int
    pad_token_id: int
    inputs: list[str]
    output: str = "last_hidden_state"
    libraries: dict[str, str] = Field(default_factory=dict)
    created_at: str = ""

    def variant(self, name: str) -> OnnxVariant:
        if name not in self.variants:
            raise ModelError(
                f"the exported model has no {name!r} variant (has {sorted(self.variants)}); "
                f"run `arttag model export --variants {name}`",
                variant=name,
            )
        return self.variants[name]


def read_manifest(onnx_dir: Path) -> OnnxManifest:
    path = Path(onnx_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(
            f"no exported encoder in {onnx_dir} (missing {MANIFEST_NAME}); run `arttag model fetch` "
            "and `arttag model export`",
            onnx_dir=str(onnx_dir),
        )
    try:
        return OnnxManifest.model_validate_json(path.read_text())
    except (ValidationError, ValueError) as exc:
        raise ModelError(f"unreadable encoder manifest {path}: {exc}", onnx_dir=str(onnx_dir)) from exc


def write_manifest(onnx_dir: Path, manifest: OnnxManifest) -> Path:
    """Write atomically, so a process polling for the manifest never reads half of it."""
    path = Path(onnx_dir) / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    os.replace(tmp, path)
    return path
