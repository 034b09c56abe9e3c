"""Machine details every benchmark records beside its figures."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from arttag.machine import cpu_model, memory_gib

REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine_details(**extra: object) -> dict:
    """CPU model, core count, memory, platform, commit and load average, plus ``extra``."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gb": memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "load_average_at_start": list(os.getloadavg()),
        **extra,
    }
