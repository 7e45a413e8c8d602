"""`modelops-ci monitor`: is each production model still fed data like the data it learned from?

For every pipeline whose model holds the stage (the registry's champion, `production` by default)
and whose spec names `drift.current` — a data file, or a folder of batches of which the newest by
name is taken — the drift gate compares the reference with that batch using the policy's drift
settings (the gate's defaults when the policy has no drift gate). Each result goes to
reports/<pipeline>/monitor.json and monitor.md.

Drift over the policy's threshold (the gate fails) exits 1 and opens a retraining issue, or PR,
through the API, its body the report. A batch gets one issue: the body starts with a marker naming
the pipeline and the batch's content digest, and the open issues are searched for it first. No
drift: exit 0, nothing opened, no API call. A gate that cannot be evaluated (a batch without the
model's columns, say) also exits 1, but opens nothing: that is a broken feed, not drift.

The reference and model are those of the checkout (the monitor workflow checks out the production
branch); monitor.json says whether the checkout's dvc.lock differs from the champion's commit.
`advisory` does not apply here: it decides whether drift blocks a merge, while monitoring reports it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelops_ci import git
from modelops_ci.errors import CheckFailed, ModelopsError, UserError
from modelops_ci.github.client import GitHub, GitHubError, checked_slug, repository
from modelops_ci.github.workflow import checked_ref
from modelops_ci.layout import COMPILED_DIR, Layout
from modelops_ci.registry import state, tags
from modelops_ci.report.markdown import PR_COMMENT_LIMIT
from modelops_ci.steps.frames import BATCH_SUFFIXES, newest_batch

MARKER = "modelops-ci:monitor"
OPEN_CHOICES = ("issue", "pr", "none")
REPORT_VERSION = 1
_SAFE_TITLE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Batch:
    """The data a pipeline is checked on: its path as given, and a digest of its content."""

    path: str
    digest: str

    @property
    def label(self) -> str:
        """The file name with anything but letters, digits, '.', '_' and '-' replaced (for titles)."""
        return _SAFE_TITLE.sub("_", Path(self.path).name)[:80]


@dataclass(frozen=True)
class Outcome:
    """One monitored pipeline: the gate's status and reason, and the issue or PR about it."""

    pipeline: str
    version: str
    batch: Batch
    status: str
    reason: str
    report: str  # reports/<p>/monitor.json
    url: str = ""
    number: int | None = None
    existing: bool = False  # the issue/PR was already open

    @property
    def drifted(self) -> bool:
        return self.status == "fail"


@dataclass(frozen=True)
class Skipped:
    """A pipeline that is not monitored, and why."""

    pipeline: str
    reason: str


@dataclass(frozen=True)
class Monitored:
    """Every monitored pipeline's outcome, those skipped, and an API failure while opening issues."""

    outcomes: list[Outcome]
    skipped: list[Skipped]
    failure: ModelopsError | None = None

    def enforce(self) -> None:
        """Raise the API failure if there was one; else exit 1 (CheckFailed) when any pipeline
        drifted or could not be checked."""
        if self.failure is not None:
            raise self.failure
        bad = [o for o in self.outcomes if o.status in ("fail", "error")]
        if bad:
            raise CheckFailed("; ".join(f"{o.pipeline}: {'drift' if o.drifted else 'not checked'}: {o.reason}"
                                        for o in bad))


def monitor(root: Path, pipelines: Iterable[str] = (), *, batch: str | None = None, stage: str = "production",
            open_as: str = "issue", base: str = "main", remote: str = "origin",
            client: GitHub | None = None, slug: str | None = None) -> Monitored:
    """Check every production model's newest batch for drift; open an issue/PR for each that drifted."""
    if open_as not in OPEN_CHOICES:
        raise UserError(f"--open {open_as}: use one of {', '.join(OPEN_CHOICES)}")
    tags.stage_tag("x", stage, 1)  # the stage's grammar, before it reaches git or a title
    checked_ref(base)
    root = root.resolve()
    watched, skipped = _watched(root, list(pipelines), stage, batch)
    outcomes = [_check(root, name, champion, found, stage) for name, champion, found in watched]
    if not any(o.drifted for o in outcomes) or open_as == "none":
        return Monitored(outcomes, skipped)
    client = client or GitHub.from_env()
    slug = checked_slug(slug) if slug else repository(root)
    opened, failure = _open_all(root, outcomes, open_as, client, slug, base, remote, stage)
    return Monitored(opened, skipped, failure)


# -- what to watch ----------------------------------------------------------------------------------


def _not_held(registry: state.VerifiedRegistry, name: str, stage: str) -> str:
    note = registry.refusal_note(name, stage)
    unverified = f" (not counted, they do not verify: {note})" if note else ""
    return f"no verified version holds '{stage}'{unverified}"


def _watched(root: Path, wanted: list[str], stage: str,
             batch: str | None) -> tuple[list[tuple[str, tags.Champion, Batch | str]], list[Skipped]]:
    compiled = sorted(p.parent.name for p in (root / COMPILED_DIR).glob("*/params.yaml"))
    unknown = [n for n in wanted if n not in compiled]
    if unknown:
        raise UserError(f"no compiled pipeline {', '.join(unknown)}: run `modelops-ci compile` "
                        f"(compiled: {', '.join(compiled) or 'none'})")
    candidates, skipped = [], []
    registry = state.read(root, wanted or compiled)  # the verified tags alone say who holds a stage
    for name in wanted or compiled:
        current = _drift_current(root, name)
        if batch is None and not current:
            skipped.append(Skipped(name, "no drift.current in its spec"))
            continue
        champion = registry.champion(name, stage)
        if champion is None:
            skipped.append(Skipped(name, _not_held(registry, name, stage)))
            continue
        candidates.append((name, champion, current))
    if wanted:  # a pipeline named on the command line that cannot be watched is a mistake to fix
        reasons = {name: _missing_reference(root, name) for name, _, _ in candidates}
        skipped += [Skipped(name, why) for name, why in reasons.items() if why]
        _refuse(skipped, stage)
    if batch is not None and len(candidates) > 1:
        raise UserError(f"--batch names one batch but {len(candidates)} pipelines are monitored "
                        f"({', '.join(c[0] for c in candidates)}): name the pipeline, e.g. "
                        f"`modelops-ci monitor {candidates[0][0]} --batch {batch}`")
    return [(name, champion, _batch(root, batch or str(current))) for name, champion, current in candidates], skipped


def _refuse(skipped: list[Skipped], stage: str) -> None:
    fixes = {"no drift.current": "add drift.current to its spec, or pass --batch FILE",
             "no verified version": f"promote a version to '{stage}' first, or name another with --stage",
             "its drift reference": "restore it (`dvc pull`, or `modelops-ci run` the pipeline)"}
    lines = []
    for item in skipped:
        fix = next((how for start, how in fixes.items() if item.reason.startswith(start)), "")
        lines.append(f"{item.pipeline}: cannot be monitored: {item.reason}" + (f": {fix}" if fix else ""))
    if lines:
        raise UserError("\n".join(lines))


def _missing_reference(root: Path, name: str) -> str:
    """Why the drift gate has no reference to compare a batch with ('' when it has one)."""
    from modelops_ci.steps.context import load_context

    where = str((load_context(root, name).params.get("drift") or {}).get("reference", "train"))
    path = Layout(name).train if where == "train" else where
    if (root / path).exists():
        return ""
    return f"its drift reference {path} is not in the checkout"


def _drift_current(root: Path, name: str) -> str | None:
    from modelops_ci.steps.context import load_context

    current = (load_context(root, name).params.get("drift") or {}).get("current")
    return str(current) if current else None


def _batch(root: Path, where: str) -> Batch | str:
    """The batch at `where` (a file, or the newest in a folder), or why there is none."""
    path = Path(where) if Path(where).is_absolute() else root / where
    if path.is_dir():
        newest = newest_batch(path)
        if newest is None:
            return f"no batch in {where} (looked for {', '.join(BATCH_SUFFIXES)} files)"
        path = newest
    if not path.is_file():
        return f"drift.current: {where} does not exist: check the path (relative to the repo root)"
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return Batch(shown, digest.hexdigest())


# -- checking ---------------------------------------------------------------------------------------


def _check(root: Path, name: str, champion: tags.Champion, batch: Batch | str, stage: str) -> Outcome:
    from modelops_ci.gates.result import error
    from modelops_ci.steps.context import StepContext, load_context
    from modelops_ci.steps.gate import evaluate

    ctx = load_context(root, name)
    if isinstance(batch, str):
        result = error("drift", batch)
        batch = Batch("", "")
    else:
        params = {**ctx.params, "drift": {**(ctx.params.get("drift") or {}), "current": batch.path}}
        result = evaluate(StepContext(ctx.root, name, params), "drift")
    result.advisory = False  # see the module docstring
    report = _report(root, name, champion, batch, stage, result.to_json())
    layout = Layout(name)
    from modelops_ci.fsutil import write_atomic

    write_atomic(root / layout.reports / "monitor.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_atomic(root / layout.reports / "monitor.md", body(report))
    return Outcome(name, champion.version, batch, result.status, " ".join(result.reason.split()),
                   f"{layout.reports}/monitor.json")


def _report(root: Path, name: str, champion: tags.Champion, batch: Batch, stage: str,
            gate: dict[str, Any]) -> dict[str, Any]:
    lock = Layout(name).lock
    compared = git.run("diff", "--quiet", champion.commit, "--", lock, cwd=root, check=False).returncode
    matches = {0: True, 1: False}.get(compared)  # None: the champion's commit is not in this (shallow) clone
    return {"version": REPORT_VERSION, "pipeline": name, "stage": stage,
            "champion": {"version": champion.version, "commit": champion.commit, "tag": champion.tag},
            "checkout_matches_champion": matches,
            "batch": {"path": batch.path, "sha256": batch.digest},
            "verdict": "drift" if gate["status"] == "fail" else "error" if gate["status"] == "error" else "no drift",
            "gate": gate}


def marker(report: dict[str, Any]) -> str:
    return f"<!-- {MARKER} pipeline={report['pipeline']} batch={str(report['batch']['sha256'])[:16]} -->"


def body(report: dict[str, Any], limit: int = PR_COMMENT_LIMIT) -> str:
    """The issue/PR body (and monitor.md): marker, what was compared, the drift report; at most `limit`."""
    from modelops_ci.gates.verdict import GatesReport
    from modelops_ci.report.markdown import render, text
    from modelops_ci.steps.gate import gates_report

    champion, batch = report["champion"], report["batch"]
    words = {"drift": "the production data drifted", "error": "drift could not be checked",
             "no drift": "no drift"}[report["verdict"]]
    head = (f"{marker(report)}\n# {text(report['pipeline'], 100)} in {text(report['stage'], 60)}: {words}\n\n"
            f"Model {text(champion['version'], 60)} (commit {text(str(champion['commit'])[:12])}, tag "
            f"{text(champion['tag'], 100)}) checked on the batch {text(batch['path'] or 'none', 200)} "
            f"(sha256 {text(str(batch['sha256'])[:16])}).\n")
    if report["checkout_matches_champion"] is False:
        head += ("\n> [!NOTE]\n> The checkout's pipeline lock differs from the champion's commit: the reference "
                 "data and model are the checkout's.\n")
    if report["verdict"] == "drift":
        head += ("\nRetrain on recent data (add the new batches to the training data, `modelops-ci run`), "
                 "and promote the new version through a promotion PR.\n")
    gated = GatesReport.from_json(gates_report(report["pipeline"], [report["gate"]], {}))
    rest = limit - len(head) - 2
    return head + "\n" + render(gated, limit=rest, level=2)


# -- opening issues and PRs -------------------------------------------------------------------------


def _open_all(root: Path, outcomes: list[Outcome], open_as: str, client: GitHub, slug: str, base: str,
              remote: str, stage: str) -> tuple[list[Outcome], ModelopsError | None]:
    """Each drifted outcome with its issue/PR (found by marker, else opened); stops at the first
    API failure and returns it, saying what is open so far and that a rerun finishes the rest."""
    from modelops_ci.commands.promotion_request import PartlyDone

    done: list[Outcome] = []
    try:
        existing = _open_items(client, slug)
        for outcome in outcomes:
            if outcome.drifted:
                outcome = _find_or_open(root, outcome, existing, open_as, client, slug, base, remote, stage)
            done.append(outcome)
    except (GitHubError, PartlyDone) as exc:
        drifted = [o for o in outcomes if o.drifted]
        opened = [f"{o.pipeline}: {o.url}" for o in done if o.url]
        return done + outcomes[len(done):], PartlyDone(
            f"{exc}\n  drift found in {', '.join(o.pipeline for o in drifted)}; reports written "
            f"({', '.join(o.report for o in drifted)}); opened so far: {', '.join(opened) or 'nothing'}. "
            "Running again opens only what is missing (each batch's issue is found by its marker)", exc.exit_code)
    return done, None


def _find_or_open(root: Path, outcome: Outcome, existing: list[dict[str, Any]], open_as: str, client: GitHub,
                  slug: str, base: str, remote: str, stage: str) -> Outcome:
    report = json.loads((root / outcome.report).read_text(encoding="utf-8"))
    found = next((i for i in existing if str(i.get("body") or "").startswith(marker(report))), None)
    if found is not None:
        return replace(outcome, url=str(found["html_url"]), number=int(found["number"]), existing=True)
    if open_as == "issue":
        return _opened(outcome, client.post(f"/repos/{slug}/issues", {
            "title": _title(outcome, stage), "body": body(report), "labels": ["drift"]}))
    return _opened(outcome, _open_pull(root, outcome, report, client, slug, base, remote, stage))


def _opened(outcome: Outcome, item: dict[str, Any]) -> Outcome:
    return replace(outcome, url=str(item.get("html_url", "")), number=int(item["number"]))


def _title(outcome: Outcome, stage: str) -> str:
    return f"Drift in {stage}: {outcome.pipeline} {outcome.version} on batch {outcome.batch.label}"


def _open_items(client: GitHub, slug: str) -> list[dict[str, Any]]:
    """Every open issue and PR (GitHub lists PRs among issues): where the markers are searched."""
    return [i for i in client.get_paginated(f"/repos/{slug}/issues", {"state": "open"}) if isinstance(i, dict)]


def _open_pull(root: Path, outcome: Outcome, report: dict[str, Any], client: GitHub, slug: str, base: str,
               remote: str, stage: str) -> dict[str, Any]:
    """A retraining PR: a branch with the monitor report committed, for the retraining to land on."""
    import os
    import shlex

    from modelops_ci.commands.promotion_request import fetch_base, publish_branch, pull_not_opened

    branch = f"retrain/{outcome.pipeline}-{outcome.batch.digest[:12]}"
    base_commit = fetch_base(root, remote, base)
    relative = f"{Layout(outcome.pipeline).reports}/monitor.json"
    title = f"Retrain {outcome.pipeline}: drift in {stage} on batch {outcome.batch.label}"
    commit, _ = publish_branch(root, remote, branch, base_commit,
                               {relative: (root / relative).read_text(encoding="utf-8")},
                               f"{title}\n\nThe drift report of {outcome.batch.path}: {outcome.reason}\n")
    try:
        pull: dict[str, Any] = client.post(f"/repos/{slug}/pulls", {"title": title, "head": branch, "base": base,
                                                                    "body": body(report)})
    except GitHubError as exc:
        web = (os.environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        raise pull_not_opened(exc, branch=branch, base=base, remote=remote, commit=commit, slug=slug, web=web,
                              again=f"modelops-ci monitor {outcome.pipeline} --batch {shlex.quote(outcome.batch.path)} "
                                    f"--open pr --base {base}") from None
    return pull
