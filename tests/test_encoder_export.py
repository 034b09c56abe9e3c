"""`arttag model export`: optimum export, int8 recipe, manifest, re-export in place, missing extras."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from arttag.encoders.export import DEFAULT_RECIPE, export_onnx, read_sentence_config
from arttag.encoders.manifest import read_manifest
from arttag.encoders.onnx import OnnxEncoder
from arttag.errors import ModelError


def test_int8_recipe_is_recorded(tiny_onnx_dir):
    recipe = read_manifest(tiny_onnx_dir).variants["int8"].quantization
    assert recipe["name"] == DEFAULT_RECIPE.name
    assert recipe["per_channel"] and recipe["calibration_texts"] == 64
    assert recipe["quantized_matmuls"] + recipe["fp32_matmuls"] == 2 * 6  # 2 layers x (q, k, v, o, ffn in, ffn out)


def test_sentence_config_of_the_tiny_model(tiny_mpnet_dir):
    config = read_sentence_config(tiny_mpnet_dir)
    assert (config.pooling, config.normalize, config.max_length, config.embedding_dim, config.pad_token_id) == (
        "mean", True, 64, 32, 1,
    )


def test_reexport_of_one_variant_keeps_the_other(tiny_mpnet_dir, tiny_onnx_dir, tmp_path):
    from arttag_cli.main import main

    out = tmp_path / "onnx"
    assert main(["model", "export", "--model-dir", str(tiny_mpnet_dir), "--onnx-dir", str(out), "--variants", "fp32"]) == 0
    first = read_manifest(out)
    assert set(first.variants) == {"fp32"}
    texts = ["Town on Hill", "A Fishing Boat"]
    before = OnnxEncoder(out, "fp32").encode(texts)
    export_onnx(tiny_mpnet_dir, out, variants=["int8"], texts=["a sketch of a horse", "Town on Hill"] * 8, progress=False)
    second = read_manifest(out)
    assert set(second.variants) == {"fp32", "int8"}
    assert second.variants["fp32"] == first.variants["fp32"]
    np.testing.assert_allclose(OnnxEncoder(out, "fp32").encode(texts), before, atol=1e-6)
    assert OnnxEncoder(out, "int8").fingerprint != OnnxEncoder(out, "fp32").fingerprint
    assert not [p for p in out.iterdir() if p.name.startswith(".export-")]


def test_unknown_variant_is_refused(tiny_mpnet_dir, tmp_path):
    with pytest.raises(ModelError, match="unknown variants"):
        export_onnx(tiny_mpnet_dir, tmp_path / "x", variants=["fp16"], progress=False)


def test_missing_source_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="arttag model fetch"):
        export_onnx(tmp_path / "nothing", tmp_path / "x", progress=False)


def test_missing_export_extra_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "optimum.exporters.onnx", None)
    with pytest.raises(ModelError, match=r'pip install "arttag\[export\]"'):
        export_onnx(tmp_path, tmp_path / "x", progress=False)
