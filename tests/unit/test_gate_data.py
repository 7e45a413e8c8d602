"""Data contract: inferring one, its margins, the deterministic file, each broken rule as a check
that names the column, and the gate on a real repo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops_ci.gates import data
from modelops_ci.gates.result import CannotEvaluate
from tests.helpers.repos import write

SPEC: dict[str, Any] = {
    "target": {"column": "default", "positive": "yes"},
    "features": {"numeric": ["income", "age"], "categorical": ["region"], "drop": ["note"]},
    "sensitive": ["region", {"derive": "age_band", "from": "age", "bins": [0, 40, 120]}],
}


def _frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 10, rows).round(1).clip(5, None),
        "age": rng.integers(19, 75, rows),
        "region": rng.choice(["north", "south", "east"], rows),
        "member": rng.random(rows) < 0.5,
        "note": [f"free text {i}" for i in range(rows)],
        "default": rng.choice(["yes", "no"], rows),
    })
    frame["age_band"] = pd.cut(frame["age"], [0, 40, 120], right=False).astype("string")
    return frame


def _contract(frame: pd.DataFrame | None = None) -> dict[str, Any]:
    return data.infer_contract(_frame() if frame is None else frame, SPEC, "classification")


def _failures(frame: pd.DataFrame, contract: dict[str, Any]) -> list[Any]:
    return [c for c in data.validate(frame, contract, "contracts/loans.yaml", "loans") if c.status != "pass"]


def test_inferred_contract_holds_for_its_own_data() -> None:
    frame = _frame()
    contract = _contract(frame)
    assert list(contract["columns"]) == list(frame.columns)
    result = data.assess(frame, contract, "contracts/loans.yaml", "loans")
    assert (result.status, result.checks, result.n) == ("pass", [], 300)
    assert "all 7 columns meet contracts/loans.yaml" in result.reason


def test_inferred_rules_and_margins() -> None:
    frame = _frame()
    frame.loc[:9, "income"] = np.nan  # 10 of 300 missing
    columns = _contract(frame)["columns"]
    age = columns["age"]
    assert age["type"] == "integer"
    low, high = int(frame["age"].min()), int(frame["age"].max())
    width = high - low
    assert (age["min"], age["max"]) == (int(np.floor(low - 0.1 * width)), int(np.ceil(high + 0.1 * width)))
    income = columns["income"]
    assert income["type"] == "number"
    assert income["min"] <= frame["income"].min() - 0.1 * (frame["income"].max() - frame["income"].min()) + 0.1
    assert income["min"] >= 0  # never negative: the column never was
    assert income["max_null_rate"] == pytest.approx(10 / 300 * 1.5 + 0.01, abs=1e-4)
    assert age["max_null_rate"] == 0.01
    assert columns["region"]["categories"] == ["east", "north", "south"]
    assert columns["default"]["categories"] == ["no", "yes"]  # the classification target
    assert columns["age_band"]["categories"] == ["[0, 40)", "[40, 120)"]  # a derived sensitive column
    assert set(columns["member"]) == {"type", "max_null_rate"} and columns["member"]["type"] == "boolean"
    assert set(columns["note"]) == {"type", "max_null_rate"}  # dropped: no values to pin


def test_text_with_many_values_gets_no_category_rule() -> None:
    frame = _frame().assign(customer=[f"c{i}" for i in range(300)])
    assert "categories" not in _contract(frame)["columns"]["customer"]


def test_out_of_range_values_fail_naming_column_count_and_examples() -> None:
    contract = _contract()
    frame = _frame(seed=1)
    frame.loc[[4, 9], "age"] = [230, 231]
    frame.loc[12, "income"] = -40.0
    failures = _failures(frame, contract)
    assert {c.name for c in failures} == {"age.range", "income.range"}
    age = next(c for c in failures if c.name == "age.range")
    assert age.details == {"column": "age", "rule": "range", "count": 2, "examples": ["230", "231"]}
    assert f"column 'age': 2 of 300 values outside [{contract['columns']['age']['min']}, " in age.reason
    assert "2 above" in age.reason and "e.g. 230, 231" in age.reason
    assert "1 below" in next(c for c in failures if c.name == "income.range").reason


def test_a_new_category_fails() -> None:
    frame = _frame(seed=2)
    frame.loc[[1, 2, 3], "region"] = "west"
    (failure,) = _failures(frame, _contract())
    assert failure.name == "region.categories"
    assert failure.details["count"] == 3 and failure.details["examples"] == ["west"]
    assert "3 of 300 values are not among the 3 categories" in failure.reason and "'west' (3)" in failure.reason


def test_too_many_nulls_fail() -> None:
    frame = _frame(seed=3)
    frame.loc[:29, "income"] = np.nan
    (failure,) = _failures(frame, _contract())
    assert failure.name == "income.max_null_rate"
    assert "column 'income': 10.0% null (30 of 300 rows), contracts/loans.yaml allows at most 1.0%" in failure.reason


def test_a_missing_column_fails_and_an_extra_one_warns() -> None:
    frame = _frame(seed=4).drop(columns=["member"]).assign(extra=1)
    checks = data.validate(frame, _contract(), "contracts/loans.yaml", "loans")
    assert [(c.name, c.status) for c in checks] == [("member.present", "fail"), ("extra.present", "warn")]
    assert "column 'member' is missing" in checks[0].reason
    assert "modelops-ci contract infer loans" in checks[1].reason


@pytest.mark.parametrize(("column", "values", "found"), [
    ("age", lambda f: f["age"].astype(str), "string"),
    ("age", lambda f: f["age"] + 0.5, "number"),
    ("income", lambda f: f["income"].astype(str), "string"),
    ("region", lambda f: np.arange(len(f)), "integer"),
])
def test_a_type_change_fails(column: str, values: Any, found: str) -> None:
    frame = _frame(seed=5)
    frame[column] = values(frame)
    (failure,) = _failures(frame, _contract())
    assert failure.name == f"{column}.type"
    assert f"column '{column}' is {found}" in failure.reason and "contracts/loans.yaml says" in failure.reason


def test_compatible_types_pass() -> None:
    contract = _contract()
    frame = _frame(seed=6)
    frame["age"] = frame["age"].astype(float)  # whole floats: an integer column that met a NaN in a CSV
    frame.loc[0, "age"] = np.nan
    frame["income"] = frame["income"].round().astype(int)  # integers satisfy `number`
    assert _failures(frame, contract) == []


def test_the_contract_file_is_deterministic_yaml(tmp_path: Path) -> None:
    frame = _frame()
    contract = _contract(frame)
    shuffled = frame.sample(frac=1, random_state=3).reset_index(drop=True)
    text = data.render_contract("loans", contract)
    assert data.render_contract("loans", _contract(shuffled)) == text
    path = data.write_contract(tmp_path, "loans", contract)
    assert path == tmp_path / "contracts" / "loans.yaml"
    assert path.read_text(encoding="utf-8") == text
    assert text.startswith("# Data contract of pipeline 'loans'")
    assert "    categories: [east, north, south]\n" in text
    loaded = data.read_contract(tmp_path, "contracts/loans.yaml", "loans")
    assert loaded["columns"] == contract["columns"]
    assert yaml.safe_load(text)["pipeline"] == "loans"
    custom = data.write_contract(tmp_path, "loans", contract, "policy/contracts/credit.yaml")
    assert custom.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(("text", "message"), [
    ("columns: [a, b]\n", "columns: missing, or not a mapping"),
    ("version: 2\ncolumns: {}\n", "version: 2 is not 1"),
    ("columns: {age: {type: int}}\n", "columns.age.type: 'int' is not one of"),
    ("columns: {age: {type: integer, min: low}}\n", "columns.age.min: 'low' is not a number"),
    ("columns: {age: {type: integer, maximum: 3}}\n", "columns.age.maximum: unknown rule"),
    ("columns: {age: [1]\n", "unreadable"),
])
def test_a_malformed_contract_is_refused_by_its_key(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "contracts/loans.yaml", text)
    with pytest.raises(CannotEvaluate, match=r"contracts/loans\.yaml: ") as caught:
        data.read_contract(tmp_path, "contracts/loans.yaml", "loans")
    assert message in str(caught.value)
    assert caught.value.fields == {"details": {"contract": "contracts/loans.yaml"}}
