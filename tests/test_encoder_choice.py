"""Choosing the fp32 or int8 export by the CPU (variant=auto), by measurement, or by the bundle."""

from __future__ import annotations

import numpy as np
import pytest
from arttag import machine
from arttag.encoders.choice import choose_variant, measure_fastest, variant_of
from arttag.encoders.export import calibration_texts
from arttag.encoders.loader import encoder_choice, load_encoder
from arttag.encoders.onnx import OnnxEncoder
from arttag.model.bundle import bundle_encoder
from arttag.settings import EncoderSettings, StreamSettings
from arttag_stream.metrics import StreamMetrics


@pytest.mark.parametrize(("flags", "variant", "reason"), [
    (["sse4_2", "avx", "avx2", "fma"], "fp32", "no-int8-dot-product"),           # Haswell..Comet Lake, Zen 1-3
    (["avx2", "avx512f", "avx512bw", "avx512vl"], "fp32", "no-int8-dot-product"),  # Skylake-SP: no VNNI
    (["avx2", "avx512f", "avx512_vnni"], "int8", "int8-dot-product"),            # Cascade Lake, Zen 4
    (["avx2", "avx_vnni"], "int8", "int8-dot-product"),                          # Alder Lake (AVX-VNNI only)
    (["avx2", "amx_tile", "amx_int8"], "int8", "int8-dot-product"),              # Sapphire Rapids
    (["asimddp"], "int8", "int8-dot-product"),                                   # Graviton 2, Apple M
    ([], "fp32", "no-int8-dot-product"),                                         # unknown CPU
])
def test_auto_rule_is_a_function_of_the_cpu_flags(flags, variant, reason):
    choice = choose_variant(flags, "cpu")
    assert (choice.variant, choice.reason, choice.provider) == (variant, reason, "cpu")
    assert choice.detail


def test_cuda_gets_fp32_whatever_the_cpu():
    assert choose_variant(["avx512_vnni", "amx_int8"], "cuda").variant == "fp32"


def test_variant_of_an_encoder_name():
    assert variant_of("all-mpnet-base-v2/onnx-int8") == "int8"
    assert variant_of("tiny-mpnet/onnx-fp32") == "fp32"
    assert variant_of("hashing-256") is None
    assert variant_of("x/onnx-int4") is None


def test_auto_is_the_default_and_measure_is_accepted(monkeypatch):
    assert EncoderSettings().variant == "auto"
    monkeypatch.setenv("ARTTAG_ENCODER__VARIANT", "measure")
    assert StreamSettings().encoder.variant == "measure"
    monkeypatch.setenv("ARTTAG_ENCODER__VARIANT", "int4")
    with pytest.raises(ValueError, match="variant"):
        StreamSettings()


def _settings(tiny_mpnet_dir, **update) -> EncoderSettings:
    return EncoderSettings(**{"model_dir": tiny_mpnet_dir, "intra_op_threads": 1, "execution_provider": "cpu",
                              "cache_size": 0, **update})


@pytest.mark.parametrize(("flags", "variant"), [(["avx2", "fma"], "fp32"), (["avx2", "avx512_vnni"], "int8")])
def test_auto_loads_the_variant_the_rule_picks(tiny_mpnet_dir, tiny_onnx_dir, monkeypatch, flags, variant):
    monkeypatch.setattr(machine, "cpu_flags", lambda: flags)
    encoder = load_encoder(_settings(tiny_mpnet_dir, variant="auto"))
    choice = encoder_choice(encoder)
    assert choice.variant == variant and choice.reason == choose_variant(flags).reason
    assert encoder.name.endswith(f"/onnx-{variant}")
    texts = calibration_texts(20, seed=3)
    np.testing.assert_allclose(encoder.encode(texts), OnnxEncoder(tiny_onnx_dir, variant).encode(texts), atol=1e-6)


def test_auto_on_this_machine_follows_its_flags(tiny_mpnet_dir, tiny_onnx_dir):
    encoder = load_encoder(_settings(tiny_mpnet_dir, variant="auto", cache_size=100))
    assert encoder_choice(encoder) == choose_variant(machine.cpu_flags(), "cpu")


def test_an_explicit_variant_is_kept(tiny_mpnet_dir, tiny_onnx_dir, monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: ["avx512_vnni"])
    choice = encoder_choice(load_encoder(_settings(tiny_mpnet_dir, variant="fp32"), bundle_variant="int8"))
    assert (choice.variant, choice.reason) == ("fp32", "configured")


def test_auto_follows_the_bundles_variant(tiny_mpnet_dir, tiny_onnx_dir, monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: ["avx512_vnni"])  # the rule alone would pick int8
    manifest = {"encoder": {"name": f"{tiny_mpnet_dir.name}/onnx-fp32", "dim": 32}}
    encoder = bundle_encoder(manifest, _settings(tiny_mpnet_dir, variant="auto"))
    choice = encoder_choice(encoder)
    assert (choice.variant, choice.reason) == ("fp32", "bundle")
    assert "int8" in choice.detail  # says what this machine would have preferred
    assert encoder.name == manifest["encoder"]["name"]


def test_measure_keeps_the_faster_of_the_two(tiny_onnx_dir):
    texts = calibration_texts(16, seed=5)
    kept, choice, best = measure_fastest(lambda v: OnnxEncoder(tiny_onnx_dir, v, intra_op_threads=1), texts, "cpu")
    assert set(best) == {"fp32", "int8"} and all(0 < s < float("inf") for s in best.values())
    assert choice.variant == min(best, key=best.get) == kept.variant
    assert choice.reason == "measured" and "int8" in choice.detail and "fp32" in choice.detail


def test_measure_mode_end_to_end(tiny_mpnet_dir, tiny_onnx_dir):
    encoder = load_encoder(_settings(tiny_mpnet_dir, variant="measure"))
    choice = encoder_choice(encoder)
    assert choice.reason == "measured" and encoder.name.endswith(f"/onnx-{choice.variant}")


def test_rows_come_back_in_the_callers_order(tiny_onnx_dir):
    # The encoder sorts texts by length into batches; the output must still follow the input.
    encoder = OnnxEncoder(tiny_onnx_dir, "fp32", batch_size=4)
    texts = calibration_texts(30, seed=11)
    texts = sorted(texts, key=len)[::2] + sorted(texts, key=len)[1::2][::-1]  # lengths far from sorted
    alone = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(encoder.encode(texts), alone, atol=1e-5)


def test_the_worker_metric_names_the_choice(tiny_mpnet_dir, tiny_onnx_dir, monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: ["avx2"])
    metrics = StreamMetrics()
    encoder = load_encoder(_settings(tiny_mpnet_dir, variant="auto", cache_size=10))
    labels = metrics.record_encoder(encoder)
    assert labels == {"name": encoder.name, "variant": "fp32", "provider": "cpu", "reason": "no-int8-dot-product"}
    assert metrics.registry.get_sample_value("arttag_stream_encoder_info", labels) == 1.0
    hashing = metrics.record_encoder(None)
    assert hashing["reason"] == "no-onnx-encoder"
