"""Solve time: the 95th percentile of the scenarios' solve times, as measured on the machine that
ran the evaluate stage, is at most `p95_seconds` (required: no default fits every model and
machine). The median and the slowest scenario are reported beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import numpy as np

from modelops_ci.gates.decision import scenarios
from modelops_ci.gates.decision.scenarios import Results
from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, Status

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext

GATE = "solve_time"
# "higher": a percentile is always one of the measured times, never one interpolated below the
# time that reaches it, so a budget is never met by a point between two solves (conservative
# with few scenarios: with 20, the p95 is the slowest).
METHOD: Final = "higher"


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    if "p95_seconds" not in settings:
        raise CannotEvaluate("no budget: set gates.solve_time.p95_seconds, the most seconds the "
                             "95th percentile of the scenarios' solve times may take")
    return assess(scenarios.read(ctx), float(settings["p95_seconds"]))


def assess(results: Results, budget: float) -> GateResult:
    # a scenario that could not be built or solved has no solve time: its zero would hide slow ones
    timed = [scenario for scenario in results.scenarios if scenario.status != "error"]
    if not timed:
        raise CannotEvaluate(f"no scenario in {results.file} was solved, so none has a solve time: "
                             "see the feasibility gate", details={"p95_seconds": budget})
    seconds = np.array([scenario.seconds for scenario in timed])
    p50, p95 = (float(value) for value in np.percentile(seconds, [50, 95], method=METHOD))
    slowest = max(timed, key=lambda scenario: scenario.seconds)
    status: Status = "pass" if p95 <= budget else "fail"
    verdict = "within" if status == "pass" else "above"
    measured = f"the 95th percentile of {len(timed)} solve times is {p95:.3g} s"
    spread = f"median {p50:.3g} s, slowest {slowest.name} at {slowest.seconds:.3g} s"
    reason = f"{measured}, {verdict} the budget of {budget:.3g} s ({spread})"
    details = {"p50": p50, "p95": p95, "max": slowest.seconds, "slowest": slowest.name,
               "method": METHOD}
    check = Check("p95_seconds", status, reason, statistic=p95, threshold={"max": budget},
                  n=len(timed), details=details)
    return GateResult(GATE, status, reason, n=len(timed), checks=[check], details=details)
