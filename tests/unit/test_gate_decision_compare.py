"""The decision compare's judgement on two sets of results (the worktree run is an integration test)."""

from __future__ import annotations

import json

import pytest

from modelops_ci.gates.decision import compare
from modelops_ci.gates.decision.scenarios import Results, parse
from modelops_ci.gates.result import CannotEvaluate


def _results(objectives: dict[str, float | None], mip_gap: float = 1e-4) -> Results:
    rows = [{"scenario": name, "expected": "optimal", "status": "optimal" if value is not None else "infeasible",
             "said": "", "objective": value, "bound": value, "gap": 0.0 if value is not None else None,
             "seconds": 0.1, "violation": 0.0 if value is not None else None, "worst_row": None, "error": None}
            for name, value in objectives.items()]
    return parse(json.dumps({"solver": "highs", "mip_gap": mip_gap, "scenarios": rows}), "scenarios.json")


def test_a_tie_within_the_margin_passes_and_a_costlier_plan_fails() -> None:
    champion = _results({"a": 100.0, "b": 200.0, "c": 50.0})
    tie = compare.assess(_results({"a": 100.0, "b": 200.0, "c": 50.0}), champion, maximise=False, margin=1e-4,
                         confidence=0.95, seed=0, resamples=400)
    costlier = compare.assess(_results({"a": 110.0, "b": 220.0, "c": 55.0}), champion, maximise=False, margin=1e-4,
                              confidence=0.95, seed=0, resamples=400)
    assert tie.status == "pass" and tie.checks[0].statistic == 0.0
    assert costlier.status == "fail" and costlier.checks[0].statistic == pytest.approx(0.1)
    assert costlier.checks[0].ci == pytest.approx((0.1, 0.1))
    # the same numbers are better when the objective is a value to maximise
    assert compare.assess(_results({"a": 110.0, "b": 220.0, "c": 55.0}), champion, maximise=True, margin=1e-4,
                          confidence=0.95, seed=0, resamples=400).status == "pass"


def test_a_scenario_only_the_champion_solves_fails_and_none_in_common_cannot_be_judged() -> None:
    champion = _results({"a": 100.0, "b": 200.0})
    lost = compare.assess(_results({"a": 100.0, "b": None}), champion, maximise=False, margin=1e-4,
                          confidence=0.95, seed=0, resamples=400)
    assert lost.status == "fail" and [c.name for c in lost.checks] == ["objective", "solved"]
    assert "the champion solves 1 scenario(s) this formulation does not: b" in lost.reason
    with pytest.raises(CannotEvaluate, match="no scenario has a solution from both"):
        compare.assess(_results({"x": 1.0}), champion, maximise=False, margin=1e-4, confidence=0.95, seed=0)
