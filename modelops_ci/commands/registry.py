"""`modelops-ci registry show|history|sync-mlflow`: the registry as its verified tags make it, a
name's events, and the MLflow aliases set from the stages. Also what every registry command
shares: the repository the tags live in, and how times and tables are printed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import CheckFailed, UserError

if TYPE_CHECKING:
    from modelops_ci.registry.mlflow_sync import AliasChange
    from modelops_ci.registry.state import VerifiedRegistry
    from modelops_ci.registry.tags import Artifact, Version
    from modelops_ci.registry.verify import VerifyResult

UNVERIFIED_LIMIT = 20  # refused tags listed under `registry show`; `verify --all` lists every one


def repository_root(repo: Path) -> Path:
    """The top of the git repository holding `repo`: the registry is its tags."""
    from modelops_ci import git

    root = git.toplevel(repo.resolve()) if repo.exists() else None
    if root is None:
        raise UserError(f"{repo.resolve()}: not inside a git repository (the registry is its tags); "
                        "pass -C with a repository")
    return root


def as_json(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=False)


def when(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def short_version(version: str) -> str:
    return version[:7] if not version.startswith("v") else version  # an unregistered commit: its hash


# -- show -------------------------------------------------------------------------------------------


def show(repo: Path, name: str | None = None, *, deprecated: bool = False, trust_ref: str | None = None,
         json_output: bool = False) -> str:
    """What `registry show` prints: every name's latest version and the version in each stage
    (or NAME's versions), from the tags that verify; the others are listed as not counted."""
    from modelops_ci.registry import state as registry_state
    from modelops_ci.registry import tags

    root = repository_root(repo)
    verified = registry_state.read(root, [name] if name else (), trust_ref=trust_ref)
    if name is not None:
        if name not in verified.names():
            raise UserError(f"unknown name '{name}': no registry tags for it (`modelops-ci registry show` "
                            "lists the names)")
        return _show_one(verified.artifacts.get(name) or tags.Artifact(name, (), {}), verified, json_output)
    shown = [a for a in verified.artifacts.values() if deprecated or not a.deprecated]
    stages = _stage_columns(root, shown)
    if json_output:
        return as_json({"stages": stages, "artifacts": [_artifact_json(a) for a in shown],
                        **_unverified_json(verified)})
    rows = [["name", "latest", *(f"#{s}" for s in stages)]]
    rows += [[a.name + (" (deprecated)" if a.deprecated else ""), a.latest or "-",
              *(short_version(a.stages[s].version) if s in a.stages else "-" for s in stages)] for a in shown]
    empty = "no verified registry tags: `modelops-ci register NAME` adds a version"
    lines = [table(rows) if shown else empty, *_unverified_lines(verified.refused, verified.untrusted)]
    return "\n".join(lines)


def _unverified_json(verified: VerifiedRegistry) -> dict[str, Any]:
    refused = [{"tag": r.tag, "rule": r.rule, "reason": r.reason} for r in verified.refused]
    return {"trust_ref": verified.trust_ref or None, "unverified": refused}


def _unverified_lines(refused: Sequence[VerifyResult], untrusted: str) -> Iterator[str]:
    """The tags that were not counted, and why: a refused tag is shown, never silently dropped."""
    if not refused:
        return
    if untrusted:
        yield f"\n{len(refused)} tag(s) not counted: nothing can be verified here: {untrusted}"
        return
    yield f"\n{len(refused)} tag(s) do not verify and are not counted:"
    for result in refused[:UNVERIFIED_LIMIT]:
        yield f"  {result.tag}  [{result.rule}] {result.reason}"
    if len(refused) > UNVERIFIED_LIMIT:
        yield f"  … and {len(refused) - UNVERIFIED_LIMIT} more: `modelops-ci verify --all` lists every one"


def _artifact_json(artifact: Artifact) -> dict[str, Any]:
    return {"name": artifact.name, "latest": artifact.latest, "deprecated": artifact.deprecated,
            "stages": {s: {"version": c.version, "commit": c.commit, "tag": c.tag} for s, c in artifact.stages.items()}}


def _show_one(artifact: Artifact, verified: VerifiedRegistry, json_output: bool) -> str:
    held: dict[str, list[str]] = {}
    for stage, champion in artifact.stages.items():
        held.setdefault(champion.commit, []).append(stage)
    versions = [_version_json(v, held) for v in reversed(artifact.versions)]
    refused = verified.refused_of(artifact.name)
    if json_output:
        unverified = [{"tag": r.tag, "rule": r.rule, "reason": r.reason} for r in refused]
        return as_json({**_artifact_json(artifact), "versions": versions, "unverified": unverified})
    rows = [["version", "stages", "commit", "registered", "status"]]
    rows += [[v["version"], ", ".join(v["stages"]) or "-", v["commit"][:7], when(v["date"]),
              "active" if v["active"] else "deregistered"] for v in versions]
    listed = table(rows) if versions else f"{artifact.name} has no verified registered version"
    return "\n".join([listed, *_unverified_lines(refused, verified.untrusted)])


def _version_json(version: Version, held: dict[str, list[str]]) -> dict[str, Any]:
    """A version and the stages its commit holds (none once deregistered)."""
    stages = held.get(version.commit, []) if version.active else []
    return {"version": version.version, "commit": version.commit, "tag": version.tag, "date": version.date,
            "active": version.active, "stages": stages}


def _stage_columns(root: Path, artifacts: Sequence[Artifact]) -> list[str]:
    """Stages in the policies' order, then any other stage the tags use, alphabetically."""
    import yaml

    ordered: list[str] = []
    for path in sorted((root / "policies").glob("*.y*ml")):
        try:
            spec = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("spec") or {}
        except (yaml.YAMLError, OSError, AttributeError):
            continue  # `modelops-ci validate` reports it
        ordered += [str(s) for s in spec.get("stages") or [] if str(s) not in ordered]
    used = {s for a in artifacts for s in a.stages}
    return [s for s in ordered if s in used] + sorted(used - set(ordered))


# -- history ----------------------------------------------------------------------------------------


def history(repo: Path, name: str, *, json_output: bool = False) -> str:
    """What `registry history` prints: NAME's registry events, oldest first, each marked verified or not."""
    from dataclasses import asdict

    from modelops_ci.registry import state as registry_state
    from modelops_ci.registry import tags

    root = repository_root(repo)
    events = tags.history(tags.read(root, names=[name]), name)
    if not events:
        raise UserError(f"unknown name '{name}': no registry tags for it (`modelops-ci registry show`)")
    verified = registry_state.read(root, [name]).refs
    if json_output:
        return as_json([{**asdict(e), "verified": e.tag in verified} for e in events])
    rows = [["timestamp", "event", "version", "stage", "commit", "tag", "by", "verified"]]
    rows += [[when(e.date), e.event, short_version(e.version or "-"), e.stage or "-", e.commit[:7], e.tag,
              e.tagger, "yes" if e.tag in verified else "NO"] for e in events]
    return table(rows)


# -- sync-mlflow ------------------------------------------------------------------------------------


def sync_mlflow(repo: Path, names: Iterable[str] = (), *, dry_run: bool = False) -> list[AliasChange]:
    """Set (or with `dry_run`, only say) the MLflow aliases of the stages of `names` (default: all)."""
    from modelops_ci.registry.mlflow_sync import sync

    return sync(repository_root(repo), names, dry_run=dry_run)


def sync_lines(changes: Sequence[AliasChange], *, dry_run: bool = False, json_output: bool = False
               ) -> Iterator[tuple[str, bool]]:
    """What `registry sync-mlflow` prints of `changes`: (line, to stderr)."""
    if json_output:
        yield as_json([c.to_dict() for c in changes]), False
        return
    verb = {"set": "would set" if dry_run else "set", "removed": "would remove" if dry_run else "removed"}
    for c in changes:
        if c.action in ("set", "unchanged"):
            was = f", was {c.previous}" if c.action == "set" and c.previous else ""
            yield (f"{c.model}@{c.alias}: {verb.get(c.action, c.action)} -> version {c.version} "
                   f"({c.git_version}){was}"), False
        elif c.action == "removed":
            yield f"{c.model}@{c.alias}: {verb['removed']} (was version {c.previous}; {c.reason})", False
        else:
            yield f"{c.model}@{c.alias}: not synced: {c.reason}", True
    if not changes:
        yield "no stages to sync", False


def enforce_synced(changes: Sequence[AliasChange]) -> None:
    """Exit 1 (CheckFailed) when some stage's model version could not be found in MLflow."""
    unresolved = [c for c in changes if c.action == "unresolved"]
    if unresolved:
        raise CheckFailed(f"{len(unresolved)} stage(s) could not be matched to an MLflow model version")
