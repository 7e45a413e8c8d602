"""evaluate (task: optimize): each scenario judged apart from the solver's word: its objective and its
violations recomputed from the built problem and the decision (optimize/check.py), beside the status,
bound, gap and time the solver reported; the scenarios the spec expects infeasible marked so. The
decision gates read the results; metrics.json holds the summary the registry's evidence cites."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from modelops_ci.optimize import store
from modelops_ci.optimize.evaluate import Expected, ScenarioResult, evaluate, failed
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.decision.solve import options_of, solution_of
from modelops_ci.steps.frames import read_parquet


def run(ctx: StepContext) -> dict[str, Any]:
    built = store.load(ctx.path(ctx.layout.problems))
    said = json.loads(ctx.path(ctx.layout.solved).read_text(encoding="utf-8"))
    decisions = read_parquet(ctx.path(ctx.layout.solutions))
    by_scenario = {str(name): group["value"].to_numpy(dtype=float) for name, group in decisions.groupby("scenario",
                                                                                                        sort=False)}
    infeasible = {str(name) for name in (ctx.params.get("expect") or {}).get("infeasible") or []}
    records = {str(r["scenario"]): r for r in said["scenarios"]}
    results = [judge(item, records.get(item.scenario, {}), by_scenario.get(item.scenario), said["solver"],
                     "infeasible" if item.scenario in infeasible else "optimal") for item in built]
    options = options_of(ctx.params["model"])  # as the solver was run: the spec's, or the defaults
    maximise = any(item.problem.maximise for item in built if item.problem is not None)
    ctx.write_json(ctx.layout.results, {"solver": said["solver"], "time_limit": options.time_limit,
                                        "mip_gap": options.mip_gap, "sense": "max" if maximise else "min",
                                        "scenarios": [r.to_json() for r in results]})
    metrics = summary(results)
    ctx.write_json(ctx.layout.metrics, metrics)
    return {key: metrics[key] for key in ("scenarios", "optimal", "errors")}


def judge(item: store.Built, record: dict[str, Any], values: Any, solver: str, expected: Expected) -> ScenarioResult:
    if item.problem is None:
        return failed(item.scenario, item.error or "not built", solver, expected)
    solution = solution_of(record, values)
    if solution is None:
        return failed(item.scenario, str(record.get("error") or "not solved"), solver, expected)
    return evaluate(item.scenario, item.problem, solution, expected)


def summary(results: list[ScenarioResult]) -> dict[str, Any]:
    solved = [r for r in results if r.objective is not None]
    seconds = np.array([r.seconds for r in results if r.status != "error"], dtype=float)
    return {
        "scenarios": len(results),
        "optimal": sum(1 for r in results if r.status == "optimal"),
        "errors": sum(1 for r in results if r.status == "error"),
        "objective_mean": _rounded(np.mean([r.objective for r in solved])) if solved else None,
        "violation_max": _rounded(max(r.violation or 0.0 for r in solved)) if solved else None,
        "seconds_p95": _rounded(np.percentile(seconds, 95, method="higher")) if seconds.size else None,
    }


def _rounded(value: Any) -> float:
    return float(f"{float(value):.6g}")
