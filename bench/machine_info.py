"""Machine details every benchmark records beside its figures."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from pathlib import Path

from arttag.machine import cpu_flags, cpu_model, memory_gib

REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def temp_folders() -> list[Path]:
    """Where scratch folders lie: the system's temporary folder (``tempfile.gettempdir()``,
    which follows ``TMPDIR``; /var/folders/... on macOS) and /tmp."""
    return list(dict.fromkeys(Path(d).resolve() for d in (tempfile.gettempdir(), "/tmp")))


def portable_path(path: object) -> str:
    """``path`` as results may record it: relative to the checkout (``../`` for what lies
    beside it, such as the Tate file), ``~/...`` under the home folder, ``$TMPDIR/...`` in the
    temporary folder (a scratch folder of one run, wherever the machine keeps those); never
    this machine's absolute layout."""
    p = Path(str(path)).expanduser().absolute()
    for base, prefix in ((REPO, ""), (REPO.parent, "../")):
        try:
            return prefix + p.relative_to(base).as_posix()
        except ValueError:
            pass
    try:
        return "~/" + p.relative_to(Path.home()).as_posix()
    except ValueError:
        pass
    for temp in temp_folders():
        for candidate in (p, p.resolve()):  # /tmp may be a link (macOS: /private/tmp)
            try:
                return "$TMPDIR/" + candidate.relative_to(temp).as_posix()
            except ValueError:
                pass
    return ".../" + "/".join(p.parts[-3:])  # elsewhere: its last names, not the machine's layout


def portable_command(script: str, argv: list[str]) -> str:
    """``python SCRIPT ARGS`` as a results file records it: paths as :func:`portable_path` writes
    them, except /tmp ones, kept as typed so that the command runs as shown (/tmp is on every
    POSIX machine; ``$TMPDIR`` is often unset)."""
    def shown(word: str) -> str:
        if not word.startswith("/"):
            return word
        path = Path(word).absolute()
        # the checkout and what lies beside it first: a checkout may itself be under /tmp
        if path.is_relative_to(REPO) or path.is_relative_to(REPO.parent) or path.parts[:2] != ("/", "tmp"):
            return portable_path(word)  # outputs need not exist yet
        return word

    return " ".join(["python", script, *map(shown, argv)])


def _cpu_ticks() -> list[int] | None:
    """The machine's CPU time so far, in ticks: user, nice, system, idle, iowait, irq, softirq, steal."""
    try:
        with open("/proc/stat") as fh:
            return [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


_TICKS_AT_START = _cpu_ticks()


def cpu_during_run() -> dict | None:
    """Shares of the machine's CPU time since this process started: busy (everything but idle,
    iowait and steal) and stolen by the hypervisor. On a shared virtual machine the steal share
    says how much of the hardware the run did not get; two runs of one benchmark compare only
    at similar steal."""
    now = _cpu_ticks()
    if _TICKS_AT_START is None or now is None:
        return None
    delta = [b - a for a, b in zip(_TICKS_AT_START, now)]
    total = sum(delta)
    if total <= 0:
        return None
    idle, iowait, steal = delta[3], delta[4], delta[7]
    return {"busy_share": round((total - idle - iowait - steal) / total, 3),
            "steal_share": round(steal / total, 3)}


def machine_details(**extra: object) -> dict:
    """CPU model, core count, memory, platform, commit and load average, plus ``extra``."""
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gb": memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "load_average_at_start": list(os.getloadavg()),
        **extra,
    }


def bundle_details(bundle: object) -> dict:
    """What every speed result records about the bundle it ran: the version, the encoder and
    how many artworks it was trained on (its scorers' and explanations' cost grows with that)."""
    from arttag.model.bundle import read_manifest

    path = Path(str(bundle)).expanduser()
    manifest = read_manifest(path)
    training = manifest.get("training", {})
    artworks = training.get("artworks", {})
    # The bundle's scorers are refitted on every split they name (train + rerank by default):
    # those are the artworks its neighbour searches and explanations run over.
    fitted_on = training.get("scorers_fitted_on", ["train"])
    return {
        "bundle": portable_path(path),
        "model_version": manifest.get("model_version"),
        "encoder": (manifest.get("encoder") or {}).get("name"),
        "training_artworks": sum(artworks.get(split) or 0 for split in fitted_on) or None,
        "scorers_fitted_on": fitted_on,
        "artworks_by_split": artworks,
        "catalogue_rows": manifest.get("data", {}).get("rows_read"),
        "vocabulary_size": manifest.get("vocabulary_size"),
    }
