"""The retraining pull request `monitor --traffic --retrain` opens with a new incident of a cause the
policy's `retrain_on` names.

In a temporary worktree of the base branch (never the user's work tree), with the trusted checkout's
DVC cache and remotes: the model's recent logged rows become data/retrain/<model>/<stage>-<time>.parquet
(its features, and the target from the labels joined so far: monitor/retrain.py), tracked by DVC
(`dvc add`) and pushed to the DVC remote, so that CI can pull it; the pipeline's spec gets it as one
more source. That commit is pushed as retrain/<model>-<stage>-<time> and proposed with the incident's
report as the body; CI then trains and gates it as any other change, and people review it. The
branch is named by the incident's first sighting, so a second look finds the PR open, not a new one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci import git
from modelops_ci.errors import UserError

if TYPE_CHECKING:
    from modelops_ci.github.client import GitHub
    from modelops_ci.monitor.alerts import Action
    from modelops_ci.monitor.retrain import Target
    from modelops_ci.spec.model import Pipeline


@dataclass(frozen=True)
class Proposal:
    model: str
    stage: str
    action: Action
    rows: Any  # the model's logged rows (pd.DataFrame)
    features: list[str]
    report: str  # the incident's markdown: the PR's body
    classes: tuple[str, ...] = ()  # the target's values in the training split (a binary one's negative class)


def open_retraining_pr(root: Path, proposal: Proposal, github: GitHub, slug: str, *, base: str, remote: str) -> str:
    """The retraining PR's URL: the open one for this incident, else a new one."""
    from modelops_ci.commands.promotion_request import fetch_base

    stamp = time.strftime("%Y%m%dT%H%M", time.gmtime(proposal.action.first_seen))
    branch = f"retrain/{proposal.model}-{proposal.stage}-{stamp}"
    owner = slug.split("/", 1)[0]
    found = github.get_paginated(f"/repos/{slug}/pulls", {"state": "open", "head": f"{owner}:{branch}"})
    if found:
        return str(found[0]["html_url"])
    pipeline = _pipeline(root, proposal.model)
    data = f"data/retrain/{proposal.model}/{proposal.stage}-{stamp}.parquet"
    title = f"Retrain {proposal.model}: {proposal.action.cause.replace('_', ' ')} in {proposal.stage}"
    _commit_and_push(root, proposal, pipeline, data, fetch_base(root, remote, base), branch, remote, title)
    pull = github.post(f"/repos/{slug}/pulls", {"title": title, "head": branch, "base": base,
                                                "body": _body(proposal, data, pipeline.source)})
    return str(pull["html_url"])


def _pipeline(root: Path, name: str) -> Pipeline:
    from modelops_ci.spec import workspace

    found = next((p for p in workspace.read(root).pipelines if p.name == name), None)
    if found is None:
        raise UserError(f"{name}: no pipeline of that name in this repository: a retraining PR needs its spec")
    return found


def _target(pipeline: Pipeline, classes: tuple[str, ...]) -> Target:
    """The target column and its classes: the positive one from the spec, the negative one the spec's
    favorable class, else the other of a binary target's two."""
    from modelops_ci.monitor.retrain import Target

    target = pipeline.spec["data"]["target"]
    positive, negative = target.get("positive"), target.get("favorable")
    others = [c for c in classes if c != str(positive)]
    if negative is None and positive is not None and len(others) == 1:
        negative = others[0]
    return Target(str(target["column"]), None if positive is None else str(positive),
                  None if negative is None else str(negative))


def _commit_and_push(root: Path, proposal: Proposal, pipeline: Pipeline, data: str, base_commit: str, branch: str,
                     remote: str, title: str) -> None:
    from modelops_ci.monitor.retrain import snapshot, with_source
    from modelops_ci.registry.worktree import run_dvc, share_dvc_state, worktree
    from modelops_ci.steps.frames import write_parquet

    with worktree(root, base_commit) as tree:
        share_dvc_state(root, tree)
        rows = snapshot(proposal.rows, proposal.features, _target(pipeline, proposal.classes))
        write_parquet(rows, tree / data)
        for args in (("add", "--quiet", data), ("push", "--quiet", f"{data}.dvc")):
            done = run_dvc(tree, *args)
            if done.returncode != 0:
                said = (done.stderr or done.stdout).strip()
                raise UserError(f"`dvc {args[0]}` of the retraining snapshot failed: {said} (a DVC remote must be "
                                "configured, with its credentials in the environment)")
        spec = tree / pipeline.source
        spec.write_text(with_source(spec.read_text(encoding="utf-8"), pipeline.source, data), encoding="utf-8")
        git.run("add", "--", f"{data}.dvc", str(Path(data).parent / ".gitignore"), pipeline.source, cwd=tree)
        message = f"{title}\n\n{len(rows):,} logged rows as {data} (DVC), added to {pipeline.source}'s sources.\n"
        git.run("-c", "core.hooksPath=/dev/null", "commit", "--quiet", "-m", message, cwd=tree)
        done = git.run("push", "--porcelain", "--end-of-options", remote, f"HEAD:refs/heads/{branch}", cwd=tree,
                       check=False)
        if done.returncode != 0:
            raise UserError(f"could not push branch '{branch}' to '{remote}': {(done.stderr or done.stdout).strip()}")


def _body(proposal: Proposal, data: str, spec: str) -> str:
    rows = proposal.rows
    labelled = int(rows["label"].notna().sum()) if "label" in rows else 0
    return (f"Monitoring opened an incident ({proposal.action.cause.replace('_', ' ')}) on {proposal.model} in "
            f"{proposal.stage}. This PR adds the recent logged traffic to its training data: {len(rows):,} rows "
            f"({labelled:,} with a label; the others are dropped by ingest) as `{data}`, tracked by DVC and added to "
            f"`{spec}`'s sources. CI trains and gates it as any other change.\n\n{proposal.report}\n")
