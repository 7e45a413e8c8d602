"""`modelops-ci rollout [--stage STAGE]`: the reconciler. For each model of deployments/<stage>.yaml
with a challenger, it reads the prediction log since the current step began, analyses it
(rollout/analysis.py), decides (rollout/decision.py) and records the decision as a commit to the
deployment file: through a pull request (default) or, where `spec.rollout.commits: direct`, pushed
to the base branch. An abort also opens (or updates) one incident issue per model and stage. So
git's history is the roll-out's history. `--dry-run` prints the decisions and changes nothing.

Who wrote what it reads: the deployment file and the tags come from the base branch as fetched
(trusted, DESIGN 7a); the champion's card and reference profile are read at its verified tag's
commit; the log is the server's own. The versions it compares are those the registry lets serve.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.spec.deployment import DEPLOYMENTS_DIR, Deployment, ModelDeployment

if TYPE_CHECKING:
    from modelops_ci.github.client import GitHub
    from modelops_ci.rollout.analysis import Analysis
    from modelops_ci.rollout.decision import Decision

MARKER = "modelops-ci:rollout"
BRANCH_PREFIX = "rollout/"  # promote.yml's request job leaves these PRs alone
CHANGING = ("advance", "abort", "promote")


@dataclass(frozen=True)
class Options:
    stage: str = "production"
    log: Path | None = None
    rotated: Path | None = None
    dry_run: bool = False
    now: float | None = None  # unix seconds; default the clock (a replay or a test passes it)
    remote: str = "origin"
    base: str = "main"
    report: Path | None = None  # where the JSON, markdown and HTML report go


@dataclass
class Outcome:
    """One model's analysis, decision, and what recording it made."""

    analysis: Analysis
    decision: Decision
    recorded: str = ""  # the commit, or the PR's URL
    issue: str = ""  # the incident issue's URL, after an abort
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"analysis": self.analysis.to_json(), "decision": self.decision.to_json(), "recorded": self.recorded,
                "issue": self.issue, "notes": self.notes}


def rollout(root: Path, options: Options, *, client: GitHub | None = None) -> list[Outcome]:
    """Analyse and decide every roll-out of the stage; record the decisions unless `dry_run`."""
    now = time.time() if options.now is None else options.now
    text, at = _current(root, options)
    from modelops_ci.serve.catalog import deployment_at

    deployment = deployment_at(text, options.stage)
    outcomes = [_decided(root, deployment, model, options, now, at) for model in deployment.models.values()
                if model.challenger is not None]
    if not options.dry_run:
        for outcome in outcomes:
            if outcome.decision.action in CHANGING:
                text = _record(root, deployment, outcome, text, options, now, client)
    return outcomes


def _current(root: Path, options: Options) -> tuple[str, str]:
    """The deployment file's text as the base branch has it, and that commit: fetched from the remote
    when the clone has it (the trusted state, however stale the work tree is), else at HEAD."""
    from modelops_ci.commands.promotion_request import fetch_base
    from modelops_ci.serve.catalog import check_stage

    check_stage(options.stage)  # before it names a file or a ref
    remotes = git.run("remote", cwd=root).stdout.split()
    at = fetch_base(root, options.remote, options.base) if options.remote in remotes else "HEAD"
    shown = git.show_file(root, at, f"{DEPLOYMENTS_DIR}/{options.stage}.yaml")
    if shown is None:
        raise UserError(f"{DEPLOYMENTS_DIR}/{options.stage}.yaml is not committed on {options.base}: commit it there "
                        "first (the roll-out moves what the base branch deploys)")
    return shown.decode("utf-8"), at


def _decided(root: Path, deployment: Deployment, model: ModelDeployment, options: Options, now: float,
             at: str) -> Outcome:
    from modelops_ci.rollout.analysis import analyse
    from modelops_ci.rollout.decision import decide

    notes: list[str] = []
    if model.since is None:
        model = replace(model, since=_set_at(root, deployment, at))
        notes.append("the step's start is the last commit of the deployment file (no `since` recorded)")
    frame = _traffic(root, options, model)
    reference, why = _reference(root, deployment.stage, model)
    if why:
        notes.append(why)
    analysis = analyse(frame, model, now, profile=reference.profile if reference else None,
                       card=reference.card if reference else None)
    return Outcome(analysis, decide(model, analysis.intervals, now), notes=notes)


def _set_at(root: Path, deployment: Deployment, at: str) -> float | None:
    done = git.run("log", "-1", "--format=%ct", "--end-of-options", at, "--",
                   f"{DEPLOYMENTS_DIR}/{deployment.stage}.yaml", cwd=root, check=False)
    stamp = done.stdout.strip()
    return float(stamp) if done.returncode == 0 and stamp.isdigit() else None


def _traffic(root: Path, options: Options, model: ModelDeployment) -> Any:
    from modelops_ci.commands.serve import default_log, default_rotated
    from modelops_ci.serve import predlog

    log = options.log or default_log(root, options.stage)
    rotated = options.rotated or default_rotated(root, options.stage)
    return predlog.read(log if log.is_file() else None, rotated if rotated.is_dir() else None, model=model.name,
                        since=model.since)


def _reference(root: Path, stage: str, model: ModelDeployment) -> tuple[Any, str]:
    """The champion's card and profile, read at its verified stage tag's commit; or why not."""
    from modelops_ci.registry import deployed, state
    from modelops_ci.registry.promote import policy_stages
    from modelops_ci.rollout.champion import reference

    if model.champion is None:
        return None, "no champion: nothing to compare the challenger with"
    registry = state.read(root, [model.name])
    found = deployed.standing(registry, stage, model.name, model.champion, "champion",
                              policy_stages(root, model.name, "HEAD"))
    if found.tag is None:
        return None, f"the champion {model.champion} is not verified for '{stage}': {found.pending or found.refused}"
    try:
        return reference(root, model.name, model.champion, found.tag.commit), ""
    except UserError as exc:
        return None, f"the champion's reference cannot be read: {exc}"


# -- recording a decision --------------------------------------------------------------------------------


def _record(root: Path, deployment: Deployment, outcome: Outcome, text: str, options: Options, now: float,
            client: GitHub | None) -> str:
    """Make the decision's edit to the deployment file, as a PR or a direct commit; on abort, the
    incident issue. Returns the file's text after the edit."""
    from modelops_ci.rollout.edit import edited

    decision = outcome.decision
    after = edited(text, deployment.display, decision.model, decision.action,  # type: ignore[arg-type]
                   weight=decision.next_weight, now=now)
    title = _title(deployment.stage, decision)
    message = f"{title}\n\n" + "\n".join(f"- {r}" for r in decision.reasons) + "\n"
    if deployment.commits == "direct":
        outcome.recorded = _commit_direct(root, options, deployment.display, after, message)
    else:
        outcome.recorded = _open_pull(root, options, deployment.display, after, title, outcome, _client(client))
    if decision.action == "abort" and deployment.models[decision.model].abort_issue:
        outcome.issue = _incident(root, deployment.stage, outcome, _client(client))
    return after


def _title(stage: str, decision: Decision) -> str:
    if decision.action == "promote":
        return f"Roll-out of {decision.model} in {stage}: the challenger becomes the champion"
    if decision.action == "abort":
        return f"Roll-out of {decision.model} in {stage}: abort (challenger to 0%)"
    return f"Roll-out of {decision.model} in {stage}: {decision.weight}% -> {decision.next_weight}%"


def _commit_direct(root: Path, options: Options, display: str, text: str, message: str) -> str:
    from modelops_ci.commands.promotion_request import fetch_base, push_on

    base = fetch_base(root, options.remote, options.base)
    return push_on(root, options.remote, options.base, base, {display: text}, message)


def _client(client: GitHub | None) -> GitHub:
    import os

    from modelops_ci.github.client import GitHub

    if client is not None:
        return client
    if not os.environ.get("GITHUB_TOKEN"):
        raise UserError("GITHUB_TOKEN is not set: roll-out decisions are recorded by pull request and incidents as "
                        "issues through the API (on Actions: `env: GITHUB_TOKEN: ${{ github.token }}` with "
                        "`contents: write`, `pull-requests: write`, `issues: write`), or use --dry-run")
    return GitHub.from_env()


def _open_pull(root: Path, options: Options, display: str, text: str, title: str, outcome: Outcome,
               client: GitHub) -> str:
    from modelops_ci.commands.promotion_request import fetch_base, publish_branch
    from modelops_ci.github.client import repository

    decision = outcome.decision
    slug = repository(root)
    branch = f"{BRANCH_PREFIX}{decision.model}-{options.stage}-{decision.action}-{decision.next_weight}"
    base = fetch_base(root, options.remote, options.base)
    owner = slug.split("/")[0]
    existing = client.get_paginated(f"/repos/{slug}/pulls", {"state": "open", "head": f"{owner}:{branch}"})
    found = next((p for p in existing if isinstance(p, dict) and p.get("head", {}).get("ref") == branch), None)
    if found is not None:
        return str(found["html_url"])
    publish_branch(root, options.remote, branch, base, {display: text}, title + "\n")
    pull = client.post(f"/repos/{slug}/pulls", {"title": title, "head": branch, "base": options.base,
                                                "body": _body(outcome)})
    return str(pull["html_url"])


def _incident(root: Path, stage: str, outcome: Outcome, client: GitHub) -> str:
    """One open issue per model and stage: updated (a comment) while it is open, else opened."""
    from modelops_ci.github.client import repository

    slug = repository(root)
    marker = f"<!-- {MARKER} incident {outcome.decision.model} {stage} -->"
    open_items = client.get_paginated(f"/repos/{slug}/issues", {"state": "open"})
    found = next((i for i in open_items if isinstance(i, dict) and "pull_request" not in i
                  and str(i.get("body") or "").startswith(marker)), None)
    if found is not None:
        client.post(f"/repos/{slug}/issues/{found['number']}/comments", {"body": _body(outcome)})
        return str(found["html_url"])
    issue = client.post(f"/repos/{slug}/issues", {
        "title": f"Roll-out aborted: {outcome.decision.model} {outcome.analysis.challenger} in {stage}",
        "body": f"{marker}\n{_body(outcome)}", "labels": ["rollout"]})
    return str(issue["html_url"])


def _body(outcome: Outcome) -> str:
    from modelops_ci.report.rollout import markdown

    return markdown([outcome.to_json()])


def write_report(folder: Path, stage: str, outcomes: list[Outcome]) -> list[Path]:
    """reports/rollout/<stage>.json, .md and .html: the analyses and decisions, for people and CI."""
    from modelops_ci.fsutil import write_atomic
    from modelops_ci.report.rollout import html, markdown

    data = [o.to_json() for o in outcomes]
    paths = [folder / f"{stage}.json", folder / f"{stage}.md", folder / f"{stage}.html"]
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(paths[0], json.dumps({"stage": stage, "models": data}, indent=2, sort_keys=True) + "\n")
    write_atomic(paths[1], markdown(data))
    write_atomic(paths[2], html(stage, data))
    return paths
