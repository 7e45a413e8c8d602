"""Command-line wiring of the model registry: register, promote, registry show/history/sync-mlflow,
audit. The work is done in modelops_ci.registry; this module parses, calls and prints.

cli.py calls `register_commands(cli)`; feature modules are imported inside each command so
`modelops-ci --help` and the git hooks start fast.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from modelops_ci.cli.options import repo_option
from modelops_ci.errors import CheckFailed, UserError

JSON_HELP = "Print JSON instead of a table."
KEY_HELP = ("Signing key: an SSH private key path (or its text), or a GPG key id. Default: "
            "$MODELOPS_SIGNING_KEY, then git's user.signingkey.")
PUSH_HELP = "Push the tag to the remote (atomically) or keep it local."
REMOTE_HELP = "The remote whose tags are the registry (one of `git remote`)."
RECOMPUTE_HELP = ("Re-run the gate stages at the commit in a temporary worktree, from the DVC cache and remote, "
                  "and sign only if they give the committed gates.json (what the promotion workflow does).")


def register_commands(cli: click.Group) -> None:
    """Add the registry commands to the top-level group."""
    for command in (register, promote, registry, audit):
        cli.add_command(command)




def _root(repo: Path) -> Path:
    from modelops_ci import git

    root = git.toplevel(repo.resolve()) if repo.exists() else None
    if root is None:
        raise UserError(f"{repo.resolve()}: not inside a git repository (the registry is its tags); "
                        "pass -C with a repository")
    return root


def _remote(push: bool, remote: str) -> Any:
    from modelops_ci.registry.promote import Remote

    return Remote(remote if push else None)


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False))


def _when(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


# -- writing --------------------------------------------------------------------------------------


@click.command()
@click.argument("name")
@click.option("--version", "version", metavar="vX.Y.Z", default=None,
              help="The version to register (semver with a leading v).")
@click.option("--bump", type=click.Choice(["major", "minor", "patch"]), default=None,
              help="Register the highest version so far, bumped (default: patch; v0.0.1 first).")
@click.option("--commit", "rev", default="HEAD", show_default=True,
              help="The commit to register (a branch, tag or commit id).")
@click.option("--signing-key", default=None, help=KEY_HELP)
@click.option("--push/--no-push", default=True, show_default=True, help=PUSH_HELP)
@click.option("--remote", default="origin", show_default=True, help=REMOTE_HELP)
@click.option("--recompute-gates", is_flag=True, help=RECOMPUTE_HELP)
@repo_option
def register(name: str, version: str | None, bump: str | None, rev: str, signing_key: str | None,
             push: bool, remote: str, recompute_gates: bool, repo: Path) -> None:
    """Register a version of pipeline NAME: a signed tag NAME@vX.Y.Z carrying the evidence.

    Refuses a version that exists, a commit that already holds a version, uncommitted pipeline
    results (dvc.lock, gates.json) and a commit whose gates did not pass (exit 1), or with
    --recompute-gates whose gates re-run do not give the committed report (exit 1).
    """
    from modelops_ci.registry import promote as writer
    from modelops_ci.registry.signing import resolve_key

    root = _root(repo)
    written = writer.register(root, name, resolve_key(root, signing_key), version=version, bump=bump,
                              rev=rev, remote=_remote(push, remote), recompute_gates=recompute_gates)
    where = (f"pushed to {remote}" if written.pushed
             else f"local only: `git push {remote} refs/tags/{written.tag}` publishes it")
    click.echo(f"registered {written.tag} at {written.commit[:12]} ({where})")


@click.command()
@click.argument("target", metavar="NAME@vX.Y.Z")
@click.option("--to", "stage", required=True, metavar="STAGE", help="The stage to assign (one of the policy's).")
@click.option("--pr", type=click.IntRange(min=1), default=None, help="The promotion pull request's number.")
@click.option("--approver", "approvers", multiple=True, metavar="LOGIN",
              help="A reviewer who approved the PR, recorded in the evidence (repeatable).")
@click.option("--signing-key", default=None, help=KEY_HELP)
@click.option("--push/--no-push", default=True, show_default=True, help=PUSH_HELP)
@click.option("--remote", default="origin", show_default=True, help=REMOTE_HELP)
@click.option("--recompute-gates", is_flag=True, help=RECOMPUTE_HELP)
@repo_option
def promote(target: str, stage: str, pr: int | None, approvers: tuple[str, ...], signing_key: str | None,
            push: bool, remote: str, recompute_gates: bool, repo: Path) -> None:
    """Promote NAME@vX.Y.Z to STAGE: a signed tag NAME#STAGE#N with the evidence, pushed atomically.

    Before the push the tag must pass every rule of `modelops-ci verify`, the PR's approvals
    included (from GitHub, when the stage requires them; a stage that does needs --pr), or it is
    removed: a refused tag never leaves this clone. N is the name's next counter; if another
    promoter takes it first, the next N is signed, verified and pushed instead. Running it again
    after a crash or success returns the same tag, once it verifies.
    """
    from modelops_ci.registry import promote as writer
    from modelops_ci.registry import tags
    from modelops_ci.registry.signing import resolve_key

    parsed = tags.parse(target)
    if parsed is None or parsed.version is None or parsed.cancel or parsed.counter is not None:
        raise UserError(f"'{target}' is not NAME@vX.Y.Z (e.g. loans@v1.2.0): name the registered version "
                        "to promote")
    root = _root(repo)
    written = writer.promote(root, parsed.name, parsed.version, stage, resolve_key(root, signing_key), pr=pr,
                             approvers=approvers, remote=_remote(push, remote), recompute_gates=recompute_gates)
    pushed = f"on {remote}" if written.pushed else "local only"
    if written.created:
        click.echo(f"promoted {target} to {stage}: {written.tag} ({pushed}"
                   f"{f', after {written.attempts} attempts' if written.attempts > 1 else ''})")
    else:
        click.echo(f"already promoted: {written.tag} assigns {stage} to {target} with the same evidence ({pushed})")


# -- reading --------------------------------------------------------------------------------------


@click.group()
def registry() -> None:
    """The model registry: git tags in GTO's grammar (name@vX.Y.Z, name#stage#N)."""


@registry.command("show")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--deprecated", is_flag=True, help="Include names retired with name@deprecated.")
@click.option("--trust-ref", help="Read allowed signers and policies from this ref (default: origin's default "
                                  "branch, else main/master).")
@repo_option
def show(name: str | None, as_json: bool, deprecated: bool, trust_ref: str | None, repo: Path) -> None:
    """Show every name's latest version and the version in each stage (or NAME's versions).

    Only tags that verify (offline rules) count; the others are listed as not counted.
    """
    from modelops_ci.registry import state as registry_state
    from modelops_ci.registry import tags

    root = _root(repo)
    verified = registry_state.read(root, [name] if name else (), trust_ref=trust_ref)
    if name is not None:
        if name not in verified.names():
            raise UserError(f"unknown name '{name}': no registry tags for it (`modelops-ci registry show` "
                            "lists the names)")
        return _show_one(verified.artifacts.get(name) or tags.Artifact(name, (), {}), verified, as_json)
    shown = [a for a in verified.artifacts.values() if deprecated or not a.deprecated]
    stages = _stage_columns(root, shown)
    if as_json:
        return _echo_json({"stages": stages, "artifacts": [_artifact_json(a) for a in shown],
                           **_unverified_json(verified)})
    rows = [["name", "latest", *(f"#{s}" for s in stages)]]
    rows += [[a.name + (" (deprecated)" if a.deprecated else ""), a.latest or "-",
              *(_short(a.stages[s].version) if s in a.stages else "-" for s in stages)] for a in shown]
    empty = "no verified registry tags: `modelops-ci register NAME` adds a version"
    click.echo(_table(rows) if shown else empty)
    _echo_unverified(verified.refused, verified.untrusted)
    return None


def _unverified_json(verified: Any) -> dict[str, Any]:
    refused = [{"tag": r.tag, "rule": r.rule, "reason": r.reason} for r in verified.refused]
    return {"trust_ref": verified.trust_ref or None, "unverified": refused}


def _echo_unverified(refused: Sequence[Any], untrusted: str, limit: int = 20) -> None:
    """The tags that were not counted, and why: a refused tag is shown, never silently dropped."""
    if not refused:
        return
    if untrusted:
        click.echo(f"\n{len(refused)} tag(s) not counted: nothing can be verified here: {untrusted}")
        return
    click.echo(f"\n{len(refused)} tag(s) do not verify and are not counted:")
    for result in refused[:limit]:
        click.echo(f"  {result.tag}  [{result.rule}] {result.reason}")
    if len(refused) > limit:
        click.echo(f"  … and {len(refused) - limit} more: `modelops-ci verify --all` lists every one")


def _short(version: str) -> str:
    return version[:7] if not version.startswith("v") else version  # an unregistered commit: its hash


def _artifact_json(artifact: Any) -> dict[str, Any]:
    return {"name": artifact.name, "latest": artifact.latest, "deprecated": artifact.deprecated,
            "stages": {s: {"version": c.version, "commit": c.commit, "tag": c.tag} for s, c in artifact.stages.items()}}


def _show_one(artifact: Any, verified: Any, as_json: bool) -> None:
    held: dict[str, list[str]] = {}
    for stage, champion in artifact.stages.items():
        held.setdefault(champion.commit, []).append(stage)
    versions = [{"version": v.version, "commit": v.commit, "tag": v.tag, "date": v.date, "active": v.active,
                 "stages": held.get(v.commit, []) if v.active else []} for v in reversed(artifact.versions)]
    refused = verified.refused_of(artifact.name)
    if as_json:
        unverified = [{"tag": r.tag, "rule": r.rule, "reason": r.reason} for r in refused]
        return _echo_json({**_artifact_json(artifact), "versions": versions, "unverified": unverified})
    rows = [["version", "stages", "commit", "registered", "status"]]
    rows += [[v["version"], ", ".join(v["stages"]) or "-", v["commit"][:7], _when(v["date"]),
              "active" if v["active"] else "deregistered"] for v in versions]
    click.echo(_table(rows) if versions else f"{artifact.name} has no verified registered version")
    _echo_unverified(refused, verified.untrusted)
    return None


def _stage_columns(root: Path, artifacts: Sequence[Any]) -> list[str]:
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


@registry.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@repo_option
def history(name: str, as_json: bool, repo: Path) -> None:
    """List NAME's registry events, oldest first: registrations, stage assignments and so on."""
    from dataclasses import asdict

    from modelops_ci.registry import state as registry_state
    from modelops_ci.registry import tags

    root = _root(repo)
    events = tags.history(tags.read(root, names=[name]), name)
    if not events:
        raise UserError(f"unknown name '{name}': no registry tags for it (`modelops-ci registry show`)")
    verified = registry_state.read(root, [name]).refs
    if as_json:
        return _echo_json([{**asdict(e), "verified": e.tag in verified} for e in events])
    rows = [["timestamp", "event", "version", "stage", "commit", "tag", "by", "verified"]]
    rows += [[_when(e.date), e.event, _short(e.version or "-"), e.stage or "-", e.commit[:7], e.tag, e.tagger,
              "yes" if e.tag in verified else "NO"] for e in events]
    click.echo(_table(rows))
    return None


@registry.command("sync-mlflow")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@repo_option
def sync_mlflow(names: tuple[str, ...], dry_run: bool, as_json: bool, repo: Path) -> None:
    """Set MLflow registered-model aliases to the git stages (alias STAGE on the version holding it).

    The MLflow model version is found by the sha256 of the model the stage's tag names. Running it
    again changes nothing. Exits 1 if some stage's model version cannot be found in MLflow.
    """
    from modelops_ci.registry.mlflow_sync import sync

    changes = sync(_root(repo), names, dry_run=dry_run)
    if as_json:
        _echo_json([c.to_dict() for c in changes])
    else:
        verb = {"set": "would set" if dry_run else "set", "removed": "would remove" if dry_run else "removed"}
        for c in changes:
            if c.action in ("set", "unchanged"):
                click.echo(f"{c.model}@{c.alias}: {verb.get(c.action, c.action)} -> version {c.version} "
                           f"({c.git_version}){f', was {c.previous}' if c.action == 'set' and c.previous else ''}")
            elif c.action == "removed":
                click.echo(f"{c.model}@{c.alias}: {verb['removed']} (was version {c.previous}; {c.reason})")
            else:
                click.echo(f"{c.model}@{c.alias}: not synced: {c.reason}", err=True)
        if not changes:
            click.echo("no stages to sync")
    unresolved = [c for c in changes if c.action == "unresolved"]
    if unresolved:
        raise CheckFailed(f"{len(unresolved)} stage(s) could not be matched to an MLflow model version")


@click.command()
@click.argument("target", metavar="NAME[#STAGE]")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@repo_option
def audit(target: str, as_json: bool, repo: Path) -> None:
    """Trace NAME's stages (or one) to their data: tag, version, commit, dvc.lock hashes, gate
    report, PR and approvers, signer; and whether the evidence still matches the commit."""
    from modelops_ci.registry.audit import audit as trace
    from modelops_ci.registry.audit import parse_target

    name, stage = parse_target(target)
    lineages = trace(_root(repo), name, stage)
    if as_json:
        return _echo_json([lineage.to_dict() for lineage in lineages])
    if not lineages:
        click.echo(f"no version of {name} holds a stage")
    for lineage in lineages:
        click.echo("\n".join(_audit_lines(lineage)))
    return None


def _audit_lines(lineage: Any) -> list[str]:
    lines = [f"{lineage.name}#{lineage.stage}",
             f"  tag        {lineage.tag} by {lineage.tagger or '?'} at {_when(lineage.date)}",
             f"  version    {lineage.version} ({lineage.version_tag or 'not registered'})",
             f"  commit     {lineage.commit}"]
    lines += [f"  data       {path}  md5 {md5}" for path, md5 in lineage.data.items()]
    lines += [f"  model      {path}  md5 {md5}" for path, md5 in lineage.model.items()]
    lines += [f"  gates      {lineage.verdict or 'missing'}  sha256 {lineage.gates_digest or '-'}",
              f"  policy     sha256 {lineage.policy_digest or '-'}",
              f"  pr         {f'#{lineage.pr}' if lineage.pr else '-'}",
              f"  approvers  {', '.join(lineage.approvers) or '-'}",
              f"  signer     {lineage.signer}"]
    evidence = {"matches": "matches the commit", "missing": "none in the tag message"}.get(
        lineage.evidence, f"differs from the commit: {', '.join(lineage.differences)}")
    lines.append(f"  evidence   {evidence}")
    check = lineage.verification
    verdict = ("not checked (no trusted branch)" if check is None else
               "ok (approvals not checked)" if check["ok"] else f"refused [{check['rule']}] {check['reason']}")
    lines.append(f"  verify     {verdict}")
    return lines
