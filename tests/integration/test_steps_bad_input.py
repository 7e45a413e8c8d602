"""Bad data and model settings through the pipeline steps, driven as a user would: edit the spec or
the data, `modelops-ci compile`, then `modelops-ci step STEP PIPELINE` (or `modelops-ci run`).

Every refusal exits 2 with `pipelines/<name>.yaml:<line>: <yaml path>: <message>: <hint>` naming the
column, shows no traceback, and leaves the step's outputs as they were (absent, or unchanged) with no
temp files behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import run_cli, run_exe
from tests.helpers.repos import make_ml_repo

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

OUTPUTS = ("data", "models", "reports")
LOANS_CSV = "data/raw/loans.csv"
SALES_CSV = "data/raw/sales.csv"


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template") / "ml"


@pytest.fixture
def repo(_template: Path, tmp_path: Path) -> Path:
    """A copy of the `ml_repo` fixture's repo (loans + sales, compiled, committed): built once per module."""
    if not _template.exists():
        make_ml_repo(_template)  # here, under this test's isolated HOME and git identity
    return Path(shutil.copytree(_template, tmp_path / "ml", symlinks=True))


def respec(repo: Path, old: str, new: str, pipeline: str = "loans") -> None:
    """Change the spec as a user would, and compile it."""
    edit(repo, f"pipelines/{pipeline}.yaml", old, new)
    compiled = run_cli("compile", cwd=repo)
    assert compiled.exit_code == 0, compiled.stderr


def edit(repo: Path, relative: str, old: str, new: str) -> None:
    path = repo / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, (old, relative)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def table(repo: Path, relative: str = LOANS_CSV) -> pd.DataFrame:
    return pd.read_csv(repo / relative)


def save_csv(repo: Path, frame: pd.DataFrame, relative: str = LOANS_CSV) -> None:
    frame.to_csv(repo / relative, index=False)


def done(repo: Path, *steps: str, pipeline: str = "loans") -> None:
    for name in steps:
        result = run_cli("step", name, pipeline, cwd=repo)
        assert result.exit_code == 0, result.stderr


def outputs(repo: Path) -> dict[str, bytes]:
    """Every file the steps write (temp files included), with its bytes."""
    found = {}
    for folder in OUTPUTS:
        for path in sorted((repo / folder).rglob("*")):
            if path.is_file() and "raw" not in path.relative_to(repo).parts:
                found[path.relative_to(repo).as_posix()] = path.read_bytes()
    return found


def refused(repo: Path, step: str, pipeline: str = "loans") -> str:
    """The message of a step that must fail as a user error, leaving its outputs as they were."""
    before = outputs(repo)
    result = run_cli("step", step, pipeline, cwd=repo)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    assert outputs(repo) == before
    assert no_temp_files(repo)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def no_temp_files(repo: Path) -> bool:
    return not [p for folder in OUTPUTS for p in (repo / folder).rglob("*.tmp")]


# --- ingest: the target ---------------------------------------------------------------------------


def test_missing_target_column_names_the_spec_line_and_suggests_the_column(repo: Path) -> None:
    respec(repo, "column: default,", "column: defualt,")

    assert refused(repo, "ingest") == ("pipelines/loans.yaml:10: spec.data.target.column: column 'defualt' "
                                       "is not in the data: did you mean 'default'?")
    assert not (repo / "data/loans").exists()


def test_target_with_one_class(repo: Path) -> None:
    loans = table(repo)
    save_csv(repo, loans.assign(default="no"))

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:10: spec.data.target.column: target 'default' has one "
                              "class only (no): ")


def test_target_with_missing_values_is_refused_not_read_as_the_negative_class(repo: Path) -> None:
    done(repo, "ingest")  # a good dataset first: the failed run must leave it unchanged
    loans = table(repo)
    loans.loc[[3, 9], "default"] = None
    save_csv(repo, loans)

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:10: spec.data.target.column: target 'default' is "
                              "missing in 2 of 400 rows (first at data/raw/loans.csv row 4)")


def test_positive_class_that_the_target_never_takes(repo: Path) -> None:
    respec(repo, 'positive: "yes"', 'positive: "Yes"')

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:10: spec.data.target.positive: 'Yes' is not a class of "
                              "'default' (found: no, yes)")


def test_forecast_target_that_is_not_numeric(repo: Path) -> None:
    sales = table(repo, SALES_CSV).astype({"units": object})
    sales.loc[6, "units"] = "unknown"
    save_csv(repo, sales, SALES_CSV)

    message = refused(repo, "ingest", "sales")

    assert message.startswith("pipelines/sales.yaml:10: spec.data.target.column: the forecast target 'units' "
                              "holds non-numeric values 'unknown' (first at data/raw/sales.csv row 7)")


# --- ingest: empty data ----------------------------------------------------------------------------


def test_filter_matching_nothing_names_the_filter_and_the_values_there_are(repo: Path) -> None:
    respec(repo, "    target:", "    filter: {region: west}\n    target:")

    message = refused(repo, "ingest")

    assert message == ("pipelines/loans.yaml:10: spec.data.filter.region: filter region: 'west' matches none "
                       "of the 400 rows: values of 'region': east, north, south")


def test_csv_with_only_a_header(repo: Path) -> None:
    (repo / LOANS_CSV).write_text("income,debt,age,region,default\n")

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:9: spec.data.source: data/raw/loans.csv has no rows: ")


def test_empty_csv_file(repo: Path) -> None:
    (repo / LOANS_CSV).write_text("")

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:9: spec.data.source.path: cannot read data/raw/loans.csv "
                              "as csv")


# --- ingest: features ------------------------------------------------------------------------------


def test_feature_with_no_values(repo: Path) -> None:
    save_csv(repo, table(repo).assign(debt=None))

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:12: spec.data.features.numeric.1: feature 'debt' has no "
                              "values (all 400 missing): ")


@pytest.mark.parametrize(("rows", "value"), [([5, 30], "inf"), ([12], "-inf")])
def test_numeric_feature_with_infinite_values_names_the_column_and_the_row(repo: Path, rows: list[int],
                                                                             value: str) -> None:
    done(repo, "ingest")  # a good dataset first: the refusal must leave it unchanged
    loans = table(repo).astype({"debt": object})
    loans.loc[rows, "debt"] = value  # written as `inf` in the CSV, which pandas reads as a float
    save_csv(repo, loans)

    message = refused(repo, "ingest")

    assert message == (f"pipelines/loans.yaml:12: spec.data.features.numeric.1: feature 'debt' is infinite "
                       f"(inf or -inf) in {len(rows)} of 400 rows (first at data/raw/loans.csv row {rows[0] + 1}): "
                       "replace or remove those values in the source")


def test_forecast_target_with_an_infinite_value(repo: Path) -> None:
    sales = table(repo, SALES_CSV).astype({"units": object})
    sales.loc[9, "units"] = "-inf"
    save_csv(repo, sales, SALES_CSV)

    message = refused(repo, "ingest", "sales")

    assert message.startswith("pipelines/sales.yaml:10: spec.data.target.column: target 'units' is infinite "
                              "(inf or -inf) in 1 of 40 rows (first at data/raw/sales.csv row 10)")


def test_numeric_feature_holding_text_in_a_csv(repo: Path) -> None:
    loans = table(repo).astype({"debt": object})
    loans.loc[4, "debt"] = "unknown"
    save_csv(repo, loans)

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:12: spec.data.features.numeric.1: feature 'debt' is "
                              "declared numeric but holds non-numeric values 'unknown' (first at "
                              "data/raw/loans.csv row 5): ")


def test_csv_na_markers_are_missing_values_not_text(repo: Path) -> None:
    # pandas reads 'n/a', 'NA', 'null'... as missing: the numeric imputer fills them in.
    loans = table(repo).astype({"debt": object})
    loans.loc[4, "debt"] = "n/a"
    save_csv(repo, loans)

    done(repo, "ingest")

    assert pd.read_parquet(repo / "data/loans/dataset.parquet")["debt"].isna().sum() == 1


def two_parquet_sources(repo: Path, first: pd.DataFrame, second: pd.DataFrame) -> None:
    first.to_parquet(repo / "data/raw/first.parquet")
    second.to_parquet(repo / "data/raw/second.parquet")
    respec(repo, "source: {path: data/raw/loans.csv}",
           "source: [{path: data/raw/first.parquet}, {path: data/raw/second.parquet}]")


def test_numeric_feature_stored_as_text_in_one_parquet_source(repo: Path) -> None:
    loans = table(repo)
    second = loans.iloc[200:].astype({"debt": str}).reset_index(drop=True)
    second.loc[3, "debt"] = "n/a"
    two_parquet_sources(repo, loans.iloc[:200], second)  # stacked: an object column of floats and str

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:12: spec.data.features.numeric.1: feature 'debt' is "
                              "declared numeric but holds non-numeric values 'n/a' (first at "
                              "data/raw/second.parquet row 4): ")


def test_categorical_feature_mixing_numbers_and_text_across_parquet_sources(repo: Path) -> None:
    loans = table(repo)
    coded = loans.iloc[:200].assign(region=lambda f: f["region"].map({"north": 1, "south": 2, "east": 3}))
    two_parquet_sources(repo, coded, loans.iloc[200:])

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:13: spec.data.features.categorical.0: feature 'region' "
                              "mixes value types (number and str; the first str at data/raw/second.parquet "
                              "row 1): ")


def test_unused_column_mixing_types_is_refused_before_it_breaks_the_parquet_file(repo: Path) -> None:
    loans = table(repo)
    two_parquet_sources(repo, loans.iloc[:200].assign(note=1), loans.iloc[200:].assign(note="late"))

    message = refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:9: spec.data.source: column 'note' mixes value types "
                              "(number and str; the first str at data/raw/second.parquet row 1): ")


def test_sensitive_column_that_is_not_in_the_data(repo: Path) -> None:
    respec(repo, "sensitive: [region,", "sensitive: [regoin,")

    message = refused(repo, "ingest")

    assert message == ("pipelines/loans.yaml:14: spec.data.sensitive.0: column 'regoin' is not in the data: "
                       "did you mean 'region'?")


# --- ingest: sources -------------------------------------------------------------------------------


OUTSIDE = "has the wrong form (use a path inside the repository, relative to it (no leading / and no ..))"


@pytest.mark.parametrize(("path", "problem"), [
    # the schema refuses a path out of the repo, so compile does, before any step runs
    ("../../etc/passwd", f"'../../etc/passwd' {OUTSIDE}"),
    ("/etc/passwd", f"'/etc/passwd' {OUTSIDE}"),
    # a missing file is found by ingest
    ("data/raw/loans-2024.csv", "'data/raw/loans-2024.csv' does not exist: add the file, or `dvc pull` it"),
])
def test_data_path_outside_the_repo_or_missing(repo: Path, path: str, problem: str) -> None:
    edit(repo, "pipelines/loans.yaml", "data/raw/loans.csv", path)
    compiled = run_cli("compile", cwd=repo)
    message = compiled.stderr.strip() if compiled.exit_code == 2 else refused(repo, "ingest")

    assert message.startswith("pipelines/loans.yaml:9:"), message
    assert f" spec.data.source.path: {problem}" in message, message


def test_a_data_path_that_leads_out_of_the_repo_through_a_symlink(repo: Path, tmp_path: Path) -> None:
    """The spec's path looks inside the repo; ingest resolves it and refuses what lies outside."""
    outside = tmp_path / "elsewhere.csv"
    outside.write_text((repo / "data/raw/loans.csv").read_text())
    (repo / "data/raw/link.csv").symlink_to(outside)
    edit(repo, "pipelines/loans.yaml", "data/raw/loans.csv", "data/raw/link.csv")
    assert run_cli("compile", cwd=repo).exit_code == 0
    message = refused(repo, "ingest")
    assert message.startswith("pipelines/loans.yaml:9:"), message
    assert "spec.data.source.path: 'data/raw/link.csv' is outside the repository: keep data files" in message


# --- split -----------------------------------------------------------------------------------------


def test_category_seen_only_in_the_test_split(repo: Path) -> None:
    from sklearn.model_selection import train_test_split

    respec(repo, "kind: stratified", "kind: random")
    done(repo, "ingest", "split")  # good splits first: the refused run must leave them unchanged
    _, test_rows = train_test_split(range(400), test_size=0.3, random_state=7)  # the spec's split
    loans = table(repo)
    loans.loc[test_rows[0], "region"] = "west"
    save_csv(repo, loans)
    done(repo, "ingest")

    message = refused(repo, "split")

    assert message.startswith("pipelines/loans.yaml:13: spec.data.features.categorical.0: categorical "
                              "feature 'region' has value(s) 'west' only in the test split: ")


def test_random_split_leaving_one_class_on_a_side(repo: Path) -> None:
    respec(repo, "kind: stratified", "kind: random")
    loans = table(repo).assign(default="no")
    loans.loc[0, "default"] = "yes"  # two classes, but one row of 'yes' cannot be on both sides
    save_csv(repo, loans)
    done(repo, "ingest")

    message = refused(repo, "split")

    assert message.startswith("pipelines/loans.yaml:15: spec.split: the ")
    assert "split has one class of 'default' only (no): use kind: stratified" in message


def test_stratified_split_with_a_class_of_one_row(repo: Path) -> None:
    loans = table(repo).assign(default="no")
    loans.loc[0, "default"] = "yes"
    save_csv(repo, loans)
    done(repo, "ingest")

    message = refused(repo, "split")

    assert message.startswith("pipelines/loans.yaml:15: spec.split.kind: a stratified split needs at least "
                              "2 rows of every class; 'default' is 'yes' in 1 row")


# --- train -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("estimator", "problem"), [
    ("sklearn.linear_modl.LogisticRegression", "cannot import 'sklearn.linear_modl'"),
    ("sklearn.linear_model.LogisticRegresion",
     "'sklearn.linear_model' has no 'LogisticRegresion': did you mean 'LogisticRegression'?"),
    ("collections.OrderedDict", "collections.OrderedDict is a class, not a scikit-learn estimator"),
    ("sklearn.linear_model", "sklearn.linear_model is a module, not a scikit-learn estimator"),
    ("sklearn.linear_model.Ridge",
     "sklearn.linear_model.Ridge is not a classifier, and a classification task needs one"),
    ("sklearn.cluster.KMeans", "sklearn.cluster.KMeans is not a classifier"),
])
def test_estimator_that_cannot_be_used(repo: Path, estimator: str, problem: str) -> None:
    done(repo, "ingest", "split")
    respec(repo, "estimator: sklearn.linear_model.LogisticRegression", f"estimator: {estimator}")

    message = refused(repo, "train")

    assert message.startswith(f"pipelines/loans.yaml:17: spec.model.estimator: {problem}"), message
    assert not (repo / "models").exists()


def test_classifier_for_a_forecast(repo: Path) -> None:
    done(repo, "ingest", "split", pipeline="sales")
    respec(repo, "estimator: sklearn.linear_model.Ridge, params: {alpha: 1.0}",
           "estimator: sklearn.linear_model.LogisticRegression", pipeline="sales")

    message = refused(repo, "train", "sales")

    assert message.startswith("pipelines/sales.yaml:12: spec.model.estimator: sklearn.linear_model."
                              "LogisticRegression is not a regressor, and a forecast task needs one")


def test_parameter_value_the_estimator_refuses(repo: Path) -> None:
    done(repo, "ingest", "split", "train")  # a model first: the refused run must leave it unchanged
    respec(repo, "C: 1.0", "C: -1.0")

    message = refused(repo, "train")

    assert message.startswith("pipelines/loans.yaml:18: spec.model.params.C: scikit-learn refused a "
                              "parameter: The 'C' parameter of LogisticRegression must be a float")


def test_search_over_a_value_the_estimator_refuses(repo: Path) -> None:
    done(repo, "ingest", "split")
    respec(repo, "    params: {C: 1.0, max_iter: 500}",
           "    params: {max_iter: 500}\n    search: {kind: grid, cv: 3, space: {C: [-1.0, 1.0]}}")

    message = refused(repo, "train")  # not a warning with a traceback, and a model of the other values

    assert message.startswith("pipelines/loans.yaml:19: spec.model.search.space.C: scikit-learn refused a "
                              "parameter: The 'C' parameter of LogisticRegression must be a float")


def test_search_over_a_parameter_the_estimator_does_not_take(repo: Path) -> None:
    done(repo, "ingest", "split")
    respec(repo, "    params: {C: 1.0, max_iter: 500}",
           "    params: {C: 1.0, max_iter: 500}\n    search: {kind: grid, space: {alpha: [0.1, 1.0]}}")

    message = refused(repo, "train")

    assert message.startswith("pipelines/loans.yaml:19: spec.model.search.space: sklearn.linear_model."
                              "LogisticRegression takes no parameter(s) alpha: ")


# --- forecast --------------------------------------------------------------------------------------


def test_forecast_lags_longer_than_the_training_series(repo: Path) -> None:
    respec(repo, "lags: [1, 4]", "lags: [1, 40]", pipeline="sales")
    done(repo, "ingest", "split", pipeline="sales")

    message = refused(repo, "train", "sales")

    assert message.startswith("pipelines/sales.yaml:12: spec.model.lags: the training series has 36 periods, "
                              "too short for lags up to 40 (needs at least 44): ")


def test_forecast_series_too_short_for_its_lags(repo: Path) -> None:
    save_csv(repo, table(repo, SALES_CSV).head(8), SALES_CSV)  # 2 years: 4 to train, 4 to test
    done(repo, "ingest", "split", pipeline="sales")

    message = refused(repo, "train", "sales")

    assert message.startswith("pipelines/sales.yaml:12: spec.model.lags: the training series has 4 periods, "
                              "too short for lags up to 4 (needs at least 8): ")


def test_forecast_with_a_period_twice(repo: Path) -> None:
    sales = table(repo, SALES_CSV)
    save_csv(repo, pd.concat([sales, sales.iloc[[5]]]), SALES_CSV)

    message = refused(repo, "ingest", "sales")

    assert message.startswith("pipelines/sales.yaml:9: spec.data.time: period '2011 Q2' of 'quarter' appears "
                              "2 times (first at data/raw/sales.csv row 6): ")


def test_forecast_time_column_misspelled(repo: Path) -> None:
    respec(repo, "time: quarter", "time: quater", pipeline="sales")

    message = refused(repo, "ingest", "sales")

    assert message == ("pipelines/sales.yaml:9: spec.data.time: column 'quater' is not in the data: "
                       "did you mean 'quarter'?")


def test_forecast_without_a_time_column(repo: Path) -> None:
    """Caught before any step runs: the schema requires a time column for a forecast."""
    edit(repo, "pipelines/sales.yaml", "    time: quarter\n", "")

    compiled = run_cli("compile", cwd=repo)

    assert compiled.exit_code == 2
    assert compiled.stderr.strip() == ("pipelines/sales.yaml:8:5: spec.data: missing required key 'time' "
                                       "(add it, or inherit it from a template)")


def test_step_run_by_hand_before_the_step_it_needs(repo: Path) -> None:
    done(repo, "ingest")

    message = refused(repo, "train")

    assert message == ("data/loans/train.parquet: not found: run the steps before this one, or "
                       "`modelops-ci run` the pipeline")


# --- through `modelops-ci run` (DVC runs the steps) ------------------------------------------------


def test_run_stops_at_a_missing_target_column(repo: Path) -> None:
    respec(repo, "column: default,", "column: defualt,")

    result = run_exe("run", "loans", cwd=repo)

    assert result.exit_code == 2, result.stderr
    assert ("pipelines/loans.yaml:10: spec.data.target.column: column 'defualt' is not in the data: "
            "did you mean 'default'?") in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (repo / "data/loans").exists()
    assert no_temp_files(repo)


def test_run_stops_at_an_estimator_that_is_not_one(repo: Path) -> None:
    respec(repo, "estimator: sklearn.linear_model.LogisticRegression", "estimator: collections.OrderedDict")

    result = run_exe("run", "loans", cwd=repo)

    assert result.exit_code == 2, result.stderr
    assert ("pipelines/loans.yaml:17: spec.model.estimator: collections.OrderedDict is a class, not a "
            "scikit-learn estimator") in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    assert (repo / "data/loans/train.parquet").is_file()  # the steps before it ran
    assert not (repo / "models").exists()
    assert no_temp_files(repo)
