"""`modelops-ci audit`: a name's stages (or one) traced to their data, beside verify's judgement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.commands.registry import as_json, repository_root, when
from modelops_ci.errors import UserError

if TYPE_CHECKING:
    from modelops_ci.registry.audit import Lineage
    from modelops_ci.registry.series import SeriesLineage
    from modelops_ci.registry.state import VerifiedRegistry

EVIDENCE = {"matches": "matches the commit", "missing": "none in the tag message"}
PULL_HINT = "`dvc pull` at the tagged commit"


def parse_target(target: str) -> tuple[str, str | None]:
    """`NAME` or `NAME#STAGE` -> (name, stage)."""
    from modelops_ci.registry import tags

    name, _, stage = target.partition("#")
    tags.version_tag(name, "v0.0.0")  # validates the name
    if stage:
        tags.stage_tag(name, stage, 1)
    return name, stage or None


def audit(root: Path, name: str, stage: str | None = None, series: str | None = None) -> list[Lineage]:
    """The lineage of `stage` of `name` (default: every stage a version holds now); of a batched
    family, with series `series`' own lineage."""
    from modelops_ci.registry import state, tags
    from modelops_ci.registry.audit import lineage
    from modelops_ci.registry.promote import policy_stages

    verified = state.read(root, [name])  # the stages as the verified tags alone give them
    artifact = verified.artifacts.get(name)
    if artifact is None:
        raise UserError(f"unknown name '{name}': no verified registry tags for it{_refusals(verified, name)} "
                        "(see `modelops-ci registry show`)")
    if stage is not None and stage not in artifact.stages:
        held = ", ".join(artifact.stages) or "none"
        raise UserError(f"no verified version of {name} holds stage '{stage}' (stages held: {held})"
                        f"{_refusals(verified, name)}")
    order = policy_stages(root, name, "HEAD")
    chosen = [stage] if stage else sorted(artifact.stages, key=lambda s: (s not in order, _index(order, s), s))
    by_tag = {r.tag: r for r in tags.read(root, names=[name], messages=True)}
    found = [lineage(root, artifact, s, by_tag, verified.results[artifact.stages[s].tag]) for s in chosen]
    if series is None:
        return found
    from modelops_ci.registry.audit import with_series

    return [with_series(root, each, series) for each in found]


def _refusals(verified: VerifiedRegistry, name: str) -> str:
    note = verified.refusal_note(name)
    return f"; tags that do not verify are not counted: {note}" if note else ""


def _index(order: tuple[str, ...], stage: str) -> int:
    return order.index(stage) if stage in order else 0


def audit_target(repo: Path, target: str, series: str | None = None) -> tuple[str, list[Lineage]]:
    """`audit NAME[#STAGE] [--series S]` in the repository holding `repo`: the name and its lineages."""
    name, stage = parse_target(target)
    return name, audit(repository_root(repo), name, stage, series)


def render(name: str, lineages: list[Lineage], *, json_output: bool = False) -> str:
    """What `audit` prints: each lineage as a block of lines, or all as JSON."""
    if json_output:
        return as_json([found.to_dict() for found in lineages])
    if not lineages:
        return f"no version of {name} holds a stage"
    return "\n".join("\n".join(_lines(found)) for found in lineages)


def _lines(lineage: Lineage) -> list[str]:
    lines = [f"{lineage.name}#{lineage.stage}",
             f"  tag        {lineage.tag} by {lineage.tagger or '?'} at {when(lineage.date)}",
             f"  version    {lineage.version} ({lineage.version_tag or 'not registered'})",
             f"  commit     {lineage.commit}"]
    lines += [f"  source     {name}  {_identity(found)}" for name, found in lineage.sources.items()]
    lines += [f"  data       {path}  md5 {md5}" for path, md5 in lineage.data.items()]
    lines += [f"  model      {path}  md5 {md5}" for path, md5 in lineage.model.items()]
    lines += _family_lines(lineage.family)
    lines += [f"  gates      {lineage.verdict or 'missing'}  sha256 {lineage.gates_digest or '-'}",
              f"  policy     sha256 {lineage.policy_digest or '-'}",
              f"  pr         {f'#{lineage.pr}' if lineage.pr else '-'}",
              f"  approvers  {_approvers(lineage)}",
              *(f"  signoff    {kind}: {_signoff(lineage, who)}" for kind, who in lineage.claimed_signoffs.items()),
              f"  signer     {lineage.signer}"]
    evidence = EVIDENCE.get(lineage.evidence, f"differs from the commit: {', '.join(lineage.differences)}")
    lines.append(f"  evidence   {evidence}")
    lines.append(f"  verify     {_verdict(lineage)}")
    if lineage.series is not None:
        lines += _series_lines(lineage.series)
    return lines


def _family_lines(family: dict[str, Any]) -> list[str]:
    """A batched family's summary: how many series, how many failed, what the tag commits to."""
    if not family:
        return []
    listed = "listed in the tag" if "list" in family else "listed at the commit (reports/<family>/gates.json)"
    lines = [f"  family     {family.get('series')} series, {family.get('failed')} failed; series list sha256 "
             f"{family.get('digest')} ({listed})",
             f"  params     sha256 {family.get('params_sha256')}"]
    lines += [f"  outputs    {path}  md5 {md5}" for path, md5 in (family.get("outputs") or {}).items()]
    return lines


def _series_lines(found: SeriesLineage) -> list[str]:
    """One series of the family: what its outputs were computed from, and what they are."""
    own = json.dumps(found.params, sort_keys=True) if found.params else "none (the family's shared params)"
    lines = [f"{found.family} series {found.series}",
             f"  verdict    {found.verdict}{f' ({found.reason})' if found.reason else ''}",
             f"  key        {found.key or f'not in the DVC cache ({PULL_HINT})'}  (sha256 of its rows, params, code)",
             f"  params     sha256 {found.params_sha256}; its own: {own}",
             f"  model      sha256 {found.model_sha256 or '- (it stopped before training)'}",
             f"  check      {found.model_check}"]
    lines += [f"  source     {path}  {_identity(source)}" for path, source in found.sources.items()]
    if found.rows is not None:
        lines.append(f"  rows       {found.rows}")
    return lines


def _identity(source: dict[str, str]) -> str:
    """What identifies a raw source: a file's md5, a packaged dataset's distribution, version and digest."""
    if "md5" in source:
        return f"md5 {source['md5']}"
    return f"{source.get('distribution')} {source.get('version')}  sha256 {source.get('sha256') or '-'}"


def _approvers(lineage: Lineage) -> str:
    """The approvers the tag names, marked as the claim they are: audit asks no GitHub."""
    if not lineage.claimed_approvers:
        return "-"
    return (f"{', '.join(lineage.claimed_approvers)} (claimed by the tag, unverified: audit does not ask GitHub; "
            f"`modelops-ci verify {lineage.tag}` checks the PR)")


def _signoff(lineage: Lineage, logins: list[str]) -> str:
    """Who signed off a gate's warning, as the tag records it: read from the PR when it was signed."""
    return (f"{', '.join(logins)} (recorded by the tag from the PR's reviews; unverified here: "
            f"`modelops-ci verify {lineage.tag}` checks the PR)")


def _verdict(lineage: Lineage) -> str:
    check = lineage.verification
    if check is None:
        return "not checked (no trusted branch)"
    if check["ok"]:
        return "ok (approvals not checked)"
    return f"refused [{check['rule']}] {check['reason']}"
