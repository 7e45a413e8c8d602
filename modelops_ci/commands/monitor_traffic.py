"""`modelops-ci monitor --traffic`: watch what the server answered, window by window.

For each model `deployments/<stage>.yaml` names, each deployed version's windows of logged traffic
(the prediction log and its rotated Parquet files, or a file of logged rows) are profiled and
assessed against that version's reference: the profile of its training inputs, read at the commit
of its verified stage tag (a version whose tag does not verify is not watched, and says why). The
selecting policy's `monitoring:` block says how (monitor/policy.py). The alerts it decides open,
update and close one incident issue per model and cause. Results go to
reports/monitoring/<stage>.json and .md.

Exit 1 while an alert is firing; 0 otherwise. Bad input (a version nobody deploys, a missing or
mistyped feature) is named in the report and on the console; the other versions are still watched,
and nothing is judged from rows that could not be read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelops_ci.errors import CheckFailed, UserError
from modelops_ci.monitor.alerts import MARKER, Action, Incident, decide, read_incident, signals
from modelops_ci.monitor.policy import Monitoring
from modelops_ci.monitor.policy import read as read_policy

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.github.client import GitHub
    from modelops_ci.monitor.watch import Reference, Watch
    from modelops_ci.spec.deployment import Deployment

REPORT_VERSION = 1
OpenAs = Literal["issue", "none"]


@dataclass(frozen=True)
class TrafficOptions:
    stage: str = "production"
    log: Path | None = None  # default: serve's log of the stage
    rotated: Path | None = None  # default: serve's rotated folder of the stage
    rows: Path | None = None  # a Parquet or CSV file of logged rows, instead of the log
    open_as: OpenAs = "issue"
    retrain: bool = False  # a new incident of a cause the policy's retrain_on names opens a retraining PR
    base: str = "main"  # the branch a retraining PR targets
    remote: str = "origin"  # where its branch is pushed
    profiles: Path | None = None  # where window profiles are kept; default .modelops/monitor/STAGE


@dataclass
class Watched:
    """One model: what its policy asks, what its windows showed, what the alerts did."""

    model: str
    monitoring: Monitoring
    watch: Watch
    actions: list[Action] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)  # cause -> the incident issue's URL
    retraining: str = ""  # the retraining PR's URL, when one was opened
    classes: tuple[str, ...] = ()  # a classifier's target values, to map labels back for retraining
    rows: Any = None  # the model's logged rows (pd.DataFrame), for a retraining snapshot
    days: list[Any] = field(default_factory=list)  # Assessments of whole UTC days, merged from kept profiles

    @property
    def firing(self) -> list[Action]:
        return [a for a in self.actions if a.kind in ("open", "update", "wait") and a.windows
                and a.windows[-1].state == "firing"]


@dataclass
class TrafficResult:
    stage: str
    models: list[Watched]
    problems: list[str]
    written: list[Path]

    def enforce(self) -> None:
        firing = [f"{w.model}: {a.cause}" for w in self.models for a in w.firing]
        if firing:
            raise CheckFailed(f"alerts firing: {', '.join(firing)} (see reports/monitoring/{self.stage}.md)")


def monitor_traffic(root: Path, options: TrafficOptions, *, now: float | None = None,
                    client: GitHub | None = None) -> TrafficResult:
    from modelops_ci.serve.catalog import read_deployment

    now = time.time() if now is None else now
    deployment = read_deployment(root, options.stage)
    problems: list[str] = []
    classes: dict[str, tuple[str, ...]] = {}
    references = _references(root, deployment, problems, classes)
    policies = _monitoring(root, list(deployment.models))
    lookback = max((m.lookback for m in policies.values()), default=86400.0)
    rows = _rows(root, options, deployment, references, now - lookback)
    problems += _unknown(rows, deployment)
    models = [_watched(name, rows, references, policies[name]) for name in deployment.models]
    for watched in models:
        watched.classes = classes.get(watched.model, ())
    kept = options.profiles or root / ".modelops" / "monitor" / options.stage
    for watched in models:
        problems += watched.watch.problems
        problems += _keep_profiles(kept, watched, references, now)
    if options.open_as == "issue":
        _alert(root, models, now, client, options)
    else:
        for watched in models:
            watched.actions = decide(signals(watched.watch.assessments, watched.monitoring.alerts), [],
                                     watched.monitoring.alerts, now)
    written = write_report(root / "reports" / "monitoring", options.stage, models, problems)
    return TrafficResult(options.stage, models, problems, written)


def _references(root: Path, deployment: Deployment, problems: list[str],
                classes: dict[str, tuple[str, ...]]) -> dict[tuple[str, str], Reference]:
    """Each deployed version's reference, read at its verified stage tag's commit."""
    from modelops_ci.registry import deployed, state
    from modelops_ci.registry.promote import policy_stages
    from modelops_ci.rollout.champion import reference

    registry = state.read(root, list(deployment.models))
    found: dict[tuple[str, str], Reference] = {}
    for standing in deployed.standings(registry, deployment, lambda name: policy_stages(root, name, "HEAD")):
        if standing.tag is None:
            problems.append(f"{standing.model} {standing.version}: not watched: its '{deployment.stage}' tag does not "
                            f"verify ({standing.pending or standing.refused})")
            continue
        try:
            read = reference(root, standing.model, standing.version, standing.tag.commit)
        except UserError as exc:
            problems.append(f"{standing.model} {standing.version}: not watched: its reference cannot be read ({exc})")
            continue
        if read.profile is None:
            problems.append(f"{standing.model} {standing.version}: not watched: {read.why}")
            continue
        classes.setdefault(standing.model, read.classes)
        found[(standing.model, standing.version)] = _with_holdout(read, problems, f"{standing.model} "
                                                                  f"{standing.version}")
    return found


def _with_holdout(read: Any, problems: list[str], label: str) -> Reference:
    """The monitor's reference: the training inputs' profile and, for a classifier whose held-out
    predictions could be read, their scores (prediction drift) and calibration (estimates)."""
    from modelops_ci.gates.profile import numeric_summary
    from modelops_ci.gates.result import CannotEvaluate
    from modelops_ci.monitor.estimate import calibrate
    from modelops_ci.monitor.watch import Reference

    positive = read.card.get("positive")
    task = None if read.card.get("task") is None else str(read.card["task"])
    if read.holdout is None:
        return Reference(read.profile, positive=None if positive is None else str(positive), task=task)
    try:
        calibration = calibrate(read.holdout.scores, read.holdout.labels)
    except CannotEvaluate as exc:
        problems.append(f"{label}: performance is not estimated: {exc}")
        calibration = None
    return Reference(read.profile, numeric_summary(read.holdout.scores), calibration,
                     None if positive is None else str(positive), task)


def _monitoring(root: Path, names: list[str]) -> dict[str, Monitoring]:
    """Each model's `monitoring:` block, from the first policy (by name) that selects its pipeline and
    has one; the defaults when none does."""
    from modelops_ci.spec import workspace

    space = workspace.read(root)
    pipelines = {p.name: p for p in space.pipelines}
    policies = sorted(space.policies, key=lambda p: p.name)
    found = {}
    for name in names:
        pipeline = pipelines.get(name)
        blocks = [p.doc["spec"].get("monitoring") for p in policies if pipeline is not None and p.selects(pipeline)]
        found[name] = read_policy(next((b for b in blocks if b), None))
    return found


def _rows(root: Path, options: TrafficOptions, deployment: Deployment,
          references: dict[tuple[str, str], Reference], since: float) -> pd.DataFrame:
    from modelops_ci.monitor import logged

    if options.rows is not None:
        return logged.from_file(options.rows)
    from modelops_ci.commands.serve import default_log, default_rotated
    from modelops_ci.serve import predlog

    log = options.log or default_log(root, options.stage)
    rotated = options.rotated or default_rotated(root, options.stage)
    if not log.is_file() and not rotated.is_dir():
        raise UserError(f"{log}: no prediction log (and no rotated files in {rotated}): `modelops-ci serve --stage "
                        f"{options.stage}` writes it; or give --rows FILE")
    features = sorted({name for ref in references.values() for name in ref.profile.features})
    records = predlog.read(log if log.is_file() else None, rotated if rotated.is_dir() else None, since=since)
    return logged.from_records(records, features)


def _keep_profiles(folder: Path, watched: Watched, references: dict[tuple[str, str], Reference],
                   now: float) -> list[str]:
    """Save each ended window's profile under `folder`/MODEL/VERSION, then assess the whole UTC days
    the lookback reaches, merged from their kept profiles (so a day is judged even after its rows
    were rotated away). Older profiles stay on disk and are not read again."""
    from modelops_ci.monitor import sketch
    from modelops_ci.monitor.watch import DAY, by_day

    first_day = (now - watched.monitoring.lookback) // DAY * DAY

    for profile in watched.watch.profiles:
        if profile.end <= now:  # names are the deployment's (schema-checked), never the log's
            name = f"{profile.start:.0f}-{profile.end:.0f}.npz"
            sketch.save(profile, folder / profile.model / profile.version / name)
    problems, kept = [], []
    for path in sorted((folder / watched.model).glob("*/*.npz")):
        if _window_start(path) < first_day:
            continue
        try:
            profile = sketch.load(path)
        except UserError as exc:
            problems.append(str(exc))
            continue
        if (profile.model, profile.version) != (watched.model, path.parent.name):
            problems.append(f"{path}: a profile of {profile.model} {profile.version}, not of {watched.model} "
                            f"{path.parent.name}: left out")
            continue
        kept.append(profile)
    watched.days = by_day(kept, references, watched.monitoring.settings)
    return problems


def _window_start(path: Path) -> float:
    """The start a kept profile's name gives (`START-END.npz`); a name of another form is read."""
    try:
        return float(path.stem.split("-", 1)[0])
    except ValueError:
        return float("inf")


def _unknown(rows: pd.DataFrame, deployment: Deployment) -> list[str]:
    logged_models = sorted(set(rows["model"].astype(str))) if len(rows) else []
    return [f"{name} is in the log but {deployment.stage}'s deployment does not name it: its rows are not assessed"
            for name in logged_models if name not in deployment.models]


def _watched(name: str, rows: pd.DataFrame, references: dict[tuple[str, str], Reference],
             monitoring: Monitoring) -> Watched:
    from modelops_ci.monitor.watch import watch

    mine = rows[rows["model"].astype(str) == name] if len(rows) else rows
    versions = {key: ref for key, ref in references.items() if key[0] == name}
    watched = Watched(name, monitoring, watch(mine, versions, monitoring.window, monitoring.settings))
    watched.rows = mine
    return watched


# -- alerts on GitHub --------------------------------------------------------------------------------------


def _alert(root: Path, models: list[Watched], now: float, client: GitHub | None, options: TrafficOptions) -> None:
    from modelops_ci.github.client import GitHub, repository

    github = client or GitHub.from_env()
    slug = repository(root)
    open_items = [i for i in github.get_paginated(f"/repos/{slug}/issues", {"state": "open", "labels": "monitoring"})
                  if isinstance(i, dict) and "pull_request" not in i]
    incidents = [found for item in open_items
                 if (found := read_incident(int(item["number"]), str(item.get("body") or ""))) is not None]
    for watched in models:
        mine = [i for i in incidents if i.model == watched.model]
        policy = watched.monitoring.alerts
        watched.actions = decide(signals(watched.watch.assessments, policy), mine, policy, now)
        for action in watched.actions:
            url = _carry_out(github, slug, action, now)
            if url:
                watched.urls[action.cause] = url
            if options.retrain and action.kind == "open" and action.cause in watched.monitoring.retrain_on:
                watched.retraining = _retraining(root, watched, action, options, github, slug)


def _retraining(root: Path, watched: Watched, action: Action, options: TrafficOptions, github: GitHub,
                slug: str) -> str:
    from modelops_ci.commands.monitor_retrain import Proposal, open_retraining_pr

    features = sorted({name for a in watched.watch.profiles for name in a.features})
    proposal = Proposal(watched.model, options.stage, action, watched.rows, features, _incident_body(action),
                        watched.classes)
    return open_retraining_pr(root, proposal, github, slug, base=options.base, remote=options.remote)


def _carry_out(github: GitHub, slug: str, action: Action, now: float) -> str:
    """Open, update or close the action's incident issue; its URL ("" for a wait)."""
    if action.kind == "wait":
        return ""
    notified = now if action.notify else (action.incident.last_notified if action.incident else now)
    kept = Incident(action.model, action.cause, action.incident.number if action.incident else 0,
                    action.first_seen, notified)
    body = f"{kept.marker()}\n{_incident_body(action)}"
    if action.kind == "open":
        issue = github.post(f"/repos/{slug}/issues", {"title": _title(action), "body": body,
                                                     "labels": ["monitoring", action.cause.replace("_", "-")]})
        return str(issue["html_url"])
    assert action.incident is not None
    path = f"/repos/{slug}/issues/{action.incident.number}"
    if action.kind == "close":
        github.post(f"{path}/comments", {"body": f"Resolved: {action.reason}"})
        issue = github.patch(path, {"body": body, "state": "closed", "state_reason": "completed"})
        return str(issue["html_url"])
    issue = github.patch(path, {"body": body})
    if action.notify:
        github.post(f"{path}/comments", {"body": f"Still firing: {action.reason}"})
    return str(issue["html_url"])


def _title(action: Action) -> str:
    words = {"input_drift": "input drift", "prediction_drift": "prediction drift",
             "performance": "performance under the policy's least", "volume": "low traffic"}
    return f"Monitoring: {words[action.cause]} on {action.model}"


def _incident_body(action: Action) -> str:
    lines = [f"## {_title(action)}", "", f"First seen at {_clock(action.first_seen)} (UTC); the latest window: "
             f"{action.reason}", "", "| window (UTC) | version | verdict |", "|---|---|---|"]
    for signal in action.windows[-12:]:
        lines.append(f"| {_clock(signal.start)} to {_clock(signal.end)} | {signal.version} | {signal.state} |")
    lines += ["", f"Written by `modelops-ci monitor --traffic` ({MARKER}); the marker line above keeps the alert's "
              "state: edit it and the next look opens a new incident."]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


# -- the report --------------------------------------------------------------------------------------------


def write_report(folder: Path, stage: str, models: list[Watched], problems: list[str]) -> list[Path]:
    """reports/monitoring/<stage>.json (every window's assessment and the alerts), .md and .html."""
    from modelops_ci.fsutil import write_atomic
    from modelops_ci.report.monitoring import html

    report = {"version": REPORT_VERSION, "stage": stage, "problems": problems,
              "models": [_model_json(w) for w in models]}
    paths = [folder / f"{stage}.json", folder / f"{stage}.md", folder / f"{stage}.html"]
    write_atomic(paths[0], json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_atomic(paths[1], markdown(report))
    write_atomic(paths[2], html(report))
    return paths


def _model_json(watched: Watched) -> dict[str, Any]:
    return {"model": watched.model, "window": str(watched.monitoring.window),
            "min_samples": watched.monitoring.settings.min_samples,
            "min_performance": dict(watched.monitoring.alerts.min_performance),
            "windows": [a.to_json() for a in watched.watch.assessments],
            "alerts": [{"kind": a.kind, "cause": a.cause, "notify": a.notify, "reason": a.reason,
                        "first_seen": a.first_seen, "url": watched.urls.get(a.cause, "")} for a in watched.actions],
            "retraining": watched.retraining, "days": [d.to_json() for d in watched.days]}


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Monitoring: {report['stage']}", ""]
    for model in report["models"]:
        lines += [f"## {model['model']}", "", "| window (UTC) | version | rows | verdict | why |",
                  "|---|---|---:|---|---|"]
        for window in model["windows"][-24:]:
            reason = str(window["reason"]).replace("|", "\\|")
            lines.append(f"| {_clock(window['start'])} | {window['version']} | {window['rows']:,} | "
                         f"{window['status']} | {reason} |")
        if model.get("days"):
            lines += ["", "| day (UTC, merged windows) | version | rows | verdict | why |", "|---|---|---:|---|---|"]
            for day in model["days"][-14:]:
                reason = str(day["reason"]).replace("|", "\\|")
                lines.append(f"| {_clock(day['start'])[:10]} | {day['version']} | {day['rows']:,} | {day['status']} | "
                             f"{reason} |")
        for alert in model["alerts"]:
            link = f" ({alert['url']})" if alert["url"] else ""
            lines.append(f"\n**Alert {alert['cause']}: {alert['kind']}** (first seen {_clock(alert['first_seen'])} "
                         f"UTC){link}: {alert['reason']}")
        lines.append("")
    if report["problems"]:
        lines += ["## Not assessed", "", *(f"- {p}" for p in report["problems"]), ""]
    return "\n".join(lines)
