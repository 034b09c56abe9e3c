"""JSON Schemas of the event contracts, generated from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter

from arttag.events import SCHEMA_MODELS


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, exactly as written into ``schemas/``."""
    files = {}
    for name, model in SCHEMA_MODELS.items():
        schema = TypeAdapter(model).json_schema(mode="serialization")
        schema["$id"] = f"https://arttag.invalid/schemas/{name}.json"
        files[f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def export_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
