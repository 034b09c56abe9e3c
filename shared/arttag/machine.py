"""What machine figures were measured on: CPU model and memory, recorded beside metrics."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The instruction sets onnxruntime's kernels choose between: machines of the same kind differ
# (some have AVX-512 and VNNI, some only AVX2), and int8 speed follows them; the last two are
# ARM's int8 dot products (its /proc/cpuinfo says "Features" where x86 says "flags").
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
              "asimddp", "i8mm")


def cpu_flags() -> list[str]:
    """The SIMD flags of :data:`SIMD_FLAGS` this CPU reports (Linux), in that order."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                present = set(line.split(":", 1)[1].split())
                return [f for f in SIMD_FLAGS if f in present]
    except OSError:
        pass
    return []


def memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None
