"""The shared scenes of ../shared/data, as the project's scripts use them."""
from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def manifest_scenes(data: Path, split: str) -> list[tuple[str, Path, str | None]]:
    """(id, file to open, .mat variable or None) of every scene of a split, as the manifest lists them."""
    scenes = []
    for entry in json.loads((data / "manifest.json").read_text()):
        if entry["split"] != split:
            continue
        files = [data / f for f in entry["files"]]
        var = entry.get("var") if str(entry.get("var", "")).isidentifier() else None
        scenes.append((entry["id"], next((f for f in files if f.suffix == ".hdr"), files[0]), var))
    return scenes
