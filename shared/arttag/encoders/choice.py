"""Which ONNX export, fp32 or int8, an encoder runs, and why (``ARTTAG_ENCODER__VARIANT=auto|measure``).

The int8 export only pays where the CPU multiplies int8 in one instruction:
VNNI (``avx512_vnni``, ``avx_vnni``), AMX (``amx_int8``) or, on ARM, the dot-product
extensions (``asimddp``, ``i8mm``). There onnxruntime's u8s8 GEMM does 4 multiply-adds per
lane per instruction, and the int8 export measured 2.4x the fp32 one (docs/benchmarks.md).
Without them (AVX2 or AVX-512F only) the same GEMM takes ``vpmaddubsw`` + ``vpmaddwd`` +
``vpaddd`` for what one fp32 FMA pair does in two: about 1.3x the fp32 ceiling before the
quantize/dequantize nodes and the layer kept in fp32 are paid for, i.e. roughly a wash,
while int8 still costs fidelity (cosine to fp32 0.996 on average). So such CPUs get fp32.
On CUDA the QDQ int8 graph is not fused into int8 kernels, so CUDA gets fp32 too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
"""CPU flags (as /proc/cpuinfo names them) of a one-instruction int8 dot product."""


@dataclass(frozen=True)
class EncoderChoice:
    """The variant an encoder runs, on which provider, and why.

    ``reason`` is a short label (also a Prometheus label): ``configured`` (an explicit
    variant), ``int8-dot-product`` / ``no-int8-dot-product`` / ``cuda`` (the ``auto`` rule),
    ``measured`` (``measure``: the faster of the two on this machine), ``bundle`` (the
    bundle's embeddings were made with this variant, so it is the only one that fits).
    ``detail`` says the same in a sentence, for the log.
    """

    variant: str
    provider: str
    reason: str
    detail: str = ""

    def labels(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def choose_variant(flags: Iterable[str], provider: str = "cpu") -> EncoderChoice:
    """The ``auto`` rule: int8 where the CPU has an int8 dot product, fp32 elsewhere and on CUDA."""
    if provider == "cuda":
        return EncoderChoice("fp32", provider, "cuda", "int8 QDQ graphs run dequantized on CUDA")
    present = sorted(set(flags) & set(INT8_DOT_FLAGS), key=INT8_DOT_FLAGS.index)
    if present:
        return EncoderChoice("int8", provider, "int8-dot-product",
                             f"the CPU has {', '.join(present)}: int8 GEMMs run at about twice fp32")
    return EncoderChoice("fp32", provider, "no-int8-dot-product",
                         "no VNNI/AMX/dot-product instructions: int8 would gain little speed and cost fidelity")


def variant_of(encoder_name: str) -> str | None:
    """``int8`` for ``all-mpnet-base-v2/onnx-int8``; None for a name that is not an ONNX export's."""
    tail = encoder_name.rsplit("/", 1)[-1]
    if tail.startswith("onnx-") and tail[5:] in ("fp32", "int8"):
        return tail[5:]
    return None


def measure_fastest(open_variant: Callable[[str], Any], texts: Sequence[str], provider: str,
                    rounds: int = 3) -> tuple[Any, EncoderChoice, dict[str, float]]:
    """Open both variants, time each on ``texts`` (a warm-up, then ``rounds`` turns taken in
    alternation so both see the same machine load), keep the faster one and drop the other.
    Returns the kept encoder, the choice and each variant's best time in seconds.

    The best round of each counts: the other processes on the machine only ever add time.
    """
    encoders = {v: open_variant(v) for v in ("fp32", "int8")}
    best = {v: float("inf") for v in encoders}
    for encoder in encoders.values():
        encoder.encode(texts)
    for _ in range(rounds):
        for variant, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode(texts)
            best[variant] = min(best[variant], time.perf_counter() - started)
    winner = min(best, key=best.__getitem__)
    detail = (f"{len(texts)} texts: int8 {best['int8'] * 1000:.1f} ms, fp32 {best['fp32'] * 1000:.1f} ms "
              f"(best of {rounds})")
    choice = EncoderChoice(winner, provider, "measured", detail)
    return encoders[winner], choice, best
