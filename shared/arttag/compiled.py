"""Kernels compiled by numba, shared by the modules that have one: compiled on first use,
``nogil`` (the stream worker scores in a thread beside its event loop), and cached on disk
(``NUMBA_CACHE_DIR``, else beside the module, else the user's cache folder), so only the
first process on a machine pays the compile (a few seconds)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_COMPILED: dict[Callable, Any] = {}
_LOCK = threading.Lock()


def compiled(function: Callable) -> Callable | None:
    """``function`` compiled by numba, or None where numba is not installed."""
    with _LOCK:
        if function not in _COMPILED:
            try:
                import numba
            except ImportError:
                _COMPILED[function] = None
            else:
                try:
                    _COMPILED[function] = numba.njit(nogil=True, cache=True)(function)
                except RuntimeError:  # no writable cache folder: compiled once per process instead
                    _COMPILED[function] = numba.njit(nogil=True)(function)
        return _COMPILED[function]
