"""reports/<pipeline>/scenarios.json as the decision gates read it: checked against its shape here,
once, so a gate judges values and never half a file; and how a gate sums up its scenarios."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, worst

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext

FEW = 3  # scenarios a reason names before "and N more"
SUMMARY = "all scenarios"  # each gate's last check, the one its reason comes from
RERUN = "re-run the pipeline's evaluate stage (`modelops-ci run`)"
STATUSES = ("optimal", "infeasible", "unbounded", "infeasible_or_unbounded", "time_limit", "other",
            "error")
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_STRING_OR_NULL = {"type": ["string", "null"]}

# Fields the gates do not read may be added by the writer (optimize/evaluate.py) without harm.
SCENARIO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["scenario", "status", "objective", "gap", "seconds", "violation"],
    "properties": {
        "scenario": {"type": "string", "minLength": 1},
        "expected": {"enum": ["optimal", "infeasible"]},
        "status": {"enum": list(STATUSES)},
        "said": _STRING_OR_NULL,
        "objective": _NUMBER_OR_NULL,
        "gap": {**_NUMBER_OR_NULL, "minimum": 0},
        "seconds": {"type": "number", "minimum": 0},
        "violation": {**_NUMBER_OR_NULL, "minimum": 0},
        "worst_row": _STRING_OR_NULL,
        "error": _STRING_OR_NULL,
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["mip_gap", "scenarios"],
    "properties": {
        "solver": _STRING_OR_NULL,
        "mip_gap": {"type": "number", "minimum": 0},
        "scenarios": {"type": "array", "minItems": 1, "items": SCENARIO_SCHEMA},
    },
}


@dataclass(frozen=True)
class Solution:
    """The solution of one scenario, as the independent checker saw it."""

    objective: float
    violation: float  # the largest recomputed constraint, bound or integrality violation
    worst_row: str | None  # the most violated row; None when no row is violated


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: str  # "optimal" or "infeasible"
    status: str  # one of STATUSES
    said: str  # the solver's own words
    solution: Solution | None
    gap: float | None  # relative MIP gap; None when the solver reported no bound
    seconds: float
    error: str | None  # why it could not be built or solved (status "error")

    @property
    def described(self) -> str:
        """What became of it, in words that follow its name."""
        if self.status == "time_limit" and self.solution is None:
            return "stopped at the time limit with no solution"
        if self.status == "other":
            return f"was not solved (the solver said '{self.said}')"
        if self.status == "error":
            return f"could not be built or solved: {self.error or 'no reason was recorded'}"
        words = {"time_limit": "stopped at the time limit",
                 "infeasible_or_unbounded": "is infeasible or unbounded"}
        return words.get(self.status, f"is {self.status}")


@dataclass(frozen=True)
class Results:
    file: str  # where they were read, relative to the repository
    solver: str | None
    mip_gap: float  # the relative gap the solver was asked for
    scenarios: tuple[Scenario, ...]

    def solved(self) -> list[tuple[Scenario, Solution]]:
        return [(s, s.solution) for s in self.scenarios if s.solution is not None]

    @property
    def statuses(self) -> str:
        counts = Counter(scenario.status for scenario in self.scenarios)
        return ", ".join(f"{count} {status}" for status, count in counts.items())


def read(ctx: GateContext) -> Results:
    """The pipeline's scenario results; CannotEvaluate naming the file when it is missing or
    malformed."""
    relative = ctx.step.layout.results
    try:
        text = ctx.step.path(relative).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CannotEvaluate(f"{relative}: no scenario results: "
                             "run the pipeline first (`modelops-ci run`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CannotEvaluate(f"{relative}: cannot be read ({exc}): {RERUN}") from None
    return parse(text, relative)


def parse(text: str, relative: str) -> Results:
    """The results in `text`, the contents of `relative`."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        where = f"{relative}:{exc.lineno}:{exc.colno}"
        raise CannotEvaluate(f"{where}: not JSON ({exc.msg}): {RERUN}") from None
    except ValueError as exc:
        raise _malformed(relative, str(exc)) from None
    _check_shape(data, relative)
    scenarios = tuple(_scenario(row, relative) for row in data["scenarios"])
    return Results(relative, data.get("solver"), float(data["mip_gap"]), scenarios)


def _no_constant(name: str) -> float:
    # a NaN gap or time compares false with every threshold: it would pass or fail by accident
    raise ValueError(f"{name} is not a number a gate can judge (write null for an unknown value)")


def _check_shape(data: Any, relative: str) -> None:
    import jsonschema

    errors = jsonschema.Draft202012Validator(SCHEMA).iter_errors(data)
    problem = jsonschema.exceptions.best_match(errors)
    if problem is not None:
        raise _malformed(relative, f"{problem.json_path}: {problem.message}")


def _scenario(row: dict[str, Any], relative: str) -> Scenario:
    said = row.get("said") or row["status"]
    return Scenario(row["scenario"], row.get("expected", "optimal"), row["status"], said,
                    _solution(row, relative), row["gap"], float(row["seconds"]), row.get("error"))


def _solution(row: dict[str, Any], relative: str) -> Solution | None:
    name, objective, violation = row["scenario"], row["objective"], row["violation"]
    if (objective is None) != (violation is None):
        raise _malformed(relative, f"scenario '{name}' has an objective or a recomputed violation, "
                                   "not both (a solution has both, no solution neither)")
    if objective is None:
        if row["status"] == "optimal":
            raise _malformed(relative, f"scenario '{name}' is optimal but has no solution")
        return None
    return Solution(float(objective), float(violation), row.get("worst_row"))


def _malformed(relative: str, problem: str) -> CannotEvaluate:
    what = "not the evaluate step's scenario results"
    return CannotEvaluate(f"{relative}: {what}: {problem}: {RERUN}")


# -- a gate's result ----------------------------------------------------------------------------


def summarize(gate: str, checks: list[Check], *, failed: str, passed: str,
              **summary: Any) -> GateResult:
    """The gate over one check per scenario: those that did not pass, then a summary check with
    the worst status and the reason, either `passed` or "k of n `failed`: the first few reasons"."""
    failing = [check for check in checks if check.status != "pass"]
    status = worst([check.status for check in failing])
    reason = passed
    if failing:
        reason = f"{len(failing)} of {len(checks)} {failed}: {listing(failing)}"
    last = Check(SUMMARY, status, reason, n=len(checks), **summary)
    return GateResult(gate, status, reason, n=len(checks), checks=[*failing, last])


def listing(checks: list[Check]) -> str:
    """The first few checks' reasons, then how many more."""
    return _first_few([check.reason for check in checks], "; ")


def listing_names(names: list[str]) -> str:
    """The first few scenarios' names, then how many more."""
    return _first_few(names, ", ")


def _first_few(items: list[str], joint: str) -> str:
    shown = joint.join(items[:FEW])
    more = len(items) - FEW
    return f"{shown}{joint}and {more} more" if more > 0 else shown
