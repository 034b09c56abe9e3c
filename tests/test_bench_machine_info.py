"""bench/machine_info.py's paths as results record them, and the stored results that follow the rule."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .support import REPO, load_bench_module

machine_info = load_bench_module("machine_info")


def test_a_scratch_folder_is_recorded_relative_to_the_temporary_folder():
    scratch = Path(tempfile.mkdtemp(prefix="arttag-portable-"))
    try:
        assert machine_info.portable_path(scratch / "w1.log") == f"$TMPDIR/{scratch.name}/w1.log"
        assert machine_info.portable_path("/tmp/chaos-run") == "$TMPDIR/chaos-run"
    finally:
        scratch.rmdir()
    assert machine_info.portable_path(REPO / "bench" / "results") == "bench/results"
    assert machine_info.portable_path("/srv/data/models/bundle") == ".../data/models/bundle"


def test_a_command_keeps_tmp_as_typed_so_that_it_runs_as_shown():
    command = machine_info.portable_command("bench/api.py", ["--bundle-dir", "/tmp/b", "--out",
                                                             str(REPO / "bench" / "results" / "a.json")])
    assert command == "python bench/api.py --bundle-dir /tmp/b --out bench/results/a.json"


def test_stored_results_record_no_absolute_path():
    def absolute(value, where):
        if isinstance(value, dict):
            return [hit for k, v in value.items() for hit in absolute(v, f"{where}/{k}")]
        if isinstance(value, list):
            return [hit for i, v in enumerate(value) for hit in absolute(v, f"{where}/{i}")]
        return [f"{where}: {value}"] if isinstance(value, str) and value.startswith("/") else []

    found = [hit for path in sorted((REPO / "bench" / "results").glob("*.json"))
             for hit in absolute(json.loads(path.read_text()), path.name)]
    assert not found
