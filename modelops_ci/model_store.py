"""Saving and loading models without pickle: skops files whose sha256 is checked before loading.

A model file is only loaded if its bytes hash to the sha256 recorded beside it at training time,
and only types from trusted libraries are allowed back in (skops refuses the rest).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from modelops_ci.errors import CheckFailed, UserError
from modelops_ci.fsutil import write_atomic, write_bytes_atomic

# Not `builtins.`: the builtins skops flags are functions such as eval and exec.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


class ModelIntegrityError(CheckFailed):
    """The model file is not the one that was trained (its sha256 differs) or is not trusted."""


def save(model: Any, path: Path, card: Path, facts: dict[str, Any]) -> str:
    """Write the model and its card (sha256, trusted types, `facts`); returns the sha256."""
    import skops.io as sio

    blob = canonical_zip(sio.dumps(model))
    sha256 = hashlib.sha256(blob).hexdigest()
    untrusted = sio.get_untrusted_types(data=blob)
    refused = [t for t in untrusted if not _is_trusted(t)]
    if refused:
        raise UserError(f"{path}: the model holds types outside scikit-learn/numpy/scipy: "
                        f"{', '.join(refused)}; they could not be loaded safely later: "
                        "use estimators from trusted libraries")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, blob)
    write_atomic(card, json.dumps({**facts, "sha256": sha256, "trusted_types": sorted(untrusted)},
                                  indent=2, sort_keys=True) + "\n")
    return sha256


def load(path: Path, card: Path) -> tuple[Any, dict[str, Any]]:
    """The model at `path`, after checking its sha256 against the card; and the card."""
    import zipfile

    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    facts = read_card(card)
    restore = "restore the model with `dvc checkout` or retrain"
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"{path}: cannot read the model ({exc.strerror}): {restore}") from None
    actual, recorded = hashlib.sha256(blob).hexdigest(), facts.get("sha256")
    if not isinstance(recorded, str):
        raise ModelIntegrityError(f"{path}: {card.name} records no sha256 for it: refusing to load it; "
                                  "retrain the model")
    if actual != recorded:
        raise ModelIntegrityError(f"{path}: sha256 {actual[:12]}… does not match the recorded "
                                  f"{recorded[:12]}… in {card.name}: refusing to load it; {restore}")
    # The card is not covered by the hash: whatever it lists, only trusted libraries come back in.
    trusted = [t for t in facts.get("trusted_types", []) if isinstance(t, str) and _is_trusted(t)]
    try:
        return sio.loads(blob, trusted=trusted), facts
    except UntrustedTypesFoundException:
        refused = sorted(set(sio.get_untrusted_types(data=blob)) - set(trusted))
        raise ModelIntegrityError(f"{path}: holds types not trusted by {card.name} ({', '.join(refused)}): "
                                  "refusing to load it; retrain with estimators from trusted libraries"
                                  ) from None
    except zipfile.BadZipFile:
        raise ModelIntegrityError(f"{path}: not a skops file: {restore}") from None


def read_card(card: Path) -> dict[str, Any]:
    try:
        facts = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"{card}: cannot read the model card ({exc}): retrain the model") from None
    if not isinstance(facts, dict):
        raise ModelIntegrityError(f"{card}: the model card is not a JSON object: retrain the model")
    return facts


def _is_trusted(type_name: str) -> bool:
    return type_name.startswith(TRUSTED_PREFIXES)


def canonical_zip(blob: bytes) -> bytes:
    """The same skops archive, made reproducible: the same model always has the same bytes.

    skops names objects and array files by `id()` (a memory address) and stamps zip entries with
    the time of saving, so every retrain of an unchanged commit would look like a new model to
    DVC. Ids are renumbered in order of first appearance and timestamps fixed; skops only needs
    ids to be consistent within the file.
    """
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as source:
        schema = json.loads(source.read("schema.json"))
        renumbered: dict[int, int] = {}
        schema = _renumber(schema, renumbered)
        entries = {"schema.json": json.dumps(schema, indent=2).encode()}
        for name in source.namelist():
            if name != "schema.json":
                stem, dot, suffix = name.partition(".")
                new = str(renumbered.setdefault(int(stem), len(renumbered) + 1)) if stem.isdigit() else stem
                entries[f"{new}{dot}{suffix}"] = source.read(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(entries):
            target.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), entries[name],
                            compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _renumber(node: Any, ids: dict[int, int]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "__id__" and isinstance(value, int):
                out[key] = ids.setdefault(value, len(ids) + 1)
            elif key == "file" and isinstance(value, str) and value.partition(".")[0].isdigit():
                stem, dot, suffix = value.partition(".")
                out[key] = f"{ids.setdefault(int(stem), len(ids) + 1)}{dot}{suffix}"
            else:
                out[key] = _renumber(value, ids)
        return out
    if isinstance(node, list):
        return [_renumber(item, ids) for item in node]
    return node



