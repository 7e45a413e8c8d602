"""Saving and loading models without pickle: skops files whose sha256 is checked before loading.

A model file is only loaded if its bytes hash to the sha256 recorded beside it at training time,
and only if every type it names is on the exact list of trusted types (`model_types`: the audited
ones, plus those a policy adds). That is checked on the file's schema before any object is built;
the card may list the types, but trust is never read from it. Every way loading can fail is a
`ModelIntegrityError` that names the file and what to do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelops_ci.errors import UserError
from modelops_ci.fsutil import write_atomic, write_bytes_atomic
from modelops_ci.ml import model_types

# Bounds on what a model file unpacks to, checked before skops parses or allocates anything. The
# schema of a 200-tree random forest is 4.4 MB; the arrays live in other entries.
MAX_SCHEMA_BYTES = 64 * 2**20
MAX_ARCHIVE_BYTES = 2 * 2**30
RESTORE = "restore the model with `dvc checkout` or retrain"
MAX_REASON_CHARS = 300
_HOW_TO_TRUST = "add them to spec.models.trusted_types in a policy (reviewed as code)"


class ModelIntegrityError(UserError):
    """A model that cannot be loaded safely: not the one trained (its sha256 differs), holding
    types outside the trusted list, or damaged. Every failure to load a model is this error."""


def save(model: Any, path: Path, card: Path, facts: dict[str, Any], *,
         extra_types: Iterable[str] = ()) -> str:
    """Write the model and its card (sha256, the types it holds, `facts`); returns the sha256.

    `extra_types`: the types the pipeline's policies add to the audited list.
    """
    sha256, content = write_model(model, path, facts, extra_types=extra_types)
    # For information (and MLflow's skops flavour): loading never takes trust from the card.
    write_atomic(card, json.dumps(content, indent=2, sort_keys=True) + "\n")
    return sha256


def write_model(model: Any, path: Path, facts: dict[str, Any], *,
                extra_types: Iterable[str] = ()) -> tuple[str, dict[str, Any]]:
    """Write the model alone; return its sha256 and its card (`facts`, the sha256, the types it
    holds), for the caller to keep where it likes (a batched series: in its record).

    A model holding a type `load` would refuse is refused here, so what trains can be loaded.
    """
    import skops.io as sio

    blob = canonical_zip(sio.dumps(model))
    held = types_held(path, blob)
    refused = sorted(set(held) - model_types.trusted(extra_types))
    if refused:
        raise UserError(f"{path}: the model holds types outside the trusted list: "
                        f"{', '.join(refused)}; it could not be loaded safely later: use "
                        f"scikit-learn estimators, or, if building these types runs no code, "
                        f"{_HOW_TO_TRUST}")
    sha256 = hashlib.sha256(blob).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, blob)
    return sha256, {**facts, "sha256": sha256, "trusted_types": held}


def load(path: Path, card: Path, *, extra_types: Iterable[str] = ()) -> tuple[Any, dict[str, Any]]:
    """The model at `path`, after checking its sha256 against the card and its types against the
    trusted list (the audited types plus `extra_types`, those its policies add); and the card."""
    facts = read_card(card)
    return load_carded(path, facts, card.name, extra_types=extra_types), facts


def load_carded(path: Path, facts: dict[str, Any], where: str, *, extra_types: Iterable[str] = ()) -> Any:
    """The model at `path`, checked as `load` checks it, against a card already read (from `where`,
    the file named in messages: a batched series keeps its card in its series.json)."""
    blob = _read_checked(path, where, facts)
    trusted = model_types.trusted(extra_types)
    refused = sorted(set(types_held(path, blob)) - trusted)
    if refused:
        raise ModelIntegrityError(f"{path}: holds types outside the trusted list "
                                  f"({', '.join(refused)}): refusing to load it, nothing was "
                                  "built; retrain with scikit-learn estimators, or, if building "
                                  f"these types runs no code, {_HOW_TO_TRUST}")
    return _rebuild(path, blob, trusted)


def _read_checked(path: Path, where: str, facts: dict[str, Any]) -> bytes:
    """The bytes of the model file, if they hash to the sha256 its card records."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"{path}: cannot read the model ({exc.strerror}): "
                                  f"{RESTORE}") from None
    recorded = facts.get("sha256")
    if not isinstance(recorded, str):
        raise ModelIntegrityError(f"{path}: {where} records no sha256 for it: refusing to "
                                  "load it; retrain the model")
    actual = hashlib.sha256(blob).hexdigest()
    if actual != recorded:
        raise ModelIntegrityError(f"{path}: sha256 {actual[:12]}… does not match the recorded "
                                  f"{recorded[:12]}… in {where}: refusing to load it; "
                                  f"{RESTORE}")
    return blob


def types_held(path: Path, blob: bytes) -> list[str]:
    """The types the skops archive `blob` names beyond skops' own defaults, read from its schema
    without importing or building anything."""
    import skops.io as sio

    _check_sizes(path, blob)
    try:
        return sorted(sio.get_untrusted_types(data=blob))
    except Exception as exc:  # anyone may write the schema: whatever skops raises is the file's
        raise ModelIntegrityError(f"{path}: not a readable skops file ({_reason(exc)}): "
                                  f"{RESTORE}") from None


def _check_sizes(path: Path, blob: bytes) -> None:
    """Refuse an archive that would unpack to more than a model needs (a zip bomb).

    zipfile stops reading an entry at its declared size (and then fails its CRC), so the declared
    sizes bound what json and numpy are given.
    """
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            entries = archive.infolist()
    except Exception as exc:  # anyone may write the bytes: whatever zipfile raises is the file's
        raise ModelIntegrityError(f"{path}: not a skops file ({_reason(exc)}): {RESTORE}") from None
    schema = max((e.file_size for e in entries if e.filename == "schema.json"), default=0)
    total = sum(e.file_size for e in entries)
    for what, size, limit in (("its schema.json", schema, MAX_SCHEMA_BYTES),
                              ("the archive", total, MAX_ARCHIVE_BYTES)):
        if size > limit:
            raise ModelIntegrityError(f"{path}: {what} unpacks to {size} bytes, more than the "
                                      f"{limit} a model may take: refusing to unpack it; {RESTORE}")


def _rebuild(path: Path, blob: bytes, trusted: frozenset[str]) -> Any:
    import skops.io as sio

    try:
        return sio.loads(blob, trusted=sorted(trusted))
    except Exception as exc:  # the file chose the constructors and their arguments
        reason = _reason(exc)
        raise ModelIntegrityError(f"{path}: cannot be rebuilt ({reason}): {RESTORE}") from None


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if len(text) > MAX_REASON_CHARS:
        return text[:MAX_REASON_CHARS] + "…"
    return text


def read_card(card: Path) -> dict[str, Any]:
    try:
        facts = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ModelIntegrityError(f"{card}: cannot read the model card ({_reason(exc)}): "
                                  "retrain the model") from None
    if not isinstance(facts, dict):
        raise ModelIntegrityError(f"{card}: the model card is not a JSON object: retrain the model")
    return facts


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
