"""Helpers several test modules share: loading a benchmark script as a module, and walking the
command line's parser tree."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_bench_module(script: str) -> ModuleType:
    """``bench/<script>.py`` as the module ``arttag_bench_<script>`` (the scripts are not a package),
    registered in ``sys.modules`` so its dataclasses can look their module up."""
    spec = importlib.util.spec_from_file_location(f"arttag_bench_{script}", REPO / "bench" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def walk_parsers(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``parser`` and every sub-command's parser below it, each with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk_parsers(sub, f"{path} {name}")
