"""Registries of plug-ins (scorers, ensemble kinds) named ``module:attribute``, imported on first use,
so a heavy optional dependency is loaded only when a bundle asks for what needs it."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from arttag.errors import ConfigurationError


def load_plugin(table: Mapping[str, str], name: str, what: str) -> Any:
    """The object ``table[name]`` names; an unknown ``name`` is a :class:`ConfigurationError`
    that lists the known ones (``what`` says what kind of name it is, e.g. "scorer")."""
    try:
        target = table[name]
    except KeyError:
        raise ConfigurationError(f"unknown {what} {name!r}; known: {', '.join(table)}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
