"""Mirror the git stages into MLflow: registered model `<name>` gets the alias `<stage>` on the
model version that holds the stage in git.

The link is the model's sha256. A stage tag's evidence names the model card by its DVC md5
(`models/<p>/model.json` in dvc.lock); the card, read from the DVC cache (or through DVC at the
tagged commit), holds the model's sha256; the training step tagged the MLflow model version it
registered with that same sha256 (tracking.py). Only aliases named after the name's stages are
touched: a stage no version holds in git loses its alias, any other alias is left alone.
Running it twice changes nothing the second time. MLflow is imported here only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelops_ci import git
from modelops_ci.errors import MissingDependencyError, UserError
from modelops_ci.layout import Layout
from modelops_ci.registry import evidence, state, tags
from modelops_ci.registry.dvc_cache import cache_object
from modelops_ci.registry.promote import policy_stages

SHA_TAG = "sha256"  # the model version tag tracking.log_training sets


class SyncError(UserError):
    """The MLflow registry cannot be reached or read."""


@dataclass(frozen=True)
class AliasChange:
    """What sync did (or would do) to one alias: set, kept, removed, or unresolved (with why)."""

    model: str
    alias: str
    action: str  # "set", "unchanged", "removed", "unresolved"
    version: str | None = None  # the MLflow model version number the alias points at now
    previous: str | None = None
    git_version: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync(root: Path, names: Iterable[str] = (), *, dry_run: bool = False, client: Any = None) -> list[AliasChange]:
    """Set MLflow aliases to the git stages for `names` (default: every name in the registry)."""
    wanted = list(names)
    verified = state.read(root, wanted)  # an alias follows verified tags only: anyone can make a tag
    unknown = [n for n in wanted if n not in verified.names()]
    if unknown:
        known = ", ".join(verified.names()) or "none"
        raise UserError(f"unknown name {', '.join(unknown)}: no registry tags (names: {known})")
    client = client or _client(root)
    messages = {r.tag: r.message for r in tags.read(root, names=wanted, messages=True) if r.tag in verified.refs}
    changes: list[AliasChange] = []
    for artifact in _with_unverified(verified).values():
        changes += _sync_one(root, client, artifact, messages, dry_run)
    return changes


def _with_unverified(verified: state.VerifiedRegistry) -> dict[str, tags.Artifact]:
    """Every name with a tag: a name whose tags all fail to verify holds no stage, so its aliases go."""
    empty = {name: tags.Artifact(name, (), {}) for name in verified.names() if name not in verified.artifacts}
    return dict(sorted({**verified.artifacts, **empty}.items()))


def _sync_one(root: Path, client: Any, artifact: tags.Artifact, messages: dict[str, str],
              dry_run: bool) -> list[AliasChange]:
    name = artifact.name
    model = _registered_model(client, name)
    if model is None:
        return [AliasChange(name, stage, "unresolved", git_version=held.version,
                            reason=f"MLflow has no registered model '{name}' (train it with tracking on)")
                for stage, held in artifact.stages.items()]
    aliases = {str(k): str(v) for k, v in (model.aliases or {}).items()}
    by_sha = _versions_by_sha(client, name)
    stages = list(dict.fromkeys([*policy_stages(root, name, "HEAD"), *_stages_seen(artifact, messages)]))
    changes = []
    for stage in stages:
        held = None if artifact.deprecated else artifact.stages.get(stage)
        current = aliases.get(stage)
        if held is None:
            if current is not None:
                if not dry_run:
                    client.delete_registered_model_alias(name, stage)
                changes.append(AliasChange(name, stage, "removed", previous=current,
                                           reason="no version holds the stage in git"))
            continue
        try:
            sha = model_sha256(root, name, held, messages.get(held.tag, ""))
        except UserError as exc:
            changes.append(AliasChange(name, stage, "unresolved", previous=current, git_version=held.version,
                                       reason=str(exc)))
            continue
        target = by_sha.get(sha)
        if target is None:
            changes.append(AliasChange(name, stage, "unresolved", previous=current, git_version=held.version,
                                       reason=f"no version of MLflow model '{name}' has tag {SHA_TAG}={sha[:12]}…"))
        elif target == current:
            changes.append(AliasChange(name, stage, "unchanged", target, current, held.version))
        else:
            if not dry_run:
                client.set_registered_model_alias(name, stage, target)
            changes.append(AliasChange(name, stage, "set", target, current, held.version))
    return changes


def _stages_seen(artifact: tags.Artifact, messages: dict[str, str]) -> list[str]:
    seen = list(artifact.stages)
    for tag in messages:
        parsed = tags.parse(tag)
        if parsed and parsed.name == artifact.name and parsed.stage and parsed.stage not in seen:
            seen.append(parsed.stage)
    return seen


def model_sha256(root: Path, name: str, held: tags.Champion, message: str) -> str:
    """The sha256 of the model holding a stage, from its card (found by the tag's evidence md5)."""
    card_path = Layout(name).model_card
    md5 = ""
    with contextlib.suppress(evidence.EvidenceError):  # a tag made by another tool: read dvc.lock
        md5 = evidence.parse(message).model.get(card_path, "")
    if not md5:
        md5 = evidence.collect(root, name, held.commit, version=held.version).model.get(card_path, "")
    if not md5:
        raise UserError(f"{held.tag}: its evidence names no {card_path}, so the model cannot be matched")
    card = _read_card(root, card_path, md5, held.commit)
    if hashlib.md5(card, usedforsecurity=False).hexdigest() != md5:
        raise UserError(f"{card_path} read for {held.tag} does not have md5 {md5} (the evidence's): "
                        "the DVC cache is corrupt; `dvc fetch` it again")
    sha = json.loads(card).get("sha256")
    if not isinstance(sha, str) or not sha:
        raise UserError(f"{card_path} at {held.commit[:12]} has no sha256")
    return sha


def _read_card(root: Path, path: str, md5: str, commit: str) -> bytes:
    """The card's bytes: from git if committed there, else DVC's cache by md5, else DVC at the commit."""
    shown = git.show_file(root, commit, path)
    if shown is not None:
        return shown
    cached = cache_object(root, md5)
    if cached is not None:
        return cached
    try:
        import dvc.api
        from dvc.exceptions import DvcException
    except ImportError:
        raise MissingDependencyError("reading the model card needs DVC: pip install 'modelops-ci[ml]'") from None
    try:
        return bytes(dvc.api.read(path, repo=str(root), rev=commit, mode="rb"))
    except (DvcException, OSError) as exc:
        raise UserError(f"cannot read {path} at {commit[:12]} from DVC ({exc}): `dvc pull` it or make the "
                        "DVC remote reachable") from None


def _client(root: Path) -> Any:
    from modelops_ci.ml.tracking import tracking_uri
    from modelops_ci.offline import apply as stay_offline

    stay_offline()
    try:
        import logging

        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)
    except ImportError:
        raise MissingDependencyError("sync-mlflow needs MLflow: pip install 'modelops-ci[ml]'") from None
    uri = tracking_uri(root)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _registered_model(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")):
            return None
        raise SyncError(f"MLflow registry unreachable or unreadable ({exc})") from None


def _versions_by_sha(client: Any, name: str) -> dict[str, str]:
    """sha256 tag -> version number; the newest version wins if a model was registered twice."""
    found: dict[str, str] = {}
    versions = client.search_model_versions(f"name = '{name}'")
    for version in sorted(versions, key=lambda v: int(v.version)):
        sha = (version.tags or {}).get(SHA_TAG)
        if sha:
            found[str(sha)] = str(version.version)
    return found
