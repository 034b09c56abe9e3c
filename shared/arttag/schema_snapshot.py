"""The released schemas (``schemas/released/``): which release the snapshot is, and its schemas.

The compatibility check (:mod:`arttag.schema_compat`) compares the current schemas with this
snapshot, so a snapshot must say what it is: ``release.json`` records the project version it
was taken at (``version`` in pyproject.toml) and the date, and a snapshot without it is
refused rather than compared, since "the last release" would otherwise be whatever someone
last copied in. How the snapshot is refreshed: schemas/released/README.md and docs/topics.md.

Example::

    snapshot = load_snapshot(Path("schemas/released"))
    print(snapshot.release)              # "0.1.0 (2026-11-30)"
    snapshot.schemas["dead-letter.v1"]   # the released JSON Schema
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

RELEASE_FILE = "release.json"
_VERSION = re.compile(r"\d+(\.\d+)*")


class SnapshotError(ValueError):
    """The snapshot does not say which release it is, or says it unreadably."""


@dataclass(frozen=True)
class Release:
    version: str
    date: date

    def __str__(self) -> str:
        return f"{self.version} ({self.date.isoformat()})"

    def version_key(self) -> tuple[int, ...]:
        """The version as numbers, for ordering (``0.10.0`` after ``0.9.0``)."""
        return tuple(int(part) for part in self.version.split("."))


@dataclass(frozen=True)
class Snapshot:
    release: Release
    schemas: dict[str, dict]
    """Schema name (``dead-letter.v1``) -> the released JSON Schema."""


def read_release(folder: Path) -> Release:
    """The release recorded in ``folder/release.json``; raises SnapshotError when it is missing
    or incomplete."""
    path = folder / RELEASE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SnapshotError(f"{path} is missing: the snapshot does not say which release it is") from exc
    except ValueError as exc:
        raise SnapshotError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SnapshotError(f"{path} is not a JSON object")
    version, when = data.get("version"), data.get("date")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise SnapshotError(f"{path}: 'version' must be the released project version, e.g. \"0.1.0\", "
                            f"not {version!r}")
    try:
        released_on = date.fromisoformat(when) if isinstance(when, str) else None
    except ValueError:
        released_on = None
    if released_on is None:
        raise SnapshotError(f"{path}: 'date' must be the release date, e.g. \"2026-11-30\", not {when!r}")
    return Release(version, released_on)


def load_snapshot(folder: Path) -> Snapshot:
    """The release and the schemas (``*.v<N>.json``) of the snapshot in ``folder``."""
    release = read_release(folder)
    schemas = {path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
               for path in sorted(folder.glob("*.v*.json"))}
    if not schemas:
        raise SnapshotError(f"{folder} holds no released schema")
    return Snapshot(release, schemas)
