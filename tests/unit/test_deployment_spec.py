"""`kind: Deployment`: the schema and the checks beyond it, each a problem with the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_ci.errors import SpecError
from modelops_ci.spec import deployment
from modelops_ci.spec.resolve import read_document

DISPLAY = "deployments/production.yaml"
HEAD = ("apiVersion: modelops/v1\nkind: Deployment\nmetadata: {name: production}\nspec:\n  stage: production\n"
        "  models:\n")


def parsed(tmp_path: Path, models: str) -> tuple[deployment.Deployment, list[str]]:
    path = tmp_path / "production.yaml"
    path.write_text(HEAD + models)
    doc = read_document(path, DISPLAY)
    found, problems = deployment.parse(doc.data, DISPLAY)
    return found, [str(p) for p in problems]


def test_a_roll_out_reads_into_its_steps_analysis_and_weight(tmp_path: Path) -> None:
    found, problems = parsed(tmp_path, """\
    loans:
      champion: v1.0.0
      challenger: v1.1.0
      mode: shadow
      weight: 25
      since: 1700000000
      steps: [{weight: 25, pause: 90s}, {weight: 100}]
      analysis: {interval: 2m, min_samples: 50, failure_limit: 3, metrics: {error_rate: {max: 0.02}}}
      abort: {issue: false}
""")
    assert problems == []
    model = found.models["loans"]
    assert (model.champion, model.challenger, model.mode, model.weight, model.step) == ("v1.0.0", "v1.1.0",
                                                                                       "shadow", 25, 0)
    assert model.steps == (deployment.Step(25, 90.0), deployment.Step(100, 0.0))
    assert (model.analysis.interval, model.analysis.min_samples, model.analysis.failure_limit) == (120.0, 50, 3)
    assert model.analysis.metrics == {"error_rate": {"max": 0.02}}
    assert (model.abort_issue, model.since, found.stage) == (False, 1700000000.0, "production")


@pytest.mark.parametrize(("models", "message"), [
    ("    loans:\n      champion: v1.0.0\n      challenger: v1.1.0\n      steps: [{weight: 10}, {weight: 50}]\n",
     f"{DISPLAY}:10:7: spec.models.loans.steps: the steps end at 50%, not 100%"),
    ("    loans:\n      champion: v1.0.0\n      challenger: v1.1.0\n      steps: [{weight: 50}, {weight: 10}, "
     "{weight: 100}]\n", f"{DISPLAY}:10:7: spec.models.loans.steps: step weights [50, 10, 100] do not rise"),
    ("    loans:\n      champion: v1.0.0\n      challenger: v1.1.0\n      weight: 30\n",
     f"{DISPLAY}:10:7: spec.models.loans.weight: weight 30% is not one of the steps' (10, 50, 100)"),
    ("    loans:\n      champion: v1.0.0\n      weight: 10\n",
     f"{DISPLAY}:9:7: spec.models.loans.weight: weight 10% with no challenger"),
    ("    loans:\n      champion: v1.0.0\n      challenger: v1.0.0\n",
     f"{DISPLAY}:9:7: spec.models.loans.challenger: the challenger v1.0.0 is the champion"),
    ("    loans: {}\n", f"{DISPLAY}:7:5: spec.models.loans: model 'loans' names no version"),
])
def test_what_a_schema_cannot_say_is_a_problem_with_its_line(tmp_path: Path, models: str, message: str) -> None:
    _, problems = parsed(tmp_path, models)
    assert any(p.startswith(message) for p in problems), problems


@pytest.mark.parametrize(("models", "message"), [
    ("    loans:\n      champion: 1.0\n", "spec.models.loans.champion"),
    ("    loans:\n      champion: v1.0.0\n      mode: blue-green\n", "spec.models.loans.mode"),
    ("    loans:\n      champion: v1.0.0\n      steps: [{weight: 120}]\n", "spec.models.loans.steps[0].weight"),
    ("    loans:\n      champion: v1.0.0\n      analysis: {interval: soon}\n", "spec.models.loans.analysis.interval"),
    ("    loans:\n      champion: v1.0.0\n      analysis: {metrics: {accuracy: {min: 0.9}}}\n",
     "unknown key 'accuracy'"),
    ("    Loans!:\n      champion: v1.0.0\n", "spec.models"),
])
def test_the_schema_refuses_a_malformed_deployment_with_its_line(tmp_path: Path, models: str, message: str) -> None:
    path = tmp_path / "production.yaml"
    path.write_text(HEAD + models)
    with pytest.raises(SpecError) as raised:
        read_document(path, DISPLAY)
    assert any(message in str(p) and p.path == DISPLAY and p.line >= 7 for p in raised.value.problems), \
        [str(p) for p in raised.value.problems]


def test_durations_are_seconds() -> None:
    assert [deployment.seconds(t) for t in ("90s", "10m", "2h", "1d")] == [90.0, 600.0, 7200.0, 86400.0]
    with pytest.raises(ValueError, match="not a duration"):
        deployment.seconds("10 minutes")


def test_a_metric_without_the_bound_it_is_judged_by_is_a_problem(tmp_path: Path) -> None:
    _, problems = parsed(tmp_path, "    loans:\n      champion: v1.0.0\n      analysis:\n        metrics:\n"
                                   "          agreement: {max: 0.9}\n")
    assert problems == [f"{DISPLAY}:11:11: spec.models.loans.analysis.metrics.agreement: agreement is judged by "
                        "`min`, which is not set (write e.g. `agreement: {min: 0.9}`)"]


def test_an_analysis_without_metrics_is_judged_on_errors(tmp_path: Path) -> None:
    found, _ = parsed(tmp_path, "    loans:\n      champion: v1.0.0\n")
    assert found.models["loans"].analysis.metrics == deployment.DEFAULT_METRICS
