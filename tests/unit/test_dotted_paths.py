"""One loader of the dotted paths a spec names (steps/estimators.py): what `validate --deep`
accepts, train can import. Before, validate put the repository on sys.path and walked nested
attributes while train did neither, so an estimator in the repo itself passed validation and
failed training."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelops_ci.commands.validate import import_problem
from modelops_ci.steps import train
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.estimators import MISSING_MODULE, MISSING_NAME, CannotLoad, load

HOUSE_MODELS = """\
from sklearn.linear_model import LogisticRegression


class HouseClassifier(LogisticRegression):
    pass


class Family:
    Classifier = HouseClassifier
"""


@pytest.fixture
def house_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository holding its own estimator module, which nothing has imported yet."""
    pytest.importorskip("sklearn")
    module = "house_models_" + tmp_path.name.replace("-", "_")
    (tmp_path / f"{module}.py").write_text(HOUSE_MODELS, encoding="utf-8")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    return tmp_path


def _context(root: Path, estimator: str) -> StepContext:
    return StepContext(root, "loans", {"task": "classification", "model": {"estimator": estimator}})


@pytest.mark.parametrize("attr", [".HouseClassifier", ":HouseClassifier", ":Family.Classifier"])
def test_validate_deep_and_train_accept_the_same_repo_estimator(house_repo: Path, attr: str) -> None:
    dotted = f"house_models_{house_repo.name.replace('-', '_')}{attr}"

    model = train.estimator(_context(house_repo, dotted))  # first: validate would put the repo on sys.path

    assert type(model).__name__ == "HouseClassifier"
    assert import_problem(dotted, house_repo) is None


def test_a_missing_module_and_a_missing_name_say_which(tmp_path: Path) -> None:
    with pytest.raises(CannotLoad) as missing:
        load("no_such_module:thing", tmp_path)
    with pytest.raises(CannotLoad) as misspelt:
        load("json.JSONDecodr", tmp_path)

    assert (missing.value.kind, missing.value.message) == (
        MISSING_MODULE, "cannot import module 'no_such_module' (No module named 'no_such_module')")
    assert (misspelt.value.kind, misspelt.value.message, misspelt.value.close) == (
        MISSING_NAME, "'json' has no 'JSONDecodr'", "JSONDecoder")


def test_a_module_that_fails_on_import_is_the_specs_problem(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_plugin_module.py").write_text("raise RuntimeError('no config')\n", encoding="utf-8")
    monkeypatch.setattr(sys, "path", list(sys.path))

    assert import_problem("broken_plugin_module:load", tmp_path) == (
        "importing 'broken_plugin_module' failed: RuntimeError: no config", "fix the module")
