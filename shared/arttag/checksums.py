"""Streaming sha256 of files: catalogue hashes, model manifests and bundle versions."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def update_from_file(digest: Any, path: Path, progress: Any | None = None) -> None:
    """Feed a file into ``digest`` in chunks; ``progress`` (a tqdm bar) advances by bytes read."""
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress.update(len(chunk))


def file_sha256(path: Path, progress: Any | None = None) -> str:
    digest = hashlib.sha256()
    update_from_file(digest, Path(path), progress)
    return digest.hexdigest()
