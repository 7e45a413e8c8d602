"""`drift.filter` (issue 11, item 11): the drift gate compares only the rows of its reference and current
data files that the filter keeps, chosen as `data.filter` chooses the training rows (the same function),
and a filter that keeps nothing is the gate's `error`, naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelops_ci.steps import gate
from modelops_ci.steps.context import StepContext

QUIET = {"alpha": 0.05, "multivariate": False, "prediction": False}  # per-feature tests only (fast)


def stores(rng: np.random.Generator, rows: int, shift_in_b: float) -> pd.DataFrame:
    """Rows of two stores: store b's x0 moved by `shift_in_b` standard deviations."""
    store = rng.choice(["a", "b"], rows)
    x0 = rng.normal(0.0, 1.0, rows) + np.where(store == "b", shift_in_b, 0.0)
    return pd.DataFrame({"store": store, "x0": x0, "x1": rng.normal(0.0, 1.0, rows)})


def repo_with_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    (tmp_path / "monitoring").mkdir()
    stores(rng, 2000, shift_in_b=0.0).to_csv(tmp_path / "monitoring/reference.csv", index=False)
    stores(rng, 2000, shift_in_b=1.5).to_csv(tmp_path / "monitoring/batch.csv", index=False)


def drift_of(tmp_path: Path, drift_spec: dict[str, Any]) -> Any:
    params = {"task": "classification", "split": {"seed": 3},
              "data": {"target": {"column": "y"}, "features": {"numeric": ["x0", "x1"]}},
              "drift": {"reference": "monitoring/reference.csv", "current": "monitoring/batch.csv", **drift_spec},
              "gates": {"drift": QUIET}}
    return gate.evaluate(StepContext(tmp_path, "shop", params), "drift")


def test_without_a_filter_the_shifted_store_is_drift(tmp_path: Path) -> None:
    repo_with_files(tmp_path)

    assert drift_of(tmp_path, {}).details["drifted"] == ["x0"]


def test_a_filter_compares_only_the_rows_it_keeps_of_both_files(tmp_path: Path) -> None:
    repo_with_files(tmp_path)

    kept = drift_of(tmp_path, {"filter": {"store": "a"}})
    shifted = drift_of(tmp_path, {"filter": {"store": ["b"]}})

    assert kept.status == "pass", kept.reason
    assert kept.n is None or kept.n < 2000
    assert shifted.details["drifted"] == ["x0"]


def test_a_filter_that_keeps_nothing_is_an_error_naming_the_key(tmp_path: Path) -> None:
    repo_with_files(tmp_path)

    result = drift_of(tmp_path, {"filter": {"store": "z"}})

    assert result.status == "error"
    assert "spec.drift.filter.store: filter store: 'z' matches none of the" in result.reason
    assert "values of 'store': a, b" in result.reason


def test_a_filter_on_a_column_the_file_lacks_is_an_error_naming_the_key(tmp_path: Path) -> None:
    repo_with_files(tmp_path)

    result = drift_of(tmp_path, {"filter": {"shop": "a"}})

    assert result.status == "error"
    assert "spec.drift.filter.shop: column 'shop' is not in the data: columns: store, x0, x1" in result.reason
