"""Policies as transformers: which pipelines they select, and that a pipeline can tighten a
required gate but never loosen it, drop what it needs, or get two policies to disagree."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_ci.spec import workspace
from modelops_ci.spec.nodes import plain
from tests.helpers.cli import run_cli
from tests.helpers.repos import write
from tests.helpers.specs import pipeline_yaml, policy_yaml, position


def governed(repo: Path) -> dict[str, Any]:
    """Pipeline name -> (policy names, plain merged gates), asserting the repo is valid."""
    space = workspace.read(repo)
    assert space.problems == [], "\n".join(str(p) for p in space.problems)
    return {g.pipeline.name: ([p.name for p in g.policies], plain(g.gates))
            for g in space.governed}


def problems(repo: Path) -> list[str]:
    return [str(p) for p in workspace.read(repo).problems]


def compiled_params(repo: Path, name: str) -> dict[str, Any]:
    result = run_cli("compile", "-C", repo)
    assert result.exit_code == 0, result.stderr
    params: dict[str, Any] = yaml.safe_load(
        (repo / "compiled" / name / "params.yaml").read_text(encoding="utf-8"))
    return params


# -- selection -----------------------------------------------------------------------------


def test_selector_by_name_glob(empty_repo: Path) -> None:
    for name in ("credit-a", "credit-b", "fraud", "xcredit-c"):
        write(empty_repo, f"pipelines/{name}.yaml", pipeline_yaml(name, labels="{}"))
    write(empty_repo, "policies/credit.yaml", policy_yaml("credit", "names: [credit-*]\n"))
    write(empty_repo, "policies/fraud.yaml", policy_yaml("fraud", "names: [nothing-*, fr?ud]\n"))

    found = governed(empty_repo)

    assert {name: policies for name, (policies, _) in found.items()} == {
        "credit-a": ["credit"], "credit-b": ["credit"], "fraud": ["fraud"], "xcredit-c": [],
    }


def test_selector_by_labels_needs_every_label(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/both.yaml",
          pipeline_yaml("both", labels="{domain: finance, owner: risk, extra: x}"))
    write(empty_repo, "pipelines/one.yaml", pipeline_yaml("one", labels="{domain: finance}"))
    write(empty_repo, "pipelines/other.yaml",
          pipeline_yaml("other", labels="{domain: finance, owner: marketing}"))
    write(empty_repo, "policies/risk.yaml",
          policy_yaml("risk", "labels: {domain: finance, owner: risk}\n"))

    found = governed(empty_repo)

    assert found["both"][0] == ["risk"]
    assert found["one"][0] == []
    assert found["other"][0] == []


def test_selector_with_names_and_labels_needs_both(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit-eu.yaml", pipeline_yaml("credit-eu", labels="{region: eu}"))
    write(empty_repo, "pipelines/credit-us.yaml", pipeline_yaml("credit-us", labels="{region: us}"))
    write(empty_repo, "pipelines/fraud-eu.yaml", pipeline_yaml("fraud-eu", labels="{region: eu}"))
    write(empty_repo, "policies/eu.yaml",
          policy_yaml("eu-credit", "names: [credit-*]\nlabels: {region: eu}\n"))

    found = governed(empty_repo)

    assert [name for name, (policies, _) in found.items() if policies] == ["credit-eu"]


def test_selected_pipeline_gets_the_policy_gates(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml())
    write(empty_repo, "pipelines/other.yaml", pipeline_yaml("other", labels="{domain: retail}"))
    write(empty_repo, "policies/finance.yaml", policy_yaml("finance", "labels: {domain: finance}\n", """\
        performance:
          metrics: {roc_auc: {min: 0.75}}
        """))

    found = governed(empty_repo)

    assert found["credit"][1] == {"performance": {"metrics": {"roc_auc": {"min": 0.75}}}}
    assert found["other"][1] == {}


def test_foreach_items_are_selected_by_their_own_name(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/shops.yaml", pipeline_yaml("shops") + textwrap.indent(
        "foreach: [north, south]\ndo:\n  name: shop-${item}\n  labels: {region: '${item}'}\n",
        "  "))
    write(empty_repo, "policies/north.yaml",
          policy_yaml("north", "labels: {region: north}\n", "drift: {alpha: 0.05}\n"))

    found = governed(empty_repo)

    assert found["shop-north"] == (["north"], {"drift": {"alpha": 0.05}})
    assert found["shop-south"] == ([], {})


# -- weakening is an error -----------------------------------------------------------------

FINANCE_GATES = """\
    data_contract: {contract: contracts/credit.yaml}
    performance:
      confidence: 0.95
      metrics:
        roc_auc: {min: 0.75}
    compare: {metric: roc_auc, against: production, margin: 0.01}
    fairness:
      confidence: 0.9
      min_group_size: 30
      intersectional: true
      metrics:
        demographic_parity_ratio: {min: 0.8}
        equalized_odds_difference: {max: 0.1}
    drift: {alpha: 0.05, correction: fdr_bh, max_drifted_share: 0.3, multivariate: true}
    """

# (id, the pipeline's gates, text before the weak value, the weak value, its YAML path, wording)
WEAKER = [
    ("performance-min-lowered", "performance:\n  metrics:\n    roc_auc: {min: 0.7}\n",
     "roc_auc: {min: ", "0.7", "spec.gates.performance.metrics.roc_auc.min", "at least 0.75"),
    ("performance-confidence-lowered",
     "performance:\n  confidence: 0.9\n  metrics:\n    roc_auc: {min: 0.75}\n",
     "  confidence: ", "0.9", "spec.gates.performance.confidence", "at least 0.95"),
    ("fairness-max-raised",
     "fairness:\n  metrics:\n    equalized_odds_difference:\n      max: 0.2\n",
     "      max: ", "0.2", "spec.gates.fairness.metrics.equalized_odds_difference.max",
     "at most 0.1"),
    ("fairness-ratio-lowered",
     "fairness:\n  metrics:\n    demographic_parity_ratio: {min: 0.6}\n",
     "demographic_parity_ratio: {min: ", "0.6",
     "spec.gates.fairness.metrics.demographic_parity_ratio.min", "at least 0.8"),
    ("fairness-confidence-lowered", "fairness:\n  confidence: 0.8\n",
     "  confidence: ", "0.8", "spec.gates.fairness.confidence", "at least 0.9"),
    ("fairness-min-group-size-raised", "fairness:\n  min_group_size: 100\n",
     "min_group_size: ", "100", "spec.gates.fairness.min_group_size", "at most 30"),
    ("fairness-intersectional-dropped", "fairness:\n  intersectional: false\n",
     "intersectional: ", "false", "spec.gates.fairness.intersectional", "true"),
    ("advisory-where-policy-blocking", "fairness:\n  advisory: true\n",
     "advisory: ", "true", "spec.gates.fairness.advisory", "false"),
    ("drift-correction-changed", "drift:\n  correction: bonferroni\n",
     "correction: ", "bonferroni", "spec.gates.drift.correction", "'fdr_bh'"),
    ("drift-correction-none", "drift:\n  correction: none\n",
     "correction: ", "none", "spec.gates.drift.correction", "'fdr_bh'"),
    ("drift-multivariate-dropped", "drift:\n  multivariate: false\n",
     "multivariate: ", "false", "spec.gates.drift.multivariate", "true"),
    ("contract-replaced", "data_contract:\n  contract: contracts/loose.yaml\n",
     "contract: ", "contracts/loose.yaml", "spec.gates.data_contract.contract",
     "'contracts/credit.yaml'"),
    ("contract-advisory", "data_contract:\n  advisory: true\n",
     "advisory: ", "true", "spec.gates.data_contract.advisory", "false"),
    ("drift-alpha-lowered", "drift:\n  alpha: 0.01\n",
     "alpha: ", "0.01", "spec.gates.drift.alpha", "at least 0.05"),
    ("drift-share-raised", "drift:\n  max_drifted_share: 0.5\n",
     "max_drifted_share: ", "0.5", "spec.gates.drift.max_drifted_share", "at most 0.3"),
    ("compare-margin-raised", "compare:\n  metric: roc_auc\n  margin: 0.05\n",
     "margin: ", "0.05", "spec.gates.compare.margin", "at most 0.01"),
    ("compare-metric-changed", "compare:\n  metric: accuracy\n",
     "metric: ", "accuracy", "spec.gates.compare.metric", "'roc_auc'"),
    ("compare-against-changed", "compare:\n  metric: roc_auc\n  against: staging\n",
     "against: ", "staging", "spec.gates.compare.against", "'production'"),
    ("compare-allow-first-unset-in-policy", "compare:\n  metric: roc_auc\n  allow_first: true\n",
     "allow_first: ", "true", "spec.gates.compare.allow_first", "false"),
]


@pytest.mark.parametrize(("gates", "before", "value", "path", "required"),
                         [case[1:] for case in WEAKER], ids=[case[0] for case in WEAKER])
def test_weakening_a_required_gate_is_an_error(empty_repo: Path, gates: str, before: str,
                                               value: str, path: str, required: str) -> None:
    text = pipeline_yaml(gates=gates)
    write(empty_repo, "pipelines/credit.yaml", text)
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", FINANCE_GATES))
    line, col = position(text, before, value)

    result = run_cli("validate", "-C", empty_repo)

    assert result.exit_code == 2
    assert f"pipelines/credit.yaml:{line}:{col}: {path}: weakens policy 'finance' " \
           f"(policies/finance.yaml:" in result.stderr
    assert f"where the policy requires {required}" in result.stderr
    problems = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(problems) == 1, result.stderr  # the spec's sensitive inputs are only warned about
    assert "Traceback" not in result.stderr


def test_weakening_names_the_policy_line(empty_repo: Path) -> None:
    policy = policy_yaml("finance", "labels: {domain: finance}\n", FINANCE_GATES)
    write(empty_repo, "pipelines/credit.yaml",
          pipeline_yaml(gates="drift:\n  max_drifted_share: 0.9\n"))
    write(empty_repo, "policies/finance.yaml", policy)
    policy_line, _ = position(policy, "max_drifted_share: ", "0.3")

    [problem] = problems(empty_repo)

    assert f"(policies/finance.yaml:{policy_line})" in problem
    assert "0.9 where the policy requires at most 0.3" in problem


def test_advisory_true_weakens_an_explicitly_blocking_gate(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(gates="drift: {advisory: true}\n"))
    write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n", "drift: {advisory: false, alpha: 0.05}\n"))

    [problem] = problems(empty_repo)

    assert "spec.gates.drift.advisory: weakens policy 'finance'" in problem
    assert "true where the policy requires false" in problem


def test_advisory_is_allowed_where_the_policy_is_advisory(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml",
          pipeline_yaml(gates="drift: {advisory: true, alpha: 0.1}\n"))
    write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n", "drift: {advisory: true, alpha: 0.05}\n"))

    assert governed(empty_repo)["credit"][1] == {"drift": {"advisory": True, "alpha": 0.1}}


def test_weakening_is_caught_when_validating_only_the_pipeline_file(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml",
          pipeline_yaml(gates="performance:\n  metrics:\n    roc_auc: {min: 0.5}\n"))
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", FINANCE_GATES))

    result = run_cli("validate", "-C", empty_repo, empty_repo / "pipelines/credit.yaml")

    assert result.exit_code == 2
    assert "weakens policy 'finance'" in result.stderr


def test_tightening_a_policy_reports_the_pipelines_it_now_fails(empty_repo: Path) -> None:
    """pre-commit passes only the changed policy file: the pipelines it governs still count."""
    write(empty_repo, "pipelines/credit.yaml",
          pipeline_yaml(gates="performance:\n  metrics:\n    roc_auc: {min: 0.75}\n"))
    write(empty_repo, "pipelines/broken.yaml", "kind: [\n")  # not this run's business
    write(empty_repo, "pipelines/retail.yaml",  # not selected: its own gap is not reported
          pipeline_yaml("retail", labels="{domain: retail}", metrics="[accuracy]",
                        gates="performance:\n  metrics:\n    roc_auc: {min: 0.5}\n"))
    policy = write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n",
        "performance:\n  metrics: {roc_auc: {min: 0.8}}\n"))

    result = run_cli("validate", "-C", empty_repo, policy)

    assert result.exit_code == 2
    assert result.stderr.startswith("pipelines/credit.yaml:")
    assert "weakens policy 'finance'" in result.stderr
    assert "broken" not in result.stderr
    assert "retail" not in result.stderr


def test_several_weakenings_are_all_reported(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(gates="""\
        performance:
          metrics: {roc_auc: {min: 0.6}}
        drift: {correction: none, alpha: 0.001}
        """))
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", FINANCE_GATES))

    found = problems(empty_repo)

    assert [p.split(": ")[1] for p in found] == [  # in file order
        "spec.gates.performance.metrics.roc_auc.min",
        "spec.gates.drift.correction",
        "spec.gates.drift.alpha",
    ]


# -- stricter is accepted and compiled ------------------------------------------------------

STRICTER = """\
    performance:
      confidence: 0.99
      metrics:
        roc_auc: {min: 0.8}
        brier: {max: 0.2}
    compare: {metric: roc_auc, against: production, margin: 0.0, confidence: 0.9}
    fairness:
      advisory: false
      min_group_size: 20
      intersectional: true
      metrics:
        equalized_odds_difference: {max: 0.05}
    drift: {alpha: 0.1, correction: fdr_bh, max_drifted_share: 0.2, multivariate: true}
    """


def test_stricter_gates_are_accepted_and_compiled(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(gates=STRICTER))
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", FINANCE_GATES))
    assert run_cli("validate", "-C", empty_repo).exit_code == 0

    gates = compiled_params(empty_repo, "credit")["gates"]

    assert gates["performance"] == {"confidence": 0.99,
                                    "metrics": {"roc_auc": {"min": 0.8}, "brier": {"max": 0.2}}}
    assert gates["compare"] == {"metric": "roc_auc", "against": "production", "margin": 0.0,
                                "confidence": 0.9}
    assert gates["fairness"]["min_group_size"] == 20
    assert gates["fairness"]["intersectional"] is True
    assert gates["fairness"]["confidence"] == 0.9  # the policy's, which the pipeline left unset
    assert gates["fairness"]["metrics"] == {"equalized_odds_difference": {"max": 0.05},
                                            "demographic_parity_ratio": {"min": 0.8}}
    assert gates["fairness"].get("advisory", False) is False
    assert gates["drift"] == {"alpha": 0.1, "correction": "fdr_bh", "max_drifted_share": 0.2,
                              "multivariate": True}


def test_policy_fills_in_what_the_pipeline_does_not_set(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml())
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", FINANCE_GATES))

    params = compiled_params(empty_repo, "credit")

    assert params["gates"]["drift"] == {"alpha": 0.05, "correction": "fdr_bh",
                                        "max_drifted_share": 0.3, "multivariate": True}
    assert params["gates"]["data_contract"] == {"contract": "contracts/credit.yaml"}
    assert params["gates"]["performance"] == {"confidence": 0.95,
                                              "metrics": {"roc_auc": {"min": 0.75}}}
    assert params["governance"] == {"policies": ["finance"], "stages": ["dev", "staging",
                                                                        "production"]}


# -- omitting what a required gate needs -----------------------------------------------------


def _only_problem(repo: Path) -> str:
    found = problems(repo)
    assert len(found) == 1, found
    return found[0]


def test_fairness_gate_without_sensitive_features(empty_repo: Path) -> None:
    text = pipeline_yaml(sensitive=None)
    write(empty_repo, "pipelines/credit.yaml", text)
    write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n", "fairness: {min_group_size: 30}\n"))

    problem = _only_problem(empty_repo)

    assert problem.startswith("pipelines/credit.yaml:")
    assert "spec.data.sensitive: policy 'finance' requires a fairness gate, but no sensitive " \
           "features are declared" in problem
    assert run_cli("compile", "-C", empty_repo).exit_code == 2


def test_fairness_gate_with_an_empty_sensitive_list(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(sensitive="[]"))
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", "fairness: {}\n"))

    assert "spec.data.sensitive: policy 'finance' requires a fairness gate" in _only_problem(
        empty_repo)


def test_intersectional_fairness_needs_two_sensitive_features(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(sensitive="[sex]"))
    write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n", "fairness: {intersectional: true}\n"))

    assert "needs at least two sensitive features" in _only_problem(empty_repo)


def test_fairness_gate_on_a_forecast(empty_repo: Path) -> None:
    text = pipeline_yaml(task="forecast", metrics="[mae, mase]").replace(
        "target: {column: y}", "target: {column: y}\n    time: t").replace(
        "split: {kind: random, test_size: 0.25, seed: 1}", "split: {kind: temporal, test_periods: 4}").replace(
        "LogisticRegression", "Ridge")
    write(empty_repo, "pipelines/credit.yaml", text)
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", "fairness: {}\n"))
    line, col = position(text, "task: ", "forecast")

    problem = _only_problem(empty_repo)

    assert problem.startswith(f"pipelines/credit.yaml:{line}:{col}: spec.task: policy 'finance' "
                              "requires a fairness gate, which needs a classification task, "
                              "not forecast")


def test_drift_gate_without_a_reference(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(drift=None))
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", "drift: {alpha: 0.05}\n"))

    problem = _only_problem(empty_repo)

    assert "spec.drift.reference: policy 'finance' requires a drift gate, but the pipeline " \
           "names no drift reference" in problem
    assert "add spec.drift.reference: train" in problem


def test_performance_metric_the_pipeline_does_not_compute(empty_repo: Path) -> None:
    text = pipeline_yaml(metrics="[accuracy]")
    write(empty_repo, "pipelines/credit.yaml", text)
    write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n",
        "performance:\n  metrics: {roc_auc: {min: 0.7}}\n"))
    line, col = position(text, "metrics: ", "[accuracy]")

    problem = _only_problem(empty_repo)

    assert problem == (f"pipelines/credit.yaml:{line}:{col}: spec.metrics: policy 'finance' "
                       "gates on roc_auc, which the pipeline does not compute "
                       "(add roc_auc to spec.metrics)")


def test_compare_metric_the_pipeline_does_not_compute(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(metrics="[roc_auc]"))
    write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n", "compare: {metric: accuracy}\n"))

    assert "spec.metrics: policy 'finance' gates on accuracy" in _only_problem(empty_repo)


def test_metric_impossible_for_the_task(empty_repo: Path) -> None:
    text = pipeline_yaml(task="regression", metrics="[rmse, r2]", sensitive=None)
    write(empty_repo, "pipelines/credit.yaml", text)
    write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n",
        "performance:\n  metrics: {roc_auc: {min: 0.7}, rmse: {max: 3}}\n"))
    line, col = position(text, "task: ", "regression")

    problem = _only_problem(empty_repo)

    assert problem.startswith(f"pipelines/credit.yaml:{line}:{col}: spec.task: policy 'finance' "
                              "gates on roc_auc, which a regression model does not have")
    assert "regression metrics: mae, r2, rmse" in problem


def test_the_pipelines_own_metric_is_not_blamed_on_the_policy(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(
        metrics="[roc_auc]", gates="performance:\n  metrics: {f1: {min: 0.5}}\n"))
    write(empty_repo, "policies/finance.yaml", policy_yaml(
        "finance", "labels: {domain: finance}\n",
        "performance:\n  metrics: {roc_auc: {min: 0.7}}\n"))

    assert "spec.metrics: this pipeline gates on f1" in _only_problem(empty_repo)


def test_a_pipeline_not_selected_needs_nothing(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml",
          pipeline_yaml(labels="{domain: retail}", sensitive=None, drift=None))
    write(empty_repo, "policies/finance.yaml",
          policy_yaml("finance", "labels: {domain: finance}\n", FINANCE_GATES))

    assert governed(empty_repo)["credit"] == ([], {})


# -- two policies --------------------------------------------------------------------------


def test_two_policies_merge_to_the_strictest(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml(name="credit-a"))
    write(empty_repo, "policies/a.yaml", policy_yaml("a", "labels: {domain: finance}\n", """\
        performance:
          confidence: 0.95
          metrics: {roc_auc: {min: 0.7}}
        fairness:
          advisory: true
          metrics: {demographic_parity_ratio: {min: 0.8}}
        drift: {alpha: 0.01, max_drifted_share: 0.3}
        """))
    write(empty_repo, "policies/b.yaml", policy_yaml("b", "names: [credit-*]\n", """\
        performance:
          confidence: 0.9
          metrics: {roc_auc: {min: 0.8}, brier: {max: 0.25}}
        fairness:
          metrics: {demographic_parity_ratio: {min: 0.7}}
        drift: {alpha: 0.05, max_drifted_share: 0.5, multivariate: true}
        """))

    params = compiled_params(empty_repo, "credit-a")

    gates = params["gates"]
    assert gates["performance"] == {"confidence": 0.95,
                                    "metrics": {"roc_auc": {"min": 0.8}, "brier": {"max": 0.25}}}
    assert gates["fairness"]["metrics"] == {"demographic_parity_ratio": {"min": 0.8}}
    assert gates["fairness"].get("advisory", False) is False  # b requires it to block
    assert gates["drift"] == {"alpha": 0.05, "max_drifted_share": 0.3, "multivariate": True}
    assert params["governance"]["policies"] == ["a", "b"]


def test_pipeline_is_held_to_each_policy(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml",
          pipeline_yaml(gates="performance:\n  metrics: {roc_auc: {min: 0.75}}\n"))
    write(empty_repo, "policies/a.yaml", policy_yaml(
        "a", "labels: {domain: finance}\n", "performance:\n  metrics: {roc_auc: {min: 0.7}}\n"))
    write(empty_repo, "policies/b.yaml", policy_yaml(
        "b", "names: [credit]\n", "performance:\n  metrics: {roc_auc: {min: 0.8}}\n"))

    problem = _only_problem(empty_repo)

    assert "weakens policy 'b' (policies/b.yaml:" in problem
    assert "0.75 where the policy requires at least 0.8" in problem


def test_two_policies_with_different_stages_conflict(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml())
    write(empty_repo, "policies/a.yaml", policy_yaml("a", "labels: {domain: finance}\n"))
    b = policy_yaml("b", "names: [credit]\n", stages="[dev, production]")
    write(empty_repo, "policies/b.yaml", b)
    line, col = position(b, "stages: ", "[dev, production]")

    result = run_cli("validate", "-C", empty_repo)

    assert result.exit_code == 2
    assert f"policies/b.yaml:{line}:{col}: spec.stages: pipeline 'credit' is also governed by " \
           "'a' with stages ['dev', 'staging', 'production']; these differ" in result.stderr


def test_two_policies_that_disagree_on_an_exact_value_conflict(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/credit.yaml", pipeline_yaml())
    write(empty_repo, "policies/a.yaml", policy_yaml(
        "a", "labels: {domain: finance}\n", "drift: {correction: fdr_bh}\n"))
    b = policy_yaml("b", "names: [credit]\n", "drift: {correction: bonferroni}\n")
    write(empty_repo, "policies/b.yaml", b)
    line, col = position(b, "correction: ", "bonferroni")

    result = run_cli("compile", "-C", empty_repo)

    assert result.exit_code == 2
    assert f"policies/b.yaml:{line}:{col}: spec.gates.drift.correction: pipeline 'credit' is " \
           "also governed by 'a' (policies/a.yaml:" in result.stderr
    assert "which requires 'fdr_bh', not 'bonferroni'" in result.stderr
    assert not (empty_repo / "compiled").exists()


# -- problems inside a policy --------------------------------------------------------------


@pytest.mark.parametrize(("gates", "promotion", "before", "value", "key"), [
    ("", "staging: {approvals: 1}\nprod: {approvals: 2}\n", "    ", "prod:", "spec.promotion.prod"),
    ("compare: {metric: roc_auc, against: prod}\n", "", "against: ", "prod", "spec.gates.compare.against"),
], ids=["promotion", "compare-against"])
def test_a_stage_that_is_not_listed_is_refused_where_it_is_named(
        empty_repo: Path, gates: str, promotion: str, before: str, value: str, key: str) -> None:
    text = policy_yaml("finance", "labels: {domain: finance}\n", gates, promotion=promotion)
    write(empty_repo, "policies/finance.yaml", text)
    line, col = position(text, before, value)

    result = run_cli("validate", "-C", empty_repo)

    assert result.exit_code == 2
    assert f"policies/finance.yaml:{line}:{col}: {key}: 'prod' is not one of the " \
           "policy's stages" in result.stderr
    assert "production" in result.stderr  # the suggestion


def test_example_policies_apply_as_documented(example_repo: Path) -> None:
    found = governed(example_repo)

    assert found["credit-risk"][0] == ["finance-governance"]
    assert set(found["credit-risk"][1]) == {"data_contract", "performance", "compare",
                                            "fairness", "drift"}
    # the pipeline's own brier bound is kept alongside the policy's roc_auc floor
    assert found["credit-risk"][1]["performance"]["metrics"] == {"brier": {"max": 0.2},
                                                                 "roc_auc": {"min": 0.75}}
    for series in ("japan", "nz", "uk", "us"):
        policies, gates = found[f"arrivals-{series}"]
        assert policies == ["forecasting"]
        assert set(gates) == {"performance"}
