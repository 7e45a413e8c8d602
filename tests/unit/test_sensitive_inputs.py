"""A sensitive attribute used as a model input: `gates.fairness.sensitive_as_input` (forbid | warn |
allow, default warn), reported by `validate` at the feature list or the sensitive entry."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from modelops_ci.commands.init import _starter_files
from modelops_ci.commands.validate import validate, warnings
from tests.helpers.cli import run_cli
from tests.helpers.repos import write
from tests.helpers.specs import position

ROOT = Path(__file__).resolve().parents[2]


def _pipeline(data: str, gates: str = "") -> str:
    """The `loans` pipeline with `data` (YAML under spec.data, dedented) and its own `gates`."""
    text = textwrap.dedent("""\
        apiVersion: modelops/v1
        kind: Pipeline
        metadata: {name: loans, labels: {domain: finance}}
        spec:
          task: classification
          data:
        """) + textwrap.indent(textwrap.dedent(data), "    ")
    text += ("  split: {kind: stratified, test_size: 0.3, seed: 7}\n"
             "  model: {estimator: sklearn.linear_model.LogisticRegression}\n"
             "  metrics: [roc_auc]\n")
    if gates:
        text += "  gates:\n" + textwrap.indent(textwrap.dedent(gates), "    ")
    return text


DECLARED = """\
    source: {path: data/loans.csv}
    target: {column: default, positive: "yes", favorable: "no"}
    features:
      numeric: [income, debt, Age]
      categorical: [region, Marital]
    sensitive: [Marital, {derive: age_band, from: Age, bins: [0, 40, 120]}]
"""
INFERRED = """\
    source: {path: data/loans.csv}
    target: {column: default, positive: "yes"}
    features: {drop: [id]}
    sensitive: [Marital, {derive: age_band, from: Age, bins: [0, 40, 120]}]
"""
COMPLIANT = """\
    source: {path: data/loans.csv}
    target: {column: default, positive: "yes"}
    features: {numeric: [income, debt], categorical: [region]}
    sensitive: [Marital, {derive: age_band, from: Age, bins: [0, 40, 120]}]
"""


def _policy(setting: str | None) -> str:
    line = f"      sensitive_as_input: {setting}\n" if setting else ""
    return ("apiVersion: modelops/v1\nkind: Policy\nmetadata: {name: lending}\nspec:\n"
            "  selector: {labels: {domain: finance}}\n  gates:\n    fairness:\n      min_group_size: 30\n"
            f"{line}  stages: [dev, production]\n")


def _repo(tmp_path: Path, data: str, setting: str | None, gates: str = "") -> tuple[Path, str]:
    text = _pipeline(data, gates)
    write(tmp_path, "pipelines/loans.yaml", text)
    write(tmp_path, "policies/lending.yaml", _policy(setting))
    return tmp_path, text


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("pipelines/")]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_forbid_refuses_a_declared_sensitive_feature_and_a_derived_ones_source_at_their_lines(
        tmp_path: Path) -> None:
    repo, text = _repo(tmp_path, DECLARED, "forbid")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 2, result
    age_line, age_col = position(text, "numeric: [income, debt, ", "Age]")
    marital_line, marital_col = position(text, "categorical: [region, ", "Marital]")
    assert _errors(result.stderr) == [
        f"pipelines/loans.yaml:{age_line}:{age_col}: spec.data.features.numeric: 'Age', the source of the "
        "sensitive attribute 'age_band', is a model input, which policy 'lending' forbids "
        "(gates.fairness.sensitive_as_input: forbid) (remove 'Age' from spec.data.features.numeric)",
        f"pipelines/loans.yaml:{marital_line}:{marital_col}: spec.data.features.categorical: the sensitive "
        "attribute 'Marital' is a model input, which policy 'lending' forbids "
        "(gates.fairness.sensitive_as_input: forbid) (remove 'Marital' from spec.data.features.categorical)",
    ]


def test_forbid_with_inferred_features_points_at_each_sensitive_entry_until_it_is_dropped(tmp_path: Path) -> None:
    repo, text = _repo(tmp_path, INFERRED, "forbid")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 2, result
    marital = position(text, "sensitive: [", "Marital")
    age = position(text, "from: ", "Age")
    errors = _errors(result.stderr)
    assert [e.split(": ", 1)[0] for e in errors] == [f"pipelines/loans.yaml:{marital[0]}:{marital[1]}",
                                                   f"pipelines/loans.yaml:{age[0]}:{age[1]}"]
    assert "spec.data.sensitive.0: the sensitive attribute 'Marital' is a model input (the features are " \
           "inferred from the data, and it is not dropped)" in errors[0]
    assert "add 'Age' to spec.data.features.drop" in errors[1]

    write(repo, "pipelines/loans.yaml", text.replace("drop: [id]", "drop: [id, Marital, Age]"))
    assert run_cli("validate", cwd=repo).exit_code == 0


def test_unset_warns_at_the_line_and_exits_0(tmp_path: Path) -> None:
    repo, text = _repo(tmp_path, DECLARED, None)
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result
    line, col = position(text, "numeric: [income, debt, ", "Age]")
    found = _warnings(result.stderr)
    assert len(found) == 2
    assert found[0].startswith(f"warning: pipelines/loans.yaml:{line}:{col}: spec.data.features.numeric: 'Age', "
                               "the source of the sensitive attribute 'age_band', is a model input "
                               "(gates.fairness.sensitive_as_input: warn)")
    assert "sensitive_as_input: allow in the policy" in found[0]
    shown = json.loads(run_cli("validate", "--format", "json", cwd=repo).stdout)
    assert [w["line"] for w in shown["warnings"]] == [line, position(text, "[region, ", "Marital]")[0]]


def test_without_a_fairness_gate_the_default_still_warns(tmp_path: Path) -> None:
    write(tmp_path, "pipelines/loans.yaml", _pipeline(DECLARED))
    space = validate(tmp_path)
    assert space.ok
    assert len(warnings(space)) == 2


def test_allow_says_nothing(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path, DECLARED, "allow")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result
    assert _warnings(result.stderr) == []


def test_a_pipeline_may_forbid_what_its_policy_allows(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path, DECLARED, "allow", gates="fairness: {sensitive_as_input: forbid}\n")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 2
    assert "which this pipeline forbids" in result.stderr


@pytest.mark.parametrize(("policy", "pipeline"), [("forbid", "warn"), ("forbid", "allow"), ("warn", "allow")])
def test_a_pipeline_cannot_relax_its_policys_setting(tmp_path: Path, policy: str, pipeline: str) -> None:
    repo, text = _repo(tmp_path, COMPLIANT, policy, gates=f"fairness: {{sensitive_as_input: {pipeline}}}\n")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 2, result
    line, col = position(text, "sensitive_as_input: ", pipeline)
    assert (f"pipelines/loans.yaml:{line}:{col}: spec.gates.fairness.sensitive_as_input: weakens policy "
            f"'lending' (policies/lending.yaml:9): '{pipeline}' where the policy requires '{policy}' or "
            "stricter") in result.stderr


def test_a_compliant_pipeline_passes_under_forbid(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path, COMPLIANT, "forbid")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result
    assert _warnings(result.stderr) == []


def test_the_scaffold_forbids_sensitive_inputs_and_its_example_complies(tmp_path: Path) -> None:
    for relative, text in _starter_files():
        write(tmp_path, relative, text)
    assert "sensitive_as_input: forbid" in (tmp_path / "policies" / "default.yaml").read_text()
    space = validate(tmp_path)
    assert space.ok, space.problems
    assert warnings(space) == []


def test_this_repositorys_finance_policy_forbids_sensitive_inputs_and_its_examples_comply() -> None:
    assert "sensitive_as_input: forbid" in (ROOT / "policies" / "finance.yaml").read_text()
    space = validate(ROOT)
    assert space.ok, space.problems
    assert [w for w in warnings(space) if "sensitive" in w.message] == []
