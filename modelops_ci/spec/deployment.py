"""`kind: Deployment` (deployments/<stage>.yaml): the desired serving state of one stage.

Per model: the champion version, an optional challenger, how the challenger gets traffic (`canary`:
a sticky share of requests answered by it; `shadow`: a share of requests copied to it, its answers
logged and never returned), its current `weight`, the roll-out `steps`, the `analysis` that decides
each step and what `abort` does. The file is written by people and by `promotion-request` and
`rollout`, reviewed in git; the versions it names are served only if their stage tags verify.
The schema (schemas/deployment.json) checks the shape; `parse` turns a checked document into
these objects and reports what a schema cannot say (steps that do not rise to 100, ...).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from modelops_ci.errors import Problem
from modelops_ci.spec.nodes import locate_key, yaml_path

DEPLOYMENTS_DIR = "deployments"
Mode = Literal["canary", "shadow"]
Commits = Literal["pull-request", "direct"]
_DURATION = re.compile(r"^([0-9]+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_STEPS = ((10, 600.0), (50, 600.0), (100, 0.0))


@dataclass(frozen=True)
class Step:
    """One step of a roll-out: the challenger's share of traffic (percent) and how long it holds
    there, with passing analysis, before the next step (seconds; the last step's pause is unused)."""

    weight: int
    pause: float


@dataclass(frozen=True)
class Analysis:
    """What decides a step. `metrics` maps a metric to its bound, e.g. {"error_rate": {"max": 0.01}};
    the known metrics are `METRICS`. An interval with fewer than `min_samples` challenger answers is
    inconclusive, never a failure; `failure_limit` failed intervals in a row abort; after
    `inconclusive_limit` inconclusive intervals in a row the roll-out holds for a person."""

    interval: float = 300.0
    min_samples: int = 100
    failure_limit: int = 2
    inconclusive_limit: int = 6
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


# metric -> which bound it takes ("max": the challenger fails above it; "min": below it)
METRICS: dict[str, str] = {
    "error_rate": "max",          # share of the challenger's answers that were errors
    "latency_p99_ms": "max",      # the challenger's 99th percentile latency
    "agreement": "min",           # share of rows where champion and challenger answered alike (shadow)
    "prediction_drift": "alpha",  # challenger's predictions vs the champion's in the interval: p-value
    "input_drift": "alpha",       # the challenger's inputs vs the champion's reference profile (drift gate)
    "performance": "max_drop",    # on joined labels: the champion's metric minus the challenger's
}


# What a roll-out is judged on when its analysis names no metric: answers that fail.
DEFAULT_METRICS: dict[str, dict[str, Any]] = {"error_rate": {"max": 0.01}}


@dataclass(frozen=True)
class ModelDeployment:
    """One model's desired serving state in a stage."""

    name: str
    champion: str | None  # a version, e.g. v1.2.0
    challenger: str | None = None
    mode: Mode = "canary"
    weight: int = 0  # the challenger's current share (percent); 0 with a challenger: not started or aborted
    steps: tuple[Step, ...] = tuple(Step(w, p) for w, p in DEFAULT_STEPS)
    analysis: Analysis = field(default_factory=Analysis)
    abort_issue: bool = True  # abort opens (or updates) one incident issue
    since: float | None = None  # when the current weight was set (unix seconds), written by rollout
    commits: dict[str, str] = field(default_factory=dict)  # version -> the commit it was registered at

    @property
    def step(self) -> int | None:
        """Index of the step the current weight is at, None when the weight is no step's."""
        return next((i for i, s in enumerate(self.steps) if s.weight == self.weight), None)

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(v for v in (self.champion, self.challenger) if v)


@dataclass(frozen=True)
class Deployment:
    """A parsed deployments/<stage>.yaml."""

    display: str
    stage: str
    models: dict[str, ModelDeployment]
    commits: Commits = "pull-request"  # how rollout records a decision: a PR, or a direct commit
    data: Any = field(default=None, compare=False, repr=False)  # the marked document, for messages

    def where(self, path: list[str | int]) -> tuple[int, int]:
        """Line and column of the key at `path` in the file (1, 1 without a document)."""
        if self.data is None:
            return 1, 1
        mark = locate_key(self.data, path)
        return mark.line, mark.col


def seconds(text: str) -> float:
    """`90s`, `10m`, `2h`, `1d` in seconds (the schema checked the form)."""
    matched = _DURATION.match(text)
    if matched is None:
        raise ValueError(f"not a duration: {text!r}")
    return float(int(matched.group(1)) * _SECONDS[matched.group(2)])


def parse(doc: Any, display: str) -> tuple[Deployment, list[Problem]]:
    """The deployment in a schema-checked document, and what is wrong with it beyond the schema."""
    spec = doc["spec"]
    problems: list[Problem] = []
    stage = str(spec["stage"])
    name = doc.get("metadata", {}).get("name")
    if name is not None and name != stage:
        problems.append(_problem(doc, ["metadata", "name"], display, f"metadata.name '{name}' is not the stage "
                                 f"'{stage}'", f"name the file's deployment after its stage: name: {stage}"))
    if display.startswith(f"{DEPLOYMENTS_DIR}/") and display.rsplit("/", 1)[-1].split(".")[0] != stage:
        problems.append(_problem(doc, ["spec", "stage"], display, f"stage '{stage}' in a file not named after it",
                                 f"rename the file to {DEPLOYMENTS_DIR}/{stage}.yaml"))
    models: dict[str, ModelDeployment] = {}
    for model_name, entry in (spec.get("models") or {}).items():
        model, found = _model(doc, display, str(model_name), entry)
        models[model.name] = model
        problems += found
    commits = spec.get("rollout", {}).get("commits", "pull-request")
    return Deployment(display, stage, models, commits, doc), problems


def _model(doc: Any, display: str, name: str, entry: dict[str, Any]) -> tuple[ModelDeployment, list[Problem]]:
    where: list[str | int] = ["spec", "models", name]
    problems: list[Problem] = []
    steps = tuple(Step(int(s["weight"]), seconds(str(s.get("pause", "0s")))) for s in entry.get("steps", ()))
    steps = steps or ModelDeployment.steps
    problems += _check_steps(doc, display, where, steps)
    analysis_entry = entry.get("analysis", {})
    analysis = Analysis(interval=seconds(str(analysis_entry.get("interval", "5m"))),
                        min_samples=int(analysis_entry.get("min_samples", Analysis.min_samples)),
                        failure_limit=int(analysis_entry.get("failure_limit", Analysis.failure_limit)),
                        inconclusive_limit=int(analysis_entry.get("inconclusive_limit", Analysis.inconclusive_limit)),
                        metrics={str(k): dict(v) for k, v in analysis_entry.get("metrics", {}).items()}
                        or dict(DEFAULT_METRICS))
    model = ModelDeployment(name=name, champion=_version(entry.get("champion")),
                            challenger=_version(entry.get("challenger")), mode=entry.get("mode", "canary"),
                            weight=int(entry.get("weight", 0)), steps=steps, analysis=analysis,
                            abort_issue=bool(entry.get("abort", {}).get("issue", True)),
                            since=float(entry["since"]) if "since" in entry else None,
                            commits={str(k): str(v) for k, v in (entry.get("commits") or {}).items()})
    problems += _check_roles(doc, display, where, model)
    problems += _check_bounds(doc, display, where, analysis_entry.get("metrics", {}))
    return model, problems


def _version(value: Any) -> str | None:
    return str(value) if value is not None else None


def _check_steps(doc: Any, display: str, where: list[str | int], steps: tuple[Step, ...]) -> list[Problem]:
    weights = [s.weight for s in steps]
    if any(b <= a for a, b in itertools.pairwise(weights)):
        return [_problem(doc, [*where, "steps"], display, f"step weights {weights} do not rise",
                         "list the challenger's share step by step, each larger than the last, e.g. 10, 50, 100")]
    if weights[-1] != 100:
        return [_problem(doc, [*where, "steps"], display, f"the steps end at {weights[-1]}%, not 100%",
                         "end the steps with `- weight: 100`: the last step hands all traffic to the challenger")]
    return []


def _check_bounds(doc: Any, display: str, where: list[str | int], metrics: dict[str, Any]) -> list[Problem]:
    """Each metric has the bound its kind is judged by (error_rate a max, agreement a min, ...)."""
    problems = []
    for name, bound in metrics.items():
        needed = METRICS.get(str(name))
        if needed and needed not in bound:
            problems.append(_problem(doc, [*where, "analysis", "metrics", name], display,
                                     f"{name} is judged by `{needed}`, which is not set",
                                     f"write e.g. `{name}: {{{needed}: {_EXAMPLE[needed]}}}`"))
    return problems


_EXAMPLE = {"max": 0.01, "min": 0.9, "alpha": 0.01, "max_drop": 0.02}


def _check_roles(doc: Any, display: str, where: list[str | int], model: ModelDeployment) -> list[Problem]:
    problems: list[Problem] = []
    if model.champion is None and model.challenger is None:
        problems.append(_problem(doc, where, display, f"model '{model.name}' names no version",
                                 "set `champion: vX.Y.Z` (the version that answers), or remove the model"))
    if model.challenger is not None and model.challenger == model.champion:
        problems.append(_problem(doc, [*where, "challenger"], display,
                                 f"the challenger {model.challenger} is the champion", "remove `challenger`"))
    if model.challenger is None and model.weight:
        problems.append(_problem(doc, [*where, "weight"], display, f"weight {model.weight}% with no challenger",
                                 "set `weight: 0`, or name the `challenger` that gets the traffic"))
    elif model.challenger is not None and model.weight and model.step is None:
        shares = ", ".join(str(s.weight) for s in model.steps)
        problems.append(_problem(doc, [*where, "weight"], display, f"weight {model.weight}% is not one of the "
                                 f"steps' ({shares})", "set the weight of a step, or 0 to stop the challenger"))
    if model.champion is None and model.challenger is not None and model.weight != 100:
        problems.append(_problem(doc, [*where, "challenger"], display, "a challenger with no champion",
                                 "deploy the first version as `champion:`; a challenger needs one to compare with"))
    return problems


def _problem(doc: Any, path: list[str | int], display: str, message: str, hint: str) -> Problem:
    mark = locate_key(doc, path)
    return Problem(display, mark.line, mark.col, yaml_path(path), message, hint)
