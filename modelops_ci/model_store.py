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
from modelops_ci.fsutil import write_atomic

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class ModelIntegrityError(CheckFailed):
    """The model file is not the one that was trained (its sha256 differs) or is not trusted."""


def save(model: Any, path: Path, card: Path, facts: dict[str, Any]) -> str:
    """Write the model and its card (sha256, trusted types, `facts`); returns the sha256."""
    import skops.io as sio

    blob = canonical_zip(sio.dumps(model))
    sha256 = hashlib.sha256(blob).hexdigest()
    untrusted = sio.get_untrusted_types(data=blob)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise UserError(f"the model holds types outside scikit-learn/numpy/scipy: {', '.join(refused)}; "
                        "they could not be loaded safely later: use estimators from trusted libraries")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_bytes(path, blob)
    write_atomic(card, json.dumps({**facts, "sha256": sha256, "trusted_types": sorted(untrusted)},
                                  indent=2, sort_keys=True) + "\n")
    return sha256


def load(path: Path, card: Path) -> tuple[Any, dict[str, Any]]:
    """The model at `path`, after checking its sha256 against the card; and the card."""
    import skops.io as sio

    facts = read_card(card)
    blob = path.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != facts.get("sha256"):
        raise ModelIntegrityError(f"{path}: sha256 {actual[:12]}… does not match the recorded "
                                  f"{str(facts.get('sha256'))[:12]}… in {card.name}: refusing to load it; "
                                  "restore the model with `dvc checkout` or retrain")
    trusted = [t for t in facts.get("trusted_types", []) if t.startswith(TRUSTED_PREFIXES)]
    return sio.loads(blob, trusted=trusted), facts


def read_card(card: Path) -> dict[str, Any]:
    try:
        facts: dict[str, Any] = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"{card}: cannot read the model card ({exc}): retrain the model") from None
    return facts


def canonical_zip(blob: bytes) -> bytes:
    """The same archive with fixed timestamps, so the same model always has the same bytes.

    skops writes a zip whose entries carry the time of saving; that would make every retrain of
    an unchanged commit a "changed" model for DVC and break byte-for-byte reproducibility.
    """
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def _write_bytes(path: Path, blob: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(blob)
    temp.replace(path)
