"""Apply policies to pipelines: the required gates, never weakened, with what they need.

A policy is a floor. A pipeline it selects may make a gate stricter, never weaker: which way
is stricter for each threshold is written in the schema (`x-stricter`), so a new threshold
cannot be added without saying it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelops_ci.errors import Problem
from modelops_ci.spec import schema
from modelops_ci.spec.model import Document, Pipeline, Policy
from modelops_ci.spec.nodes import MDict, Mark, clone, locate

CLASSIFICATION_METRICS = {"roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier"}
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


def read_policy(doc: Document) -> tuple[Policy, list[Problem]]:
    """The policy in `doc` (already schema-checked) and its own consistency problems."""
    spec = doc.data["spec"]
    stages = tuple(str(s) for s in spec["stages"])
    problems = []
    promotion = spec.get("promotion") or MDict(spec.mark)
    for stage in promotion:
        if stage not in stages:
            problems.append(_problem(promotion.key_mark(stage), f"spec.promotion.{stage}",
                                     f"'{stage}' is not one of the policy's stages",
                                     schema.suggest(stage, list(stages))))
    compare = (spec.get("gates") or {}).get("compare") or {}
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
    for policy in selecting:
        problems.extend(_weakened(pipeline, policy))
        gates = _strictest(gates, policy.gates)
    problems.extend(_stage_conflicts(pipeline, selecting))
    problems.extend(_prerequisites(pipeline, gates, selecting))
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
        for key, floor_value in floor.items():
            value = node.get(key) if isinstance(node, dict) else None
            sub_rule = _child(root, rule, key)
            if value is None and sub_rule.get("x-stricter") is False:
                value = False  # an unset advisory flag means blocking
            if value is not None:
                yield from _leaves(value, floor_value, root, sub_rule, [*path, key])
        return
    if "x-stricter" in rule:
        yield path, node, floor, rule["x-stricter"]


def _is_weaker(value: Any, floor: Any, direction: Any) -> bool:
    if direction == "higher":
        return bool(value < floor)
    if direction == "lower":
        return bool(value > floor)
    if direction == "equal":
        return bool(value != floor)
    return bool(value != floor and floor == direction)


def _weakened(pipeline: Pipeline, policy: Policy) -> Iterator[Problem]:
    root = schema.bundle("Policy", "resolved")
    rule = _gates_schema()
    own = pipeline.gates
    for gate, floor in policy.gates.items():
        if gate not in own:
            continue
        for path, value, required, direction in _leaves(own[gate], floor, root, _child(root, rule, gate), [gate]):
            if _is_weaker(value, required, direction):
                where = locate(pipeline.spec, ["gates", *path])
                floor_at = locate(policy.gates, path)
                yield _problem(where, "spec.gates." + ".".join(path),
                               f"weakens policy '{policy.name}' ({policy.source}:{floor_at.line}): "
                               f"{value!r} where the policy requires {_requirement(required, direction)}",
                               "meet the policy, or change the policy by a reviewed PR")


def _requirement(value: Any, direction: Any) -> str:
    return {"higher": f"at least {value!r}", "lower": f"at most {value!r}"}.get(
        str(direction), repr(value))


def _strictest(gates: MDict, floor: MDict) -> MDict:
    """`gates` with every threshold of `floor` it lacks or sets more loosely."""
    root = schema.bundle("Policy", "resolved")
    return _stricter_node(gates, floor, root, _gates_schema())


def _stricter_node(node: Any, floor: Any, root: dict[str, Any], rule: dict[str, Any]) -> Any:
    if not isinstance(floor, dict):
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
    return out


def _stage_conflicts(pipeline: Pipeline, policies: tuple[Policy, ...]) -> Iterator[Problem]:
    for policy in policies[1:]:
        if policy.stages != policies[0].stages:
            yield _problem(policy.doc["spec"].value_mark("stages"), "spec.stages",
                           f"pipeline '{pipeline.name}' is also governed by '{policies[0].name}' "
                           f"with stages {list(policies[0].stages)}; these differ",
                           "policies that select the same pipeline must list the same stages")


def _prerequisites(pipeline: Pipeline, gates: MDict, policies: tuple[Policy, ...]) -> Iterator[Problem]:
    """A required gate the pipeline gives no means to evaluate counts as omitted."""
    spec, task = pipeline.spec, pipeline.task
    by = {gate: next((p for p in policies if gate in p.gates), None) for gate in gates}

    def owner(gate: str) -> str:
        policy = by.get(gate)
        return f"policy '{policy.name}'" if policy else "this pipeline"

    if "fairness" in gates:
        if task != "classification":
            yield _problem(spec.value_mark("task"), "spec.task", f"{owner('fairness')} requires a "
                           f"fairness gate, which needs a classification task, not {task}",
                           "exclude this pipeline from the policy's selector")
        elif not spec["data"].get("sensitive"):
            yield _problem(spec["data"].mark, "spec.data.sensitive",
                           f"{owner('fairness')} requires a fairness gate, but no sensitive features "
                           "are declared", "list them under spec.data.sensitive")
    if "drift" in gates and not (spec.get("drift") or {}).get("reference"):
        yield _problem(spec.mark, "spec.drift.reference", f"{owner('drift')} requires a drift gate, "
                       "but the pipeline names no drift reference", "add spec.drift.reference: train")
    wanted = {str(m) for m in (gates.get("performance") or {}).get("metrics", {})}
    if "compare" in gates:
        wanted.add(str(gates["compare"]["metric"]))
    listed = {str(m) for m in spec["metrics"]}
    for metric in sorted(wanted):
        gate = "compare" if metric not in (gates.get("performance") or {}).get("metrics", {}) else "performance"
        if metric not in TASK_METRICS[task]:
            yield _problem(spec.value_mark("task"), "spec.task", f"{owner(gate)} gates on {metric}, "
                           f"which a {task} model does not have",
                           f"{task} metrics: {', '.join(sorted(TASK_METRICS[task]))}")
        elif metric not in listed:
            yield _problem(spec.value_mark("metrics"), "spec.metrics", f"{owner(gate)} gates on "
                           f"{metric}, which the pipeline does not compute", f"add {metric} to spec.metrics")


def _problem(mark: Mark, path: str, message: str, hint: str = "") -> Problem:
    return Problem(mark.path, mark.line, mark.col, path, message, hint)
