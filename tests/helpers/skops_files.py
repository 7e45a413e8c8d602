"""skops files written by hand, as whoever wrote a model file could write them: an archive with the
schema we choose, and a card beside it that matches its bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FACTS = {"task": "classification", "numeric": ["income", "debt"], "categorical": ["region"]}


def skops_archive(schema: Any, **entries: bytes) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", schema if isinstance(schema, bytes) else json.dumps(schema))
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def skops_schema(blob: bytes) -> Any:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return json.loads(archive.read("schema.json"))


def beside_a_card(folder: Path, blob: bytes, listed: list[str] | None = None) -> tuple[Path, Path]:
    """`blob` as folder/model.skops with a matching card (sha256, the types it names) in
    folder/model.json, as whoever wrote the file could write them."""
    import skops.io as sio

    path, card = folder / "model.skops", folder / "model.json"
    path.write_bytes(blob)
    if listed is None:
        listed = sio.get_untrusted_types(data=blob)
    card.write_text(json.dumps({**FACTS, "sha256": hashlib.sha256(blob).hexdigest(), "trusted_types": listed}),
                    encoding="utf-8")
    return path, card


CHECK_ARRAY = "sklearn.utils.validation.check_array"


def recorded_openmp_threads(path: Path) -> list[int]:
    """The OpenMP thread count each HistGradientBoosting in the skops file at `path` recorded when
    it was fitted (its _BinMapper's `n_threads`), read from the file's schema: nothing is unpickled."""
    found: list[int] = []
    _collect_bin_mapper_threads(skops_schema(path.read_bytes()), found)
    return found


def _collect_bin_mapper_threads(node: Any, found: list[int]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect_bin_mapper_threads(item, found)
    if not isinstance(node, dict):
        return
    if node.get("__class__") == "_BinMapper":
        found.append(int(json.loads(node["content"]["content"]["n_threads"]["content"])))
    for value in node.values():
        _collect_bin_mapper_threads(value, found)
