"""Every model our training can produce saves and loads with the package's audited types alone.

This test is also how `model_types.AUDITED_TYPES` is regenerated: a family added to FAMILIES that
holds a new type fails here, naming the type to audit and add.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.ml import model_store, model_types
from modelops_ci.steps import forecast, train
from modelops_ci.steps.context import StepContext

# Every estimator family train.py names (SCALE_SENSITIVE, trees, ensembles), as a spec names them.
FAMILIES = {
    "classification": [
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.linear_model.LogisticRegression",
        "sklearn.tree.DecisionTreeClassifier",
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.GradientBoostingClassifier",
        "sklearn.svm.SVC",
        "sklearn.neighbors.KNeighborsClassifier",
        "sklearn.neural_network.MLPClassifier",
    ],
    "regression": [
        "sklearn.linear_model.Ridge",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        "sklearn.ensemble.RandomForestRegressor",
        "sklearn.neighbors.KNeighborsRegressor",
        "sklearn.neural_network.MLPRegressor",
    ],
    "forecast": [
        "sklearn.linear_model.Ridge",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        "sklearn.tree.DecisionTreeRegressor",
    ],
}
CASES = [(task, dotted) for task, names in FAMILIES.items() for dotted in names]
SMALL = {"max_iter": 20, "n_estimators": 3, "max_depth": 3}  # those an estimator takes
GRID = {"kind": "grid", "cv": 2, "space": {"C": [0.1, 1.0]}}


def _frame(task: str) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    rows = 48
    income = rng.normal(50, 10, rows)
    income[4] = np.nan  # the imputer learns something
    frame = pd.DataFrame({"income": income, "debt": rng.normal(20, 5, rows),
                          "region": rng.choice(["north", "south"], rows),
                          "quarter": [f"{2000 + i // 4} Q{i % 4 + 1}" for i in range(rows)]})
    if task == "classification":
        frame["y"] = np.where(frame["debt"] > 20, "bad", "good")
    else:
        frame["y"] = 100 + np.arange(rows) + 5 * rng.normal(size=rows)
    return frame


def _small_params(dotted: str) -> dict[str, int]:
    import importlib
    import inspect

    module, _, name = dotted.rpartition(".")
    accepted = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    return {key: value for key, value in SMALL.items() if key in accepted}


def _context(task: str, dotted: str, search: dict[str, Any] | None = None) -> StepContext:
    data: dict[str, Any] = {"target": {"column": "y"}}
    model: dict[str, Any] = {"estimator": dotted, "params": _small_params(dotted)}
    if task == "forecast":
        data["time"] = "quarter"
        model.update({"lags": [1, 4], "season": 4})
    else:
        data["features"] = {"numeric": ["income", "debt"], "categorical": ["region"]}
    if search:
        model["search"] = search
    params = {"task": task, "data": data, "model": model, "split": {"seed": 0}}
    return StepContext(Path("/nonexistent"), "types", params)


def _train(ctx: StepContext) -> tuple[Any, dict[str, Any], Any]:
    """The model, card facts and some inputs, as `modelops-ci step train` makes them."""
    frame = _frame(ctx.task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the tiny MLPs
        if ctx.task == "forecast":
            model, facts = forecast.fit(ctx, frame, train.estimator(ctx))
            lags, season = forecast.settings(ctx)
            inputs = [forecast.features(list(frame["y"]), t, lags, season) for t in range(4, 12)]
            return model, facts, inputs
        model, facts = train.fit(ctx, frame)
    return model, facts, frame[["income", "debt", "region"]]


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[Any, dict[str, Any], Any]]:
    models = {f"{task}:{dotted}": _train(_context(task, dotted)) for task, dotted in CASES}
    models["classification:grid-search"] = _train(
        _context("classification", "sklearn.linear_model.LogisticRegression", GRID))
    return models


@pytest.mark.parametrize("case", [*(f"{t}:{d}" for t, d in CASES), "classification:grid-search"])
def test_what_training_produces_loads_with_the_audited_types_alone(
        tmp_path: Path, trained: dict[str, tuple[Any, dict[str, Any], Any]], case: str) -> None:
    import numpy as np

    model, facts, inputs = trained[case]
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    model_store.save(model, path, card, facts)
    loaded, _ = model_store.load(path, card)
    np.testing.assert_array_equal(loaded.predict(inputs), model.predict(inputs))


def test_the_audited_list_holds_nothing_training_does_not_need(
        tmp_path: Path, trained: dict[str, tuple[Any, dict[str, Any], Any]]) -> None:
    """A type stays on the list only while a model of ours needs it: the list does not grow by habit."""
    import skops.io as sio

    needed: set[str] = set()
    for model, _, _ in trained.values():
        needed.update(sio.get_untrusted_types(data=sio.dumps(model)))
    assert needed == model_types.AUDITED_TYPES
