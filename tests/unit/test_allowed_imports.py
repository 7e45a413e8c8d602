"""`validate` warns (never fails) when a spec names code outside the packages its policies allow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.repos import write
from tests.helpers.specs import pipeline_yaml, policy_yaml, position

# Leaves a file when imported: validate must only look the module up.
OWN_PLUGIN = """\
import pathlib
pathlib.Path(__file__).with_name("imported").write_text("yes")


def clean(df):
    return df
"""


def _pipeline(estimator: str = "sklearn.linear_model.LogisticRegression", *, transforms: str = "",
              imports: str = "") -> str:
    text = pipeline_yaml("credit", sensitive=None, drift=None)
    text = text.replace("sklearn.linear_model.LogisticRegression", estimator)
    if transforms:
        target = "    target: {column: y}\n"
        text = text.replace(target, f"{target}    transforms: {transforms}\n")
    if imports:
        text = text.replace("spec:\n", f"imports:\n{imports}spec:\n", 1)
    return text


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    write(repo, "plugins/cleaning.py", OWN_PLUGIN)
    write(repo, "data/credit.csv", "x,y\n1,0\n2,1\n")
    return repo


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_by_default_our_package_sklearn_and_the_repositorys_modules_need_no_review(repo: Path) -> None:
    text = _pipeline(transforms="[plugins.cleaning:clean, modelops_ci.steps.frames:read_parquet]")
    write(repo, "pipelines/credit.yaml", text)
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result
    assert _warnings(result.stderr) == []
    assert not (repo / "plugins" / "imported").exists()  # looked up, never imported


def test_an_estimator_from_another_package_is_a_warning_at_its_line(repo: Path) -> None:
    text = _pipeline("xgboost.XGBClassifier")
    write(repo, "pipelines/credit.yaml", text)
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result  # a warning, not a problem
    line, col = position(text, "estimator: ", "xgboost.XGBClassifier")
    [warning] = _warnings(result.stderr)
    assert warning.startswith(f"warning: pipelines/credit.yaml:{line}:{col}: spec.model.estimator: "
                              "'xgboost.XGBClassifier' is code outside the allowed packages "
                              "(modelops_ci, sklearn, the repository's own modules)")
    assert "must be reviewed as code" in warning and "spec.allowed_imports" in warning


def test_a_plugin_named_under_imports_is_warned_where_the_spec_uses_it(repo: Path) -> None:
    text = _pipeline(transforms="[Scrub]", imports="  Scrub: thirdparty.cleaning:scrub\n")
    write(repo, "pipelines/credit.yaml", text)
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result
    [warning] = _warnings(result.stderr)
    line, _ = position(text, "transforms: [", "Scrub]")
    assert f"pipelines/credit.yaml:{line}:" in warning
    assert "spec.data.transforms.0: 'thirdparty.cleaning:scrub' is code outside" in warning


def test_a_policy_list_replaces_the_default(repo: Path) -> None:
    text = _pipeline("xgboost.XGBClassifier", transforms="[plugins.cleaning:clean]")
    write(repo, "pipelines/credit.yaml", text)
    write(repo, "policies/finance.yaml", policy_yaml("finance", "labels: {domain: finance}\n") +
          "  allowed_imports: [sklearn, xgboost]\n")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result
    [warning] = _warnings(result.stderr)
    expected = "'plugins.cleaning:clean' is code outside the allowed packages (sklearn, xgboost)"
    assert expected in warning


def test_a_prefix_allows_only_whole_module_names(repo: Path) -> None:
    text = _pipeline("sklearnx.Classifier", transforms="[xgboost_extra.f:g]")
    write(repo, "pipelines/credit.yaml", text)
    write(repo, "policies/finance.yaml", policy_yaml("finance", "labels: {domain: finance}\n") +
          "  allowed_imports: [sklearn, xgboost]\n")
    result = run_cli("validate", cwd=repo)
    assert len(_warnings(result.stderr)) == 2, result


def test_any_selecting_policy_may_allow_a_package(repo: Path) -> None:
    write(repo, "pipelines/credit.yaml", _pipeline("xgboost.XGBClassifier"))
    write(repo, "policies/all.yaml", policy_yaml("all", "names: ['*']\n"))
    write(repo, "policies/finance.yaml", policy_yaml("finance", "labels: {domain: finance}\n") +
          "  allowed_imports: [sklearn, xgboost]\n")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result
    assert _warnings(result.stderr) == []


def test_the_json_output_lists_the_warnings(repo: Path) -> None:
    write(repo, "pipelines/credit.yaml", _pipeline("xgboost.XGBClassifier"))
    result = run_cli("validate", "--format", "json", cwd=repo)
    assert result.exit_code == 0, result
    [warning] = json.loads(result.stdout)["warnings"]
    assert warning["path"] == "pipelines/credit.yaml"
    assert warning["yaml_path"] == "spec.model.estimator"
    assert _warnings(result.stderr) == []


@pytest.mark.parametrize("entry", ["not a module", "sklearn.", "-x"])
def test_an_allowed_import_that_is_no_module_name_is_a_problem(repo: Path, entry: str) -> None:
    write(repo, "pipelines/credit.yaml", _pipeline())
    write(repo, "policies/finance.yaml", policy_yaml("finance", "labels: {domain: finance}\n") +
          f"  allowed_imports: [{json.dumps(entry)}]\n")
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 2, result
    assert "policies/finance.yaml" in result.stderr and "spec.allowed_imports" in result.stderr


def test_the_ci_job_shows_the_warnings_right_after_validating(repo: Path) -> None:
    from modelops_ci.commands.ci import run_ci

    write(repo, "pipelines/credit.yaml", _pipeline("xgboost.XGBClassifier"))
    lines = run_ci(repo)
    assert next(lines).startswith("validate: ")
    assert next(lines).startswith("warning: pipelines/credit.yaml:")
