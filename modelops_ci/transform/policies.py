"""Apply policies to pipelines: the required gates, never weakened, with what they need.

A policy is a floor. A pipeline it selects may make a gate stricter, never weaker: which way
is stricter for each threshold is written in the schema (`x-stricter`), so a new threshold
cannot be added without saying it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelops_ci.errors import Problem
from modelops_ci.spec import schema
from modelops_ci.spec.model import Document, Pipeline, Policy
from modelops_ci.spec.nodes import Mark, MDict, clone, locate
from modelops_ci.transform import sensitive_inputs

CLASSIFICATION_METRICS = {"roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier"}
DECISION_GATES = frozenset({"feasibility", "violations", "optimality", "solve_time"})
BOTH_KINDS = frozenset({"compare"})  # judges either kind of model, each in its own way
TASK_METRICS = {
    "classification": CLASSIFICATION_METRICS,
    "regression": {"rmse", "mae", "r2"},
    "forecast": {"mae", "rmse", "smape", "mase"},
}


@dataclass(frozen=True)
class Governed:
    """A pipeline with the policies that select it and the gates it must pass."""

    pipeline: Pipeline
    policies: tuple[Policy, ...]
    gates: MDict

    @property
    def stages(self) -> tuple[str, ...]:
        return self.policies[0].stages if self.policies else ()

    @property
    def trusted_types(self) -> tuple[str, ...]:
        """The model types the selecting policies add to the audited list (each policy may add)."""
        names: set[str] = set()
        for policy in self.policies:
            models = policy.doc["spec"].get("models") or {}
            names.update(str(name) for name in models.get("trusted_types") or ())
        return tuple(sorted(names))


    @property
    def family_rules(self) -> list[dict[str, Any]]:
        """How many of a batched family's series may fail: every selecting policy's `family` rule
        must hold (default: none may fail)."""
        rules = [dict(p.doc["spec"]["family"]) for p in self.policies if p.doc["spec"].get("family")]
        return rules or [{"max_failed": 0}]


def read_policy(doc: Document) -> tuple[Policy, list[Problem]]:
    """The policy in `doc` (already schema-checked) and its own consistency problems."""
    spec = doc.data["spec"]
    stages = tuple(str(s) for s in spec["stages"])
    problems = []
    promotion: MDict = spec.get("promotion") or MDict(spec.mark)
    for stage in promotion:
        if stage not in stages:
            problems.append(_problem(promotion.key_mark(stage), f"spec.promotion.{stage}",
                                     f"'{stage}' is not one of the policy's stages",
                                     schema.suggest(stage, list(stages))))
    compare: MDict = (spec.get("gates") or MDict(spec.mark)).get("compare") or MDict(spec.mark)
    against = compare.get("against")
    if against is not None and against not in stages:
        problems.append(_problem(compare.value_mark("against"), "spec.gates.compare.against",
                                 f"'{against}' is not one of the policy's stages",
                                 schema.suggest(str(against), list(stages))))
    policy = Policy(doc.name, doc.display, doc.data, stages,
                    spec.get("gates") or MDict(spec.mark), dict(promotion))
    return policy, problems


def govern(pipeline: Pipeline, policies: list[Policy]) -> tuple[Governed, list[Problem]]:
    """The gates `pipeline` must pass, and every way it falls short of its policies."""
    selecting = tuple(p for p in policies if p.selects(pipeline))
    problems: list[Problem] = []
    gates = clone(pipeline.gates)
    for index, policy in enumerate(selecting):
        problems.extend(_weakened(pipeline, policy))
        problems.extend(_disagreements(pipeline, selecting[:index], policy))
        gates = _strictest(gates, policy.gates)
    problems.extend(_stage_conflicts(pipeline, selecting))
    problems.extend(_prerequisites(pipeline, gates, selecting))
    problems.extend(sensitive_inputs.forbidden(pipeline, gates, selecting))
    return Governed(pipeline, selecting, gates), problems


def _gates_schema() -> dict[str, Any]:
    bundled = schema.bundle("Policy", "resolved")
    return _resolve_ref(bundled, bundled["$defs"]["gates"])


def _resolve_ref(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**root["$defs"][node["$ref"].split("/")[-1]], **extra}
    return node


def _child(root: dict[str, Any], node: dict[str, Any], key: str) -> dict[str, Any]:
    sub = node.get("properties", {}).get(key) or node.get("additionalProperties") or {}
    return _resolve_ref(root, sub) if isinstance(sub, dict) else {}


def _leaves(node: Any, floor: Any, root: dict[str, Any], rule: dict[str, Any],
            path: list[str]) -> Iterator[tuple[list[str], Any, Any, Any]]:
    """(path, pipeline value, policy value, direction) for each threshold both set."""
    if isinstance(floor, dict):
        for key, floor_value in {**floor, **_unset_flags(floor, root, rule)}.items():
            value = node.get(key) if isinstance(node, dict) else None
            sub_rule = _child(root, rule, key)
            if value is None and sub_rule.get("x-stricter") is False:
                value = False  # an unset advisory flag means blocking
            if value is not None:
                yield from _leaves(value, floor_value, root, sub_rule, [*path, key])
        return
    if "x-stricter" in rule:
        yield path, node, floor, rule["x-stricter"]


def _unset_flags(floor: dict[str, Any], root: dict[str, Any],
                 rule: dict[str, Any]) -> dict[str, bool]:
    """The flags whose strict value is false (`advisory`, `allow_first`) that `floor` leaves unset.

    Unset means false: a policy that says nothing about `advisory` requires a blocking gate,
    so a pipeline's `advisory: true` weakens it just as much as an explicit `advisory: false`.
    """
    return {key: False for key in rule.get("properties", {})
            if key not in floor and _child(root, rule, key).get("x-stricter") is False}


def _is_weaker(value: Any, floor: Any, direction: Any) -> bool:
    if isinstance(direction, list):  # the allowed values, weakest first
        return direction.index(value) < direction.index(floor)
    if direction == "higher":
        return bool(value < floor)
    if direction == "lower":
        return bool(value > floor)
    if direction == "equal":
        return bool(value != floor)
    return bool(value != floor and floor == direction)


@dataclass(frozen=True)
class Weakening:
    """A threshold set weaker than a policy's floor for it."""

    path: tuple[str, ...]  # the gate, then the keys down to the threshold
    value: Any
    required: Any
    direction: Any

    @property
    def path_text(self) -> str:
        return ".".join(self.path)

    @property
    def shown(self) -> str:
        return _show(self.value)

    @property
    def requirement(self) -> str:
        return _requirement(self.required, self.direction)


def weakenings(gates: Mapping[str, Any], floor: Mapping[str, Any]) -> Iterator[Weakening]:
    """Each setting of `gates` (a pipeline's or a compiled one) weaker than `floor` (a policy's gates).

    A value that cannot be compared with the floor's (another type) counts as weaker: a check
    that cannot tell must not let it through.
    """
    root = schema.bundle("Policy", "resolved")
    rule = _gates_schema()
    for gate, floor_settings in floor.items():
        if gate not in gates:
            continue
        for path, value, required, direction in _leaves(gates[gate], floor_settings, root,
                                                        _child(root, rule, gate), [gate]):
            try:
                weaker = _is_weaker(value, required, direction)
            except (TypeError, ValueError):
                weaker = True
            if weaker:
                yield Weakening(tuple(path), value, required, direction)


def _weakened(pipeline: Pipeline, policy: Policy) -> Iterator[Problem]:
    for found in weakenings(pipeline.gates, policy.gates):
        where = locate(pipeline.spec, ["gates", *found.path])
        floor_at = locate(policy.gates, list(found.path))
        yield _problem(where, f"spec.gates.{found.path_text}",
                       f"weakens policy '{policy.name}' ({policy.source}:{floor_at.line}): "
                       f"{found.shown} where the policy requires {found.requirement}",
                       "meet the policy, or change the policy by a reviewed PR")


def _requirement(value: Any, direction: Any) -> str:
    if isinstance(direction, list):
        return f"{_show(value)} or stricter ({' < '.join(direction)})"
    return {"higher": f"at least {_show(value)}", "lower": f"at most {_show(value)}"}.get(
        str(direction), _show(value))


def _show(value: Any) -> str:
    """A value as it is written in YAML (`true`, not `True`)."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _disagreements(pipeline: Pipeline, earlier: tuple[Policy, ...],
                   policy: Policy) -> Iterator[Problem]:
    """Values two policies must agree on (`x-stricter: equal`): neither can be the stricter."""
    root = schema.bundle("Policy", "resolved")
    rule = _gates_schema()
    for other in earlier:
        for gate, floor in other.gates.items():
            if gate not in policy.gates:
                continue
            leaves = _leaves(policy.gates[gate], floor, root, _child(root, rule, gate), [gate])
            for path, value, required, direction in leaves:
                if direction == "equal" and value != required:
                    other_at = locate(other.gates, path)
                    yield _problem(locate(policy.gates, path), "spec.gates." + ".".join(path),
                                   f"pipeline '{pipeline.name}' is also governed by '{other.name}' "
                                   f"({other.source}:{other_at.line}), which requires "
                                   f"{_show(required)}, not {_show(value)}",
                                   "policies that select the same pipeline must agree on it")


def _strictest(gates: MDict, floor: MDict) -> MDict:
    """`gates` with every threshold of `floor` it lacks or sets more loosely."""
    root = schema.bundle("Policy", "resolved")
    merged: MDict = _stricter_node(gates, floor, root, _gates_schema())
    return merged


def _stricter_node(node: Any, floor: Any, root: dict[str, Any], rule: dict[str, Any]) -> Any:
    if not isinstance(floor, MDict):
        if node is None or _is_weaker(node, floor, rule.get("x-stricter")):
            return clone(floor)
        return node
    out = clone(node) if isinstance(node, MDict) else MDict(floor.mark)
    for key, floor_value in floor.items():
        merged = _stricter_node(out.get(key), floor_value, root, _child(root, rule, key))
        if key in out:
            out[key] = merged
        else:
            out.copy_entry(floor, key, merged)
    for key in _unset_flags(floor, root, rule):
        if out.get(key) is True:
            out[key] = False  # the floor is blocking (unset means false)
    return out


def _stage_conflicts(pipeline: Pipeline, policies: tuple[Policy, ...]) -> Iterator[Problem]:
    for policy in policies[1:]:
        if policy.stages != policies[0].stages:
            yield _problem(policy.doc["spec"].value_mark("stages"), "spec.stages",
                           f"pipeline '{pipeline.name}' is also governed by '{policies[0].name}' "
                           f"with stages {list(policies[0].stages)}; these differ",
                           "policies that select the same pipeline must list the same stages")


def _prerequisites(pipeline: Pipeline, gates: MDict,
                   policies: tuple[Policy, ...]) -> Iterator[Problem]:
    """A required gate the pipeline gives no means to evaluate counts as omitted."""
    spec, task = pipeline.spec, pipeline.task
    data = spec["data"]

    def owner(gate: str, metric: str | None = None) -> str:
        policy = next((p for p in policies if gate in p.gates
                       and (metric is None or metric in gate_metrics(p.gates, gate))), None)
        return f"policy '{policy.name}'" if policy else "this pipeline"

    yield from _task_mismatches(spec, task, gates, owner)
    compared = gates.get("compare")
    if task == "optimize":
        if isinstance(compared, dict) and "metric" in compared:
            yield _problem(spec.value_mark("task"), "spec.task", f"{owner('compare')} compares on "
                           f"{compared['metric']}, but a decision model is compared on its objective",
                           "leave gates.compare.metric out for decision pipelines (a separate policy)")
        return
    if isinstance(compared, dict) and "metric" not in compared:
        yield _problem(spec.value_mark("task"), "spec.task", f"{owner('compare')} requires a compare gate "
                       "without a metric", "add gates.compare.metric (the metric the champion is compared on)")
    if "fairness" in gates:
        if task != "classification":
            yield _problem(spec.value_mark("task"), "spec.task", f"{owner('fairness')} requires a "
                           f"fairness gate, which needs a classification task, not {task}",
                           "exclude this pipeline from the policy's selector")
        elif not data.get("sensitive"):
            yield _problem(data.mark, "spec.data.sensitive",
                           f"{owner('fairness')} requires a fairness gate, but no sensitive "
                           "features are declared", "list them under spec.data.sensitive")
        elif gates["fairness"].get("intersectional") and len(data["sensitive"]) < 2:
            yield _problem(data.value_mark("sensitive"), "spec.data.sensitive",
                           f"{owner('fairness')} requires an intersectional fairness gate, which "
                           "needs at least two sensitive features",
                           "list another sensitive feature")
    if "drift" in gates and not (spec.get("drift") or {}).get("reference"):
        yield _problem(spec.mark, "spec.drift.reference", f"{owner('drift')} requires a drift "
                       "gate, but the pipeline names no drift reference",
                       "add spec.drift.reference: train")
    listed = {str(m) for m in spec["metrics"]}
    for gate in ("performance", "compare"):
        for metric in sorted(gate_metrics(gates, gate)):
            if metric not in TASK_METRICS[task]:
                yield _problem(spec.value_mark("task"), "spec.task", f"{owner(gate, metric)} "
                               f"gates on {metric}, which a {task} model does not have",
                               f"{task} metrics: {', '.join(sorted(TASK_METRICS[task]))}")
            elif metric not in listed:
                yield _problem(spec.value_mark("metrics"), "spec.metrics", f"{owner(gate, metric)} "
                               f"gates on {metric}, which the pipeline does not compute",
                               f"add {metric} to spec.metrics")


def _task_mismatches(spec: MDict, task: str, gates: MDict, owner: Any) -> Iterator[Problem]:
    """A decision gate on an ML pipeline, or an ML gate on a decision pipeline."""
    for gate in gates:
        if gate not in BOTH_KINDS and (gate in DECISION_GATES) != (task == "optimize"):
            needs = "a decision pipeline (task: optimize)" if gate in DECISION_GATES else "an ML pipeline"
            yield _problem(spec.value_mark("task"), "spec.task",
                           f"{owner(gate)} requires a {gate} gate, which needs {needs}, not task {task}",
                           "narrow the policy's selector so that it does not select this pipeline")


def gate_metrics(gates: Any, gate: str) -> set[str]:
    """The metrics a performance or compare gate reads."""
    body = gates.get(gate) or {}
    if gate == "performance":
        return {str(m) for m in body.get("metrics") or {}}
    return {str(body["metric"])} if gate == "compare" and "metric" in body else set()


def _problem(mark: Mark, path: str, message: str, hint: str = "") -> Problem:
    return Problem(mark.path, mark.line, mark.col, path, message, hint)
