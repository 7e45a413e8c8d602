"""A decision pipeline's parts below its steps: the stored problems, the formulation's scenarios and
their errors, the solvers' registry, the evaluate step's judgement and summary."""

from __future__ import annotations

from pathlib import Path

import highspy
import numpy as np
import pandas as pd
import pytest

from modelops_ci.errors import MissingDependencyError, UserError
from modelops_ci.optimize import formulation, solvers, store
from modelops_ci.optimize.formulation import Scenario, ScenarioDataError
from modelops_ci.optimize.problem import Problem, from_highs
from modelops_ci.optimize.solve import Options, solve
from modelops_ci.steps.decision import build, evaluate
from modelops_ci.steps.reads import values_under
from tests.unit.test_optimize import brute_force, facility_location


def knapsack(scenario: Scenario) -> highspy.Highs:
    """Pick items (value, weight from the scenario's rows) within params.capacity: a small MIP."""
    formulation.require_positive(scenario.rows, ["weight"])
    model = highspy.Highs()
    model.silent()
    picked = [model.addBinary(name=f"take[{item}]") for item in scenario.rows["item"]]
    model.addConstr(sum(w * x for w, x in zip(scenario.rows["weight"], picked, strict=True))
                    <= scenario.params["capacity"], name="capacity")
    model.maximize(sum(v * x for v, x in zip(scenario.rows["value"], picked, strict=True)))
    return model


def _scenario(weights: list[float], capacity: float = 10.0) -> Scenario:
    rows = pd.DataFrame({"item": [f"i{k}" for k in range(len(weights))], "weight": weights,
                         "value": [3.0, 4.0, 5.0, 6.0][: len(weights)]})
    return Scenario("s", rows, {}, {"capacity": capacity})


def test_problems_round_trip_through_the_store_without_pickle_and_keep_errors(tmp_path: Path) -> None:
    problem = facility_location()
    path = tmp_path / "problems.npz"
    store.save(path, [store.Built("week 1", problem), store.Built("broken", None, "demand is -3 in row 2")])
    first, second = store.load(path)
    assert (first.scenario, first.error, second.scenario, second.problem, second.error) == (
        "week 1", None, "broken", None, "demand is -3 in row 2")
    assert first.problem is not None
    assert np.allclose(first.problem.matrix.toarray(), problem.matrix.toarray())
    assert np.array_equal(first.problem.integer, problem.integer)
    assert first.problem.col_names == problem.col_names and first.problem.maximise is problem.maximise
    assert solve(first.problem).objective == pytest.approx(brute_force())
    with np.load(path, allow_pickle=False) as stored:  # would raise on an object array
        assert all(stored[key].dtype != object for key in stored.files)
    path.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a problems file"):
        store.load(path)


def test_a_formulation_may_return_a_highs_model_its_lp_or_a_problem_and_nothing_else() -> None:
    scenario = _scenario([5.0, 4.0, 6.0, 3.0])
    from_model = formulation.from_plugin(knapsack, scenario)
    from_lp = formulation.from_plugin(lambda s: knapsack(s).getLp(), scenario)
    assert formulation.from_plugin(lambda s: from_model, scenario) is from_model
    assert np.allclose(from_lp.matrix.toarray(), from_model.matrix.toarray())
    assert solve(from_model).objective == pytest.approx(11.0)  # items 2 and 3: weight 9, value 5 + 6
    with pytest.raises(ScenarioDataError, match=r"returned dict, not a highspy\.Highs"):
        formulation.from_plugin(lambda s: {}, scenario)


def test_require_positive_names_the_first_bad_value() -> None:
    with pytest.raises(ScenarioDataError, match="weight is -2 in row 2: it must be positive"):
        formulation.require_positive(pd.DataFrame({"weight": [1.0, -2.0, 0.0]}), ["weight"])
    with pytest.raises(ScenarioDataError, match="weight is missing in row 1"):
        formulation.require_positive(pd.DataFrame({"weight": [None, 2.0]}), ["weight"])
    with pytest.raises(ScenarioDataError, match="no column 'demand'"):
        formulation.require_positive(pd.DataFrame({"weight": [1.0]}), ["demand"])


def test_a_scenario_that_cannot_be_built_keeps_a_plain_reason_and_does_not_stop_the_others() -> None:
    def explodes(scenario: Scenario) -> Problem:
        raise KeyError("capacity")

    good = build.build_one(lambda s: formulation.from_plugin(knapsack, s), _scenario([5.0, 4.0]))
    negative = build.build_one(lambda s: formulation.from_plugin(knapsack, s), _scenario([5.0, -4.0]))
    raising = build.build_one(lambda s: formulation.from_plugin(explodes, s), _scenario([5.0]))
    assert good.problem is not None and good.error is None
    assert negative.problem is None and negative.error == "weight is -4 in row 2: it must be positive"
    assert raising.error == "the formulation raised KeyError: 'capacity'"


def test_a_model_files_bounds_are_set_by_name_per_scenario() -> None:
    model = highspy.Highs()
    model.silent()
    x = model.addVariable(lb=0, ub=10, name="x")
    model.addConstr(x >= 2, name="floor")
    model.minimize(x)
    base = from_highs(model.getLp(), "plan")
    tighter = formulation.with_bounds(base, pd.DataFrame({"row": ["floor"], "lower": [5.0], "upper": [np.nan]}))
    assert solve(base).objective == pytest.approx(2.0) and solve(tighter).objective == pytest.approx(5.0)
    assert base.row_lower[0] == 2.0  # the file's problem is not changed
    capped = formulation.with_bounds(base, pd.DataFrame({"column": ["x"], "lower": [np.nan], "upper": [1.0]}))
    assert solve(capped).status == "infeasible"
    with pytest.raises(ScenarioDataError, match="no row 'ceiling'"):
        formulation.with_bounds(base, pd.DataFrame({"row": ["ceiling"], "lower": [1.0], "upper": [2.0]}))


def test_a_solver_that_is_not_installed_names_the_package_to_install() -> None:
    assert solvers.version("highs").startswith("highs ")
    with pytest.raises(MissingDependencyError, match="pip install modelops-no-such-solver"):
        solvers.installed(solvers.Solver("modelops_ci.optimize.solve", "modelops-no-such-solver"), "nosuch")


def test_evaluate_judges_each_scenario_on_its_own_and_summarises_them() -> None:
    problem = facility_location()
    solution = solve(problem)
    solved = {"scenario": "a", **solution.to_json()}
    judged = evaluate.judge(store.Built("a", problem), solved, solution.x, "highs", "optimal")
    not_built = evaluate.judge(store.Built("b", None, "demand is missing in row 1"), {}, None, "highs", "optimal")
    not_solved = evaluate.judge(store.Built("c", problem), {"scenario": "c", "error": "the solver failed: boom"}, None,
                                "highs", "infeasible")
    assert judged.status == "optimal" and judged.objective == pytest.approx(brute_force())
    assert (not_built.status, not_built.error) == ("error", "demand is missing in row 1")
    assert (not_solved.status, not_solved.error, not_solved.expected) == ("error", "the solver failed: boom",
                                                                          "infeasible")
    summary = evaluate.summary([judged, not_built, not_solved])
    assert summary["scenarios"] == 3 and summary["optimal"] == 1 and summary["errors"] == 2
    assert summary["objective_mean"] == pytest.approx(brute_force())
    assert summary["seconds_p95"] == pytest.approx(judged.seconds, rel=1e-5)


def test_solve_options_come_from_the_spec_with_defaults() -> None:
    from modelops_ci.steps.decision.solve import options_of

    assert options_of({"options": {"time_limit": 3, "seed": 7}}) == Options(time_limit=3, seed=7)
    assert options_of({}) == Options()


def test_a_star_in_a_params_key_reaches_every_value_of_a_mapping() -> None:
    params = {"data": {"inputs": {"km": {"path": "a.csv"}, "cities": {"rdataset": "x/y"}, "more": {"path": "b.csv"}}}}
    assert sorted(values_under(params, "data.inputs.*.path")) == ["a.csv", "b.csv"]


def test_scenarios_sharing_their_names_store_them_once(tmp_path: Path) -> None:
    from dataclasses import replace

    problem = facility_location()
    named = replace(problem, col_names=tuple(f"x{j}" for j in range(problem.shape[1])))
    path = tmp_path / "problems.npz"
    store.save(path, [store.Built("a", named), store.Built("b", named), store.Built("c", problem)])
    with np.load(path, allow_pickle=False) as stored:
        assert {key for key in stored.files if key.endswith("col_names")} == {"0.col_names", "2.col_names"}
    loaded = store.load(path)
    assert [b.problem.col_names for b in loaded if b.problem] == [named.col_names, named.col_names,
                                                                   problem.col_names]


def test_a_solver_stopped_by_its_time_limit_says_so_and_offers_no_unproven_answer() -> None:
    """A time limit below any solve's start-up (1 ns) stops every run before a solution: no timing race."""
    from scipy import sparse

    rng = np.random.default_rng(0)
    weight = rng.integers(10, 100, 200).astype(float)
    value = weight + rng.integers(0, 10, 200)
    problem = Problem("knapsack", True, value, 0.0, sparse.csr_matrix(weight.reshape(1, -1)), np.array([-np.inf]),
                      np.array([weight.sum() / 2]), np.zeros(200), np.ones(200), np.ones(200, dtype=bool))
    stopped = solve(problem, Options(time_limit=1e-9))
    assert (stopped.status, stopped.said, stopped.x, stopped.gap) == ("time_limit", "Time limit reached", None, None)
    judged = evaluate.judge(store.Built("k", problem), {"scenario": "k", **stopped.to_json()}, None, "highs", "optimal")
    assert (judged.status, judged.objective, judged.violation) == ("time_limit", None, None)
