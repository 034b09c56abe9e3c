"""Hot reload: follow a bundle pointer and swap the serving tagger when it names a new version.

The worker and the API read :attr:`BundleWatcher.tagger` once per batch, so one
batch is always served by one model; the new version is loaded (and verified) in
the watcher's thread while the old one keeps serving. A version that does not
load is refused with one error line and the old model stays.

Example::

    watcher = BundleWatcher(settings.bundle_dir, bundle_loader(settings.encoder), tagger,
                            interval_s=settings.bundle_reload_interval_s)
    watcher.subscribe(lambda new: log.info("now serving %s", new.model_version))
    watcher.start()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arttag.encoders.loader import EncoderKind
from arttag.errors import ModelError
from arttag.model.bundle import open_tagger, resolve_bundle
from arttag.model.tagger import Tagger
from arttag.settings import EncoderSettings

log = logging.getLogger(__name__)

Loader = Callable[[Path, Any], Tagger]
"""``loader(version_dir, previous_tagger_or_None)`` loads one bundle directory."""


def bundle_loader(encoder: EncoderSettings | None, kind: EncoderKind = "onnx") -> Loader:
    """Loads a version with :func:`arttag.model.bundle.open_tagger`, reusing the previous tagger's
    encoder when the new bundle names the same one, so a swap opens no second ONNX session."""

    def load(directory: Path, previous: Any) -> Tagger:
        return open_tagger(directory, encoder, kind=kind, reuse=getattr(previous, "encoder", None))

    return load


def serves_pointer(tagger: Any, pointer: str | Path) -> bool:
    """Whether ``tagger`` was loaded from the bundle ``pointer`` names now (only such a tagger is
    hot-reloaded: a tagger built some other way, a test's fake, is left alone)."""
    directory = getattr(tagger, "directory", None)
    if directory is None:
        return False
    try:
        return Path(directory) == resolve_bundle(pointer)
    except ModelError:
        return False


class BundleWatcher:
    """Checks ``pointer`` every ``interval_s`` seconds in a background thread; swaps on a new version.

    ``tagger`` is the model serving now (None: the first check loads one). Listeners
    given to :meth:`subscribe` get each new tagger right after the swap.
    """

    def __init__(self, pointer: str | Path, loader: Loader, tagger: Tagger | None = None, *,
                 interval_s: float = 30.0) -> None:
        self.pointer = Path(pointer)
        self.interval_s = interval_s
        self._loader = loader
        self._tagger = tagger
        self._serving: Path | None = getattr(tagger, "directory", None)
        self._refused: tuple[Path, int] | None = None
        self._listeners: list[Callable[[Tagger], None]] = []
        self._check_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0
        self.refusals = 0
        self.last_error: str | None = None

    @property
    def tagger(self) -> Tagger | None:
        """The model serving now; read it once per batch."""
        return self._tagger

    def subscribe(self, listener: Callable[[Tagger], None]) -> None:
        self._listeners.append(listener)

    def check(self) -> bool:
        """Look at the pointer once; load and swap in a new version. True when it swapped."""
        with self._check_lock:
            try:
                directory = resolve_bundle(self.pointer)
                stamp = (directory / "manifest.json").stat().st_mtime_ns
            except (ModelError, OSError) as exc:
                self._refuse(self.pointer, 0, exc)
                return False
            if directory == self._serving or self._refused == (directory, stamp):
                return False
            started = time.perf_counter()
            try:
                new = self._loader(directory, self._tagger)
            except Exception as exc:  # noqa: BLE001 - any failure: refuse it and keep serving
                self._refuse(directory, stamp, exc)
                return False
            old = self._tagger
            self._tagger, self._serving = new, directory
            self._refused, self.last_error = None, None
            self.swaps += 1
            log.warning("model swapped: %s -> %s (from %s, loaded in %.2fs)",
                        old.model_version if old is not None else "none", new.model_version, directory,
                        time.perf_counter() - started)
            for listener in self._listeners:
                try:
                    listener(new)
                except Exception:  # noqa: BLE001 - one listener must not stop the others
                    log.exception("bundle swap listener failed")
            return True

    def _refuse(self, directory: Path, stamp: int, exc: Exception) -> None:
        if self._refused == (directory, stamp):
            return  # said once already; the same files would fail the same way
        self._refused = (directory, stamp)
        self.refusals += 1
        self.last_error = str(exc)
        serving = self._tagger.model_version if self._tagger is not None else "none"
        log.error("model bundle %s refused, %s keeps serving: %s", directory, serving, exc)

    def start(self) -> BundleWatcher:
        if self.interval_s <= 0 or (self._thread is not None and self._thread.is_alive()):
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bundle-watch", daemon=True)
        self._thread.start()
        log.info("following %s for new model versions every %.0fs", self.pointer, self.interval_s)
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise
                log.exception("checking %s for a new model version failed", self.pointer)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
