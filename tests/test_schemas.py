from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from arttag.schemas import render_schemas

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_committed_schemas_are_up_to_date():
    rendered = render_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.json")}
    assert set(on_disk) == set(rendered), "run `arttag schemas export`"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"schemas/{name} is stale: run `arttag schemas export`"


def test_cli_export_reproduces_the_folder(tmp_path):
    subprocess.run([sys.executable, "-m", "arttag_cli", "schemas", "export", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for path in SCHEMAS.glob("*.json"):
        assert (tmp_path / path.name).read_text() == path.read_text()


def test_schemas_describe_the_contracts():
    created = json.loads((SCHEMAS / "artwork-created.v1.json").read_text())
    assert {"artwork_id", "revision", "artwork", "event_id"} <= set(created["properties"])
    suggestions = json.loads((SCHEMAS / "tag-suggestions-published.v1.json").read_text())
    assert suggestions["additionalProperties"] is False
