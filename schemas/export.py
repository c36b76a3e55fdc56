"""Write one JSON Schema per event type, the contract other teams build against."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter

from schemas.events import ALL_EVENTS, AnyEvent, event_type


def json_schemas() -> dict[str, dict[str, object]]:
    """File name → schema: one per event, plus the discriminated union of them all."""
    schemas: dict[str, dict[str, object]] = {}
    for cls in ALL_EVENTS:
        schemas[f"{event_type(cls)}.schema.json"] = cls.model_json_schema()
    schemas["envelope.schema.json"] = TypeAdapter(AnyEvent).json_schema()
    return schemas


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in sorted(json_schemas().items()):
        path = directory / name
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
