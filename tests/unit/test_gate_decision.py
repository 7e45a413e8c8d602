"""The decision gates (task: optimize): feasibility, violations, optimality and solve time, each
judging the scenarios.json the evaluate step writes. Every test writes that file (with made-up
timings: nothing here depends on how fast this machine solves) and runs the gate as its stage does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.gates import GATES, verdict
from modelops_ci.gates.decision.scenarios import SUMMARY
from modelops_ci.gates.result import GateResult
from modelops_ci.spec import schema
from modelops_ci.spec.load import parse
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.gate import evaluate, gates_report
from modelops_ci.transform.policies import weakenings
from tests.helpers.specs import SHOWN, policy_yaml

PIPELINE = "plan"
RESULTS = "reports/plan/scenarios.json"
SOLVER = "highs 1.15.1"
DECISION_GATES = ("feasibility", "violations", "optimality", "solve_time")
RERUN = "re-run the pipeline's evaluate stage (`modelops-ci run`)"
MALFORMED = f"{RESULTS}: not the evaluate step's scenario results"
OPTIMAL_EXPECTED = "where an optimal solution is expected"


def solved(name: str, status: str = "optimal", **fields: Any) -> dict[str, Any]:
    """A scenario with a solution, as optimize/evaluate.py writes it."""
    row = {"scenario": name, "expected": "optimal", "status": status, "said": status.title(),
           "objective": 1234.5, "bound": 1234.4, "gap": 0.00008, "seconds": 0.012,
           "violation": 0.0, "worst_row": None, "solver": SOLVER, "error": None}
    return {**row, **fields}


def unsolved(name: str, status: str, **fields: Any) -> dict[str, Any]:
    nothing = {"objective": None, "bound": None, "gap": None, "violation": None}
    return solved(name, status, **{**nothing, **fields})


def write(root: Path, scenarios: list[dict[str, Any]], mip_gap: float = 1e-4) -> None:
    data = {"solver": SOLVER, "time_limit": 10.0, "mip_gap": mip_gap, "scenarios": scenarios}
    write_text(root, json.dumps(data))


def write_text(root: Path, text: str) -> None:
    path = root / RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def run(root: Path, kind: str, **settings: Any) -> GateResult:
    """Gate `kind` as its stage runs it, handed only the params its GATES entry declares."""
    params = {"task": "optimize", "split": {"seed": 0}, "gates": {kind: settings}}
    result = evaluate(StepContext(root, PIPELINE, params), kind)
    report = gates_report(PIPELINE, [result.to_json()], {})
    verdict.validate(report, RESULTS)  # every result makes a gates.json the schema accepts
    return result


def failing(result: GateResult) -> dict[str, str]:
    return {check.name: check.status for check in result.checks if check.name != SUMMARY}


# -- feasibility ---------------------------------------------------------------------------------


def test_feasibility_passes_optimal_scenarios_and_one_that_stays_infeasible(tmp_path: Path) -> None:
    write(tmp_path, [solved("2010 Q1"), solved("2010 Q2"),
                     unsolved("no capacity", "infeasible", expected="infeasible")])

    result = run(tmp_path, "feasibility")

    assert result.status == "pass" and not result.blocks
    assert result.reason == ("all 3 scenarios ended as expected: 2 optimal, "
                             "1 infeasible as expected")
    assert [check.name for check in result.checks] == [SUMMARY]


def test_feasibility_fails_naming_each_scenario_not_optimal_and_its_status(tmp_path: Path) -> None:
    write(tmp_path, [solved("2010 Q1"), unsolved("2010 Q2", "infeasible"),
                     unsolved("2010 Q3", "unbounded"),
                     unsolved("2010 Q4", "other", said="Solution limit reached")])

    result = run(tmp_path, "feasibility")

    assert result.status == "fail" and result.blocks
    assert failing(result) == {"2010 Q2": "fail", "2010 Q3": "fail", "2010 Q4": "fail"}
    assert result.reason == (
        "3 of 4 scenarios did not end as expected: "
        f"2010 Q2 is infeasible, {OPTIMAL_EXPECTED}; 2010 Q3 is unbounded, {OPTIMAL_EXPECTED}; "
        f"2010 Q4 was not solved (the solver said 'Solution limit reached'), {OPTIMAL_EXPECTED}")
    assert result.checks[-1].name == SUMMARY and result.checks[-1].status == "fail"


def test_feasibility_names_the_first_few_and_counts_the_rest(tmp_path: Path) -> None:
    write(tmp_path, [unsolved(f"week {i}", "infeasible") for i in range(1, 6)])

    result = run(tmp_path, "feasibility")

    assert result.reason.startswith("5 of 5 scenarios did not end as expected: week 1 is ")
    assert "week 3" in result.reason and "week 4" not in result.reason
    assert result.reason.endswith("; and 2 more")
    assert len(failing(result)) == 5


def test_a_scenario_that_could_not_be_built_is_an_error_with_its_reason(tmp_path: Path) -> None:
    write(tmp_path, [solved("2010 Q1"), unsolved("2010 Q2", "infeasible"),
                     unsolved("2010 Q3", "error", error="demand.parquet has no column 'region'")])

    result = run(tmp_path, "feasibility")

    assert result.status == "error" and result.blocks
    assert failing(result) == {"2010 Q2": "fail", "2010 Q3": "error"}
    reason = "2010 Q3 could not be built or solved: demand.parquet has no column 'region'"
    assert reason in result.reason


def test_an_advisory_feasibility_gate_reports_the_error_without_blocking(tmp_path: Path) -> None:
    write(tmp_path, [unsolved("2010 Q1", "error", error="bad data")])

    result = run(tmp_path, "feasibility", advisory=True)

    assert (result.status, result.advisory, result.blocks) == ("error", True, False)


def test_a_solution_where_none_may_exist_means_a_lost_constraint(tmp_path: Path) -> None:
    write(tmp_path, [solved("no capacity", expected="infeasible", objective=17.0)])

    result = run(tmp_path, "feasibility")

    assert result.status == "fail"
    assert result.reason == ("1 of 1 scenarios did not end as expected: no capacity has a solution "
                             "(objective 17) where it must be infeasible: the model lost a constraint")


@pytest.mark.parametrize("status", ["infeasible_or_unbounded", "time_limit", "unbounded"])
def test_an_expected_infeasible_scenario_must_be_proven_so(tmp_path: Path, status: str) -> None:
    write(tmp_path, [unsolved("no capacity", status, expected="infeasible")])

    result = run(tmp_path, "feasibility")

    assert result.status == "fail" and "where it must be proven infeasible" in result.reason


@pytest.mark.parametrize(("gap", "status"), [(0.0005, "pass"), (0.001, "pass"), (0.002, "fail")])
def test_a_solution_at_the_time_limit_is_feasible_within_the_files_gap(tmp_path: Path, gap: float,
                                                                       status: str) -> None:
    write(tmp_path, [solved("2010 Q1"), solved("big week", "time_limit", gap=gap)], mip_gap=0.001)

    result = run(tmp_path, "feasibility")

    assert result.status == status
    assert result.details["max_gap"] == 0.001
    if status == "pass":
        assert result.reason == ("all 2 scenarios ended as expected: 1 optimal, "
                                 "1 feasible within the gap at the time limit")
    else:
        above = "big week stopped at the time limit with a gap of 0.002, above 0.001"
        assert above in result.reason


def test_the_gates_max_gap_replaces_the_files(tmp_path: Path) -> None:
    write(tmp_path, [solved("big week", "time_limit", gap=0.004)], mip_gap=1e-4)

    assert run(tmp_path, "feasibility").status == "fail"
    assert run(tmp_path, "feasibility", max_gap=0.01).status == "pass"
    assert run(tmp_path, "feasibility", max_gap=0.001).status == "fail"


@pytest.mark.parametrize(("row", "words"), [
    (unsolved("big week", "time_limit"), "big week stopped at the time limit with no solution"),
    (solved("big week", "time_limit", gap=None), "big week stopped at the time limit with no bound"),
])
def test_the_time_limit_without_a_solution_or_a_gap_fails(tmp_path: Path, row: dict[str, Any],
                                                          words: str) -> None:
    write(tmp_path, [row])

    result = run(tmp_path, "feasibility", max_gap=1.0)

    assert result.status == "fail" and words in result.reason


# -- violations -----------------------------------------------------------------------------------


def test_violations_within_the_default_tolerance_pass_with_the_largest(tmp_path: Path) -> None:
    write(tmp_path, [solved("2010 Q1", violation=2e-10), solved("2010 Q2", violation=4e-7),
                     unsolved("no capacity", "infeasible", expected="infeasible")])

    result = run(tmp_path, "violations")

    assert result.status == "pass" and result.n == 2  # the one without a solution is not judged
    summary = result.checks[-1]
    assert (summary.statistic, summary.threshold) == (4e-7, {"max": 1e-6})
    assert summary.details["scenario"] == "2010 Q2"
    assert result.reason == ("the largest recomputed violation over 2 solutions is 4e-07 (2010 Q2), "
                             "at most 1e-06")


def test_violations_fail_naming_the_scenario_and_its_worst_row(tmp_path: Path) -> None:
    write(tmp_path, [solved("2010 Q1"), solved("2010 Q2", violation=0.003, worst_row="demand[north]"),
                     solved("2010 Q3", violation=0.5)])

    result = run(tmp_path, "violations")

    assert result.status == "fail"
    assert failing(result) == {"2010 Q2": "fail", "2010 Q3": "fail"}
    assert result.reason == (
        "2 of 3 solutions violate their constraints by more than 1e-06: "
        "2010 Q2 violates its constraints by 0.003 (worst row: demand[north]); "
        "2010 Q3 violates its constraints by 0.5 "
        "(in a variable's bounds or integrality: no row is violated)")
    assert result.checks[-1].statistic == 0.5


def test_the_violation_tolerance_comes_from_the_policy(tmp_path: Path) -> None:
    write(tmp_path, [solved("2010 Q1", violation=5e-6, worst_row="row 7")])

    assert run(tmp_path, "violations").status == "fail"
    assert run(tmp_path, "violations", max=1e-5).status == "pass"


def test_violations_without_any_solution_cannot_be_evaluated(tmp_path: Path) -> None:
    write(tmp_path, [unsolved("2010 Q1", "infeasible"),
                     unsolved("2010 Q2", "error", error="bad data")])

    result = run(tmp_path, "violations")

    assert result.status == "error" and result.blocks
    assert result.reason == (f"no scenario in {RESULTS} has a solution whose violations could be "
                             "checked (1 infeasible, 1 error): see the feasibility gate")


# -- optimality -----------------------------------------------------------------------------------


def test_optimality_passes_every_solution_within_the_default_gap(tmp_path: Path) -> None:
    write(tmp_path, [solved("lp week", gap=0.0), solved("2010 Q2", gap=0.00008),
                     unsolved("2010 Q3", "infeasible")])

    result = run(tmp_path, "optimality")

    assert result.status == "pass" and result.n == 2
    assert result.reason == "the largest gap over 2 solutions is 8e-05 (2010 Q2), at most 0.0001"
    assert result.checks[-1].statistic == 0.00008


def test_optimality_fails_a_gap_too_wide_also_at_the_time_limit(tmp_path: Path) -> None:
    write(tmp_path, [solved("2010 Q1"), solved("big week", "time_limit", gap=0.02)])

    result = run(tmp_path, "optimality")

    assert result.status == "fail" and failing(result) == {"big week": "fail"}
    assert result.reason == ("1 of 2 solutions are not proven within the gap 0.0001: "
                             "big week has a gap of 0.02, above 0.0001")
    assert run(tmp_path, "optimality", max_gap=0.05).status == "pass"


def test_a_solution_without_a_gap_is_an_error_for_that_scenario(tmp_path: Path) -> None:
    write(tmp_path, [solved("2010 Q1"), solved("2010 Q2", "other", gap=None)])

    result = run(tmp_path, "optimality")

    assert result.status == "error" and failing(result) == {"2010 Q2": "error"}
    assert "2010 Q2 has no gap: the solver reported no bound" in result.reason


def test_optimality_without_any_solution_cannot_be_evaluated(tmp_path: Path) -> None:
    write(tmp_path, [unsolved("2010 Q1", "time_limit")])

    result = run(tmp_path, "optimality")

    assert result.status == "error" and "has a solution whose gap could be judged" in result.reason


# -- solve time -----------------------------------------------------------------------------------


def timed(seconds: list[float]) -> list[dict[str, Any]]:
    return [solved(f"day {i}", seconds=value) for i, value in enumerate(seconds, start=1)]


def test_the_p95_is_a_measured_time_never_one_interpolated_below_it(tmp_path: Path) -> None:
    write(tmp_path, timed([float(s) for s in range(1, 21)]))  # interpolated, the p95 is 19.05

    result = run(tmp_path, "solve_time", p95_seconds=19.5)

    assert result.status == "fail"
    shown = {key: result.details[key] for key in ("p50", "p95", "max", "slowest")}
    assert shown == {"p50": 11.0, "p95": 20.0, "max": 20.0, "slowest": "day 20"}
    assert result.reason == ("the 95th percentile of 20 solve times is 20 s, above the budget of "
                             "19.5 s (median 11 s, slowest day 20 at 20 s)")
    assert run(tmp_path, "solve_time", p95_seconds=20).status == "pass"


def test_solve_time_passes_within_the_budget(tmp_path: Path) -> None:
    write(tmp_path, timed([0.01, 0.02, 0.5]))

    result = run(tmp_path, "solve_time", p95_seconds=1)

    assert result.status == "pass" and result.checks[0].statistic == 0.5 and result.n == 3


def test_scenarios_that_could_not_be_built_have_no_solve_time(tmp_path: Path) -> None:
    broken = [unsolved(f"broken {i}", "error", seconds=0.0, error="bad data") for i in range(5)]
    write(tmp_path, [*timed([3.0]), *broken])

    result = run(tmp_path, "solve_time", p95_seconds=2)

    assert result.status == "fail" and result.n == 1 and result.details["p95"] == 3.0


def test_solve_time_without_a_budget_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, timed([0.1]))

    result = run(tmp_path, "solve_time")

    assert result.status == "error" and "set gates.solve_time.p95_seconds" in result.reason


# -- the results file -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DECISION_GATES)
def test_each_gate_reads_the_results_its_stage_depends_on(tmp_path: Path, kind: str) -> None:
    reads = GATES[kind].reads
    assert (reads.params, reads.outputs) == ((f"gates.{kind}",), ("results",))

    result = run(tmp_path, kind, p95_seconds=1)

    assert result.status == "error" and result.gate == kind
    assert result.reason == f"{RESULTS}: no scenario results: run the pipeline first (`modelops-ci run`)"


def results(*rows: dict[str, Any], mip_gap: float | None = 1e-4) -> str:
    data: dict[str, Any] = {"scenarios": list(rows)}
    if mip_gap is not None:
        data["mip_gap"] = mip_gap
    return json.dumps(data)


@pytest.mark.parametrize(("text", "reason"), [
    ('{"mip_gap": 0.0001, "scenarios": [', f"{RESULTS}:1:35: not JSON (Expecting value)"),
    (results(), f"{MALFORMED}: $.scenarios: [] should be non-empty"),
    (results(solved("a"), mip_gap=None), f"{MALFORMED}: $: 'mip_gap' is a required property"),
    (results(solved("a", "solved")), f"{MALFORMED}: $.scenarios[0].status: 'solved' is not one of"),
    (results(solved("a", gap=float("nan"))), f"{MALFORMED}: NaN is not a number a gate can judge"),
    (results(solved("a", violation=None)),
     f"{MALFORMED}: scenario 'a' has an objective or a recomputed violation, not both"),
    (results(unsolved("a", "optimal")), f"{MALFORMED}: scenario 'a' is optimal but has no solution"),
])
@pytest.mark.parametrize("kind", DECISION_GATES)
def test_a_malformed_results_file_is_an_error_naming_it(tmp_path: Path, kind: str, text: str,
                                                        reason: str) -> None:
    write_text(tmp_path, text)

    result = run(tmp_path, kind, p95_seconds=1)

    assert result.status == "error" and result.blocks
    assert result.reason.startswith(reason) and result.reason.endswith(RERUN)


def test_fields_the_gates_do_not_read_may_be_added_or_left_out(tmp_path: Path) -> None:
    # no `expected` (optimal by default), `error`, `worst_row` or `said`; an `iterations` more
    row = {"scenario": "a", "status": "optimal", "objective": 1.0, "gap": 0.0, "seconds": 0.1,
           "violation": 0.0, "iterations": 12}
    write_text(tmp_path, json.dumps({"mip_gap": 1e-4, "scenarios": [row], "threads": 1}))

    assert [run(tmp_path, kind, p95_seconds=1).status for kind in DECISION_GATES] == ["pass"] * 4


# -- the policy's settings --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "setting", "floor", "weaker", "stricter"), [
    ("feasibility", "max_gap", 1e-4, 1e-2, 1e-6),
    ("violations", "max", 1e-6, 1e-3, 1e-9),
    ("optimality", "max_gap", 1e-4, 1e-2, 0.0),
    ("solve_time", "p95_seconds", 10, 60, 5),
])
def test_a_pipeline_may_tighten_a_decision_gate_never_loosen_it(
        kind: str, setting: str, floor: float, weaker: float, stricter: float) -> None:
    policy = {kind: {setting: floor}}

    [found] = weakenings({kind: {setting: weaker}}, policy)

    assert found.path == (kind, setting)
    assert list(weakenings({kind: {setting: stricter}}, policy)) == []
    advisory = weakenings({kind: {setting: floor, "advisory": True}}, policy)
    assert [w.path for w in advisory] == [(kind, "advisory")]


def test_the_policy_schema_knows_the_decision_gates_and_their_settings() -> None:
    gates = """\
        feasibility: {max_gap: 0.001}
        violations: {max: 1.0e-6, advisory: true}
        optimality: {max_gap: 0.0001}
        solve_time: {p95_seconds: 30}
        """
    valid = policy_yaml("decisions", "labels: {domain: planning}\n", gates)
    assert schema.check(parse(valid, SHOWN), "Policy", SHOWN) == []

    wrong = valid.replace("max: 1.0e-6", "tolerance: 1.0e-6").replace("p95_seconds: 30", "p95: 30")
    problems = " ".join(str(p) for p in schema.check(parse(wrong, SHOWN), "Policy", SHOWN))
    assert "spec.gates.violations" in problems and "tolerance" in problems
    assert "spec.gates.solve_time" in problems and "p95_seconds" in problems
