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


def test_the_exporters_expected_warnings_are_silenced_at_the_export(tiny_mpnet_dir, tmp_path, capfd, caplog):
    import logging
    import warnings

    from arttag.encoders.export_noise import OPTIMIZER_STEP_LOGGERS

    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # what a person running with -W default would see, and more
        export_onnx(tiny_mpnet_dir, tmp_path / "onnx", variants=["fp32"], progress=False)
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if issubclass(w.category, DeprecationWarning) or w.category.__name__ == "TracerWarning"]
    assert shown == []
    err = capfd.readouterr().err
    assert "torch_dtype" not in err and "Weight deduplication" not in err
    # the fp32 variant went through onnxruntime's optimizer, whose step reports stay quiet
    assert [r.getMessage() for r in caplog.records if r.name in OPTIMIZER_STEP_LOGGERS] == []
    assert any(r.name == "arttag.encoders.export" for r in caplog.records)  # arttag's own still show


def test_the_optimizer_keeps_its_warnings_and_its_levels_outside_the_export(caplog):
    import logging

    from arttag.encoders.export_noise import optimizer_steps_quiet

    caplog.set_level(logging.INFO)
    fusion = logging.getLogger("fusion_base")
    before = fusion.level
    with optimizer_steps_quiet():
        fusion.info("Fused Gelu: 12")
        fusion.warning("a fusion went wrong")
    fusion.info("Fused BiasGelu: 12")
    assert [r.getMessage() for r in caplog.records if r.name == "fusion_base"] == \
        ["a fusion went wrong", "Fused BiasGelu: 12"]
    assert fusion.level == before


def test_only_the_expected_export_warnings_are_silenced(caplog):
    import logging
    import warnings

    from arttag.encoders.export_noise import expected_export_noise_silenced

    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with expected_export_noise_silenced():
            warnings.warn("a deprecation of arttag's own", DeprecationWarning, stacklevel=1)
            logging.getLogger("optimum.exporters.onnx.base").warning("the exported model differs")
            logging.getLogger("optimum.exporters.onnx.base").warning(
                "Weight deduplication check in the ONNX export requires accelerate. Please install accelerate.")
            logging.getLogger("transformers.configuration_utils").error("`torch_dtype` is deprecated, and broke")
    assert [str(w.message) for w in caught] == ["a deprecation of arttag's own"]
    assert [r.getMessage() for r in caplog.records] == ["the exported model differs",
                                                        "`torch_dtype` is deprecated, and broke"]
    # outside the export, nothing is filtered any more
    logging.getLogger("optimum.exporters.onnx.base").warning("Weight deduplication check in the ONNX export")
    assert caplog.records[-1].getMessage().startswith("Weight deduplication")
