"""The model steps on real data, driven as a user would (`modelops-ci step STEP PIPELINE`), with their
outputs checked against scikit-learn, pandas and DVC themselves:

- train: the preprocessing pipeline built from the declared column types (impute, one-hot, scale only
  for scale-sensitive estimators); `model.search` (grid and randomized);
- evaluate: its metrics against scikit-learn's on the saved hold-out predictions, and the forecast
  metrics (MAE, sMAPE, MASE against a seasonal naive forecast) against figures computed here by hand;
- evaluate's `dvc plots` data: the files, their content, the compiled `plots:` and `dvc plots show`.

One repo with six pipelines is trained once for the module; the tests only read it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, ParameterSampler, RandomizedSearchCV

from modelops_ci.ml import model_store
from tests.helpers.cli import run_cli
from tests.helpers.data import sales_csv
from tests.helpers.repos import git, make_ml_repo, write

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

CLASSIFIERS = ("loans", "loans-tree", "loans-grid", "loans-random")
REGRESSORS = ("houses",)
FORECASTS = ("sales",)
PIPELINES = CLASSIFIERS + REGRESSORS + FORECASTS
SEED = 7
GRID_C = [0.0001, 0.01, 1.0, 100.0]
RANDOM_SPACE = {"max_depth": [1, 2, 3, 4, 5, 6, 8], "min_samples_leaf": [1, 5, 10, 20, 40]}
RANDOM_ITER = 5
SEASON = 4
TEST_PERIODS = 4
TRAIN_PERIODS = 36  # sales_csv(): 10 years of quarters, the last 4 held out

LOANS_DATA = """\
  data:
    source: {path: data/raw/loans.csv}
    target: {column: default, positive: "yes"}
    features:
      numeric: [income, debt, age]
      categorical: [region]
  split: {kind: stratified, test_size: 0.3, seed: 7}
"""


def loans_variant(name: str, model: str) -> str:
    return (f"apiVersion: modelops/v1\nkind: Pipeline\nmetadata:\n  name: {name}\nspec:\n"
            f"  task: classification\n{LOANS_DATA}  model:\n{model}  metrics: [roc_auc, accuracy]\n")


EXTRA_SPECS = {
    "loans-tree": loans_variant("loans-tree", "    estimator: sklearn.tree.DecisionTreeClassifier\n"
                                              "    params: {max_depth: 4}\n"),
    "loans-grid": loans_variant("loans-grid", "    estimator: sklearn.linear_model.LogisticRegression\n"
                                              "    params: {max_iter: 500}\n"
                                              f"    search: {{kind: grid, cv: 3, scoring: roc_auc, "
                                              f"space: {{C: {GRID_C}}}}}\n"),
    "loans-random": loans_variant("loans-random", "    estimator: sklearn.tree.DecisionTreeClassifier\n"
                                                  f"    search: {{kind: random, cv: 3, n_iter: {RANDOM_ITER}, "
                                                  f"space: {json.dumps(RANDOM_SPACE)}}}\n"),
    "houses": """\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: houses
spec:
  task: regression
  data:
    source: {path: data/raw/houses.csv}
    target: {column: price}
    features:
      numeric: [size, rooms]
      categorical: [city]
  split: {kind: random, test_size: 0.25, seed: 3}
  model: {estimator: sklearn.linear_model.Ridge, params: {alpha: 1.0}}
  metrics: [rmse, mae, r2]
""",
}
LOANS_METRICS = "[roc_auc, accuracy, f1, precision, recall, log_loss, brier]"


def houses_csv(rows: int = 240, seed: int = 1) -> str:
    """A small regression table with a real signal and a few missing sizes."""
    rng = np.random.default_rng(seed)
    size = rng.normal(120, 30, rows).round(1)
    rooms = rng.integers(1, 7, rows)
    city = rng.choice(["lyon", "nantes", "paris"], rows)
    price = (40 + 2.0 * size + 12 * rooms + np.select([city == "paris", city == "lyon"], [80, 25], 0)
             + rng.normal(0, 15, rows)).round(1)
    frame = pd.DataFrame({"size": size, "rooms": rooms, "city": city, "price": price})
    frame.loc[[5, 50, 150], "size"] = np.nan
    return frame.to_csv(index=False)


# --- the trained repo ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {"repo": tmp_path_factory.mktemp("model") / "ml"}


@pytest.fixture
def repo(_built: dict[str, Path]) -> Path:
    """make_ml_repo's repo plus four pipelines, every pipeline ingested, split, trained and evaluated.

    Built once, lazily: here the test's isolated HOME and git identity are in place."""
    root = _built["repo"]
    if not (root / "reports/sales/plots/forecast.json").is_file():
        make_ml_repo(root)
        spec = root / "pipelines/loans.yaml"
        spec.write_text(spec.read_text().replace("[roc_auc, accuracy, brier]", LOANS_METRICS))
        write(root, "data/raw/houses.csv", houses_csv())
        for name, text in EXTRA_SPECS.items():
            write(root, f"pipelines/{name}.yaml", text)
        compiled = run_cli("compile", cwd=root)
        assert compiled.exit_code == 0, compiled.stderr
        git("add", "-A", cwd=root)
        git("commit", "-qm", "more pipelines", cwd=root)
        for pipeline in PIPELINES:
            for step in ("ingest", "split", "train", "evaluate"):
                result = run_cli("step", step, pipeline, cwd=root)
                assert result.exit_code == 0, (pipeline, step, result.stderr)
    return root


def load_model(repo: Path, pipeline: str) -> tuple[Any, dict[str, Any]]:
    """Through the project's sha256-checked skops loader."""
    return model_store.load(repo / f"models/{pipeline}/model.skops", repo / f"models/{pipeline}/model.json")


def table(repo: Path, relative: str) -> pd.DataFrame:
    return pd.read_parquet(repo / relative)


def metrics_of(repo: Path, pipeline: str) -> dict[str, float]:
    return json.loads((repo / f"reports/{pipeline}/metrics.json").read_text())


def plot(repo: Path, pipeline: str, name: str) -> list[dict[str, Any]]:
    return json.loads((repo / f"reports/{pipeline}/plots/{name}.json").read_text())


def loans_xy(repo: Path, pipeline: str, part: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = table(repo, f"data/{pipeline}/{part}.parquet")
    return frame[["income", "debt", "age", "region"]], (frame["default"] == "yes").astype(int)


# --- train: preprocessing from the column types ----------------------------------------------------


def test_linear_model_imputes_one_hot_encodes_and_scales(repo: Path) -> None:
    model, card = load_model(repo, "loans")
    train, _ = loans_xy(repo, "loans", "train")

    assert [name for name, _ in model.steps] == ["prepare", "model"]
    assert type(model.named_steps["model"]).__name__ == "LogisticRegression"
    assert card["numeric"] == ["income", "debt", "age"] and card["categorical"] == ["region"]
    prepare = model.named_steps["prepare"]
    numeric, categorical = prepare.named_transformers_["numeric"], prepare.named_transformers_["categorical"]
    assert [type(s).__name__ for s in numeric] == ["SimpleImputer", "StandardScaler"]
    assert [type(s).__name__ for s in categorical] == ["SimpleImputer", "OneHotEncoder"]
    imputer, scaler = numeric
    assert imputer.strategy == "median"
    assert imputer.statistics_ == pytest.approx(train[["income", "debt", "age"]].median().to_numpy())
    assert scaler.mean_ == pytest.approx(train[["income", "debt", "age"]].mean().to_numpy())
    assert scaler.scale_ == pytest.approx(train[["income", "debt", "age"]].std(ddof=0).to_numpy())
    assert categorical[0].strategy == "most_frequent"
    assert [list(c) for c in categorical[1].categories_] == [["east", "north", "south"]]
    assert list(prepare.get_feature_names_out()) == ["income", "debt", "age",
                                                     "region_east", "region_north", "region_south"]
    # the model sees standardised numbers and 0/1 indicators
    prepared = prepare.transform(train)
    assert prepared[:, :3].mean(axis=0) == pytest.approx([0, 0, 0], abs=1e-9)
    assert prepared[:, :3].std(axis=0) == pytest.approx([1, 1, 1])
    assert set(np.unique(prepared[:, 3:])) == {0.0, 1.0}
    assert (prepared[:, 3:].sum(axis=1) == 1).all()


def test_tree_model_imputes_and_one_hot_encodes_but_does_not_scale(repo: Path) -> None:
    model, _ = load_model(repo, "loans-tree")
    train, _ = loans_xy(repo, "loans-tree", "train")

    assert type(model.named_steps["model"]).__name__ == "DecisionTreeClassifier"
    assert model.named_steps["model"].max_depth == 4
    assert model.named_steps["model"].random_state == SEED  # seeded from spec.split.seed
    prepare = model.named_steps["prepare"]
    numeric = prepare.named_transformers_["numeric"]
    assert [type(s).__name__ for s in numeric] == ["SimpleImputer"]
    assert [type(s).__name__ for s in prepare.named_transformers_["categorical"]] == [
        "SimpleImputer", "OneHotEncoder"]
    # raw values pass through unscaled
    prepared = prepare.transform(train)
    assert prepared[:, :3] == pytest.approx(train[["income", "debt", "age"]].to_numpy(dtype=float))


@pytest.mark.parametrize("pipeline", ["loans", "loans-tree"])
def test_row_with_a_missing_number_or_category_predicts_as_its_imputed_row(repo: Path, pipeline: str) -> None:
    model, _ = load_model(repo, pipeline)
    train, _ = loans_xy(repo, pipeline, "train")
    median_income = float(train["income"].median())
    commonest = train["region"].value_counts().idxmax()
    rows = pd.DataFrame({"income": [np.nan, median_income, 60.0, 60.0],
                         "debt": [25.0, 25.0, 10.0, 10.0],
                         "age": [40, 40, 33, 33],
                         "region": ["north", "north", None, commonest]})

    scores = model.predict_proba(rows)[:, 1]

    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    assert scores[0] == pytest.approx(scores[1], abs=1e-12)  # NaN income = the training median
    assert scores[2] == pytest.approx(scores[3], abs=1e-12)  # no region = the commonest one
    assert model.predict(rows).tolist() == [int(s >= 0.5) for s in scores]


def test_regression_pipeline_fills_missing_sizes_with_the_training_median(repo: Path) -> None:
    model, card = load_model(repo, "houses")
    train = table(repo, "data/houses/train.parquet")
    assert train["size"].isna().any()  # the data has gaps for the imputer to fill

    numeric = model.named_steps["prepare"].named_transformers_["numeric"]
    assert [type(s).__name__ for s in numeric] == ["SimpleImputer", "StandardScaler"]  # Ridge: linear
    assert numeric[0].statistics_ == pytest.approx(train[["size", "rooms"]].median().to_numpy())
    assert card["task"] == "regression" and card["positive"] is None
    row = pd.DataFrame({"size": [np.nan, float(train["size"].median())], "rooms": [3, 3],
                        "city": ["paris", "paris"]})
    gap, filled = model.predict(row)
    assert gap == pytest.approx(filled, abs=1e-9)


# --- train: model.search ---------------------------------------------------------------------------


def test_grid_search_keeps_the_candidate_cross_validation_prefers(repo: Path) -> None:
    model, card = load_model(repo, "loans-grid")
    X, y = loans_xy(repo, "loans-grid", "train")
    chosen = model.named_steps["model"].C

    assert chosen in GRID_C
    assert model.named_steps["model"].max_iter == 500  # spec.model.params kept beside the searched one
    # the same search, run here on the training split, picks the same value
    ours = GridSearchCV(clone(model), {"model__C": GRID_C}, cv=3, scoring="roc_auc").fit(X, y)
    assert ours.best_params_ == {"model__C": chosen}
    assert len(set(np.round(ours.cv_results_["mean_test_score"], 6))) > 1  # a real choice was made
    # the refit on the whole training split is the model that was saved
    assert model.predict_proba(X)[:, 1] == pytest.approx(ours.best_estimator_.predict_proba(X)[:, 1])
    assert card["sha256"] and card["numeric"] == ["income", "debt", "age"]
    # the card says what was chosen, and how well it scored in cross-validation
    assert card["search"] == {"best_params": {"C": chosen}, "scoring": "roc_auc",
                              "best_cv_score": pytest.approx(ours.best_score_)}


def test_randomized_search_keeps_one_of_the_sampled_candidates(repo: Path) -> None:
    model, card = load_model(repo, "loans-random")
    X, y = loans_xy(repo, "loans-random", "train")
    tree = model.named_steps["model"]
    chosen = {"model__max_depth": tree.max_depth, "model__min_samples_leaf": tree.min_samples_leaf}
    space = {f"model__{k}": v for k, v in RANDOM_SPACE.items()}
    sampled = list(ParameterSampler(space, RANDOM_ITER, random_state=SEED))  # seeded from spec.split.seed

    assert len(sampled) == RANDOM_ITER
    assert tree.max_depth in RANDOM_SPACE["max_depth"]
    assert tree.min_samples_leaf in RANDOM_SPACE["min_samples_leaf"]
    assert chosen in sampled
    ours = RandomizedSearchCV(clone(model), space, n_iter=RANDOM_ITER, cv=3, random_state=SEED).fit(X, y)
    assert ours.best_params_ == chosen
    assert card["search"]["best_params"] == {k.removeprefix("model__"): v for k, v in chosen.items()}
    assert card["search"]["best_cv_score"] == pytest.approx(ours.best_score_)


def test_mlflow_run_records_the_search_settings(repo: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / '.modelops/mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["loans-grid"], output_format="list")
    trained = [r for r in runs if r.data.tags.get("modelops.stage") == "train"]

    assert len(trained) == 1
    params = trained[0].data.params
    assert params["model.estimator"] == "sklearn.linear_model.LogisticRegression"
    assert params["model.search.kind"] == "grid"
    assert yaml.safe_load(params["model.search.space.C"]) == GRID_C
    card = load_model(repo, "loans-grid")[1]
    assert float(params["search.best.C"]) == card["search"]["best_params"]["C"]
    assert trained[0].data.metrics["search.best_cv_score"] == pytest.approx(card["search"]["best_cv_score"])
    assert trained[0].data.tags["modelops.model_sha256"] == load_model(repo, "loans-grid")[1]["sha256"]
    assert trained[0].data.metrics["roc_auc"] == metrics_of(repo, "loans-grid")["roc_auc"]


# --- evaluate: metrics -----------------------------------------------------------------------------


def test_classification_predictions_are_the_models_on_the_hold_out(repo: Path) -> None:
    model, _ = load_model(repo, "loans")
    X, y = loans_xy(repo, "loans", "test")
    predictions = table(repo, "reports/loans/predictions.parquet")

    assert len(predictions) == len(X) == 120  # 30% of 400
    assert predictions["y_true"].tolist() == y.tolist()
    assert predictions["y_score"].to_numpy() == pytest.approx(model.predict_proba(X)[:, 1], abs=1e-12)
    assert predictions["y_pred"].tolist() == (predictions["y_score"] >= 0.5).astype(int).tolist()
    assert predictions["region"].tolist() == X["region"].tolist()  # a sensitive column, for the gates


def test_classification_metrics_equal_scikit_learns(repo: Path) -> None:
    predictions = table(repo, "reports/loans/predictions.parquet")
    y, p, s = predictions["y_true"], predictions["y_pred"], predictions["y_score"]
    expected = {
        "roc_auc": skm.roc_auc_score(y, s),
        "accuracy": skm.accuracy_score(y, p),
        "f1": skm.f1_score(y, p),
        "precision": skm.precision_score(y, p),
        "recall": skm.recall_score(y, p),
        "log_loss": skm.log_loss(y, s),
        "brier": skm.brier_score_loss(y, s),
    }

    found = metrics_of(repo, "loans")

    assert found == pytest.approx(expected, rel=1e-12)
    assert found["roc_auc"] > 0.8 and found["accuracy"] > 0.7  # the data has a real signal
    assert metrics_of(repo, "loans-tree").keys() == {"roc_auc", "accuracy"}  # only the spec's metrics


def test_regression_metrics_equal_scikit_learns(repo: Path) -> None:
    model, _ = load_model(repo, "houses")
    test = table(repo, "data/houses/test.parquet")
    predictions = table(repo, "reports/houses/predictions.parquet")
    y, p = predictions["y_true"], predictions["y_pred"]

    assert len(predictions) == 60 and y.tolist() == test["price"].tolist()
    assert p.to_numpy() == pytest.approx(model.predict(test[["size", "rooms", "city"]]), abs=1e-9)
    found = metrics_of(repo, "houses")
    assert found == pytest.approx({"rmse": math.sqrt(skm.mean_squared_error(y, p)),
                                   "mae": skm.mean_absolute_error(y, p),
                                   "r2": skm.r2_score(y, p)}, rel=1e-12)
    assert found["r2"] > 0.8


def sales_series() -> list[float]:
    """The sales units in time order, as conftest writes them."""
    return [float(line.split(",")[1]) for line in sales_csv().splitlines()[1:]]


def test_forecast_is_recursive_from_the_end_of_training(repo: Path) -> None:
    model, card = load_model(repo, "sales")
    series = sales_series()
    predictions = table(repo, "reports/sales/predictions.parquet")

    assert predictions["time"].tolist() == ["2019 Q1", "2019 Q2", "2019 Q3", "2019 Q4"]
    assert predictions["y_true"].tolist() == series[TRAIN_PERIODS:]
    assert card["n_train"] == TRAIN_PERIODS and card["lags"] == [1, 4] and card["season"] == SEASON
    # lags 1 and 4, quarter indicators (Q1 the baseline), a trend; later steps feed on earlier forecasts
    history = list(series[:TRAIN_PERIODS])
    for t in range(TRAIN_PERIODS, TRAIN_PERIODS + TEST_PERIODS):
        row = [history[t - 1], history[t - 4]] + [float(t % SEASON == s) for s in (1, 2, 3)] + [float(t)]
        history.append(float(model.predict([row])[0]))
    assert predictions["y_pred"].tolist() == pytest.approx(history[TRAIN_PERIODS:], abs=1e-9)


def test_forecast_metrics_match_their_definitions(repo: Path) -> None:
    series = sales_series()
    train, actual = np.array(series[:TRAIN_PERIODS]), np.array(series[TRAIN_PERIODS:])
    forecast = table(repo, "reports/sales/predictions.parquet")["y_pred"].to_numpy()
    mae = float(np.mean(np.abs(actual - forecast)))
    smape = 100 * float(np.mean(2 * np.abs(forecast - actual) / (np.abs(actual) + np.abs(forecast))))
    # MASE: the MAE over the in-sample MAE of the seasonal naive forecast (y[t] = y[t - season])
    naive_mae = float(np.mean(np.abs(train[SEASON:] - train[:-SEASON])))

    found = metrics_of(repo, "sales")

    assert found == pytest.approx({"mae": mae, "smape": smape, "mase": mae / naive_mae}, rel=1e-12)
    _, card = load_model(repo, "sales")
    assert card["mase_scale"] == pytest.approx(naive_mae, rel=1e-12)
    assert found["mase"] < 1  # better than the seasonal naive forecast on this trending series


# --- evaluate: dvc plots ---------------------------------------------------------------------------


PLOT_FILES = {"loans": ["calibration", "precision_recall", "roc"], "houses": ["residuals"],
              "sales": ["forecast"]}


def test_evaluate_writes_the_plots_the_compiled_pipeline_declares(repo: Path) -> None:
    for pipeline, names in PLOT_FILES.items():
        compiled = yaml.safe_load((repo / f"compiled/{pipeline}/dvc.yaml").read_text())
        # top-level plots are relative to compiled/<pipeline>/; the files are evaluate's uncached outputs
        declared = {path.removeprefix("../../"): axes for entry in compiled["plots"] for path, axes in entry.items()}
        outs = {path: spec for entry in compiled["stages"]["evaluate"]["outs"] if isinstance(entry, dict)
                for path, spec in entry.items()}
        written = sorted(p.stem for p in (repo / f"reports/{pipeline}/plots").glob("*"))

        assert written == names
        assert sorted(declared) == [f"reports/{pipeline}/plots/{name}.json" for name in names]
        for path, axes in declared.items():
            assert outs[path] == {"cache": False}, path
            points = json.loads((repo / path).read_text())
            fields = {axes["x"], *(axes["y"] if isinstance(axes["y"], list) else [axes["y"]])}
            assert points, path
            assert all(fields <= set(point) for point in points), path


def test_roc_and_precision_recall_curves(repo: Path) -> None:
    predictions = table(repo, "reports/loans/predictions.parquet")
    roc, pr = plot(repo, "loans", "roc"), plot(repo, "loans", "precision_recall")
    fpr, tpr = np.array([p["fpr"] for p in roc]), np.array([p["tpr"] for p in roc])

    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    full_fpr, full_tpr, _ = skm.roc_curve(predictions["y_true"], predictions["y_score"])
    assert len(roc) == len(full_fpr)  # fewer than 200 points: none thinned out
    assert fpr == pytest.approx(full_fpr) and tpr == pytest.approx(full_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics_of(repo, "loans")["roc_auc"], rel=1e-9)

    recall, precision = np.array([p["recall"] for p in pr]), np.array([p["precision"] for p in pr])
    assert recall[0] == 1.0 and (recall[-1], precision[-1]) == (0.0, 1.0)
    assert (np.diff(recall) <= 0).all()
    assert ((precision >= 0) & (precision <= 1)).all()
    assert precision[0] == pytest.approx(predictions["y_true"].mean())  # every row called positive


def test_calibration_curve_bins_the_scores(repo: Path) -> None:
    predictions = table(repo, "reports/loans/predictions.parquet")
    points = plot(repo, "loans", "calibration")
    predicted = np.array([p["predicted"] for p in points])
    observed = np.array([p["observed"] for p in points])

    assert 2 <= len(points) <= 10
    assert (np.diff(predicted) > 0).all()
    assert ((predicted >= 0) & (predicted <= 1) & (observed >= 0) & (observed <= 1)).all()
    # quantile bins of equal size: their mean score and rate of positives average to the overall ones
    assert predicted.mean() == pytest.approx(predictions["y_score"].mean(), abs=0.02)
    assert observed.mean() == pytest.approx(predictions["y_true"].mean(), abs=0.02)
    assert observed[-1] > observed[0]  # higher scores, more defaults


def test_residuals_plot_is_truth_minus_prediction(repo: Path) -> None:
    predictions = table(repo, "reports/houses/predictions.parquet")
    points = plot(repo, "houses", "residuals")

    assert [p["predicted"] for p in points] == pytest.approx(predictions["y_pred"].tolist())
    assert [p["residual"] for p in points] == pytest.approx(
        (predictions["y_true"] - predictions["y_pred"]).tolist())
    assert float(np.mean([abs(p["residual"]) for p in points])) == pytest.approx(
        metrics_of(repo, "houses")["mae"])


def test_forecast_plot_pairs_each_period_with_its_actual_value(repo: Path) -> None:
    predictions = table(repo, "reports/sales/predictions.parquet")

    assert plot(repo, "sales", "forecast") == [
        {"period": i, "time": t, "actual": a, "forecast": pytest.approx(f)}
        for i, (t, a, f) in enumerate(zip(["2019 Q1", "2019 Q2", "2019 Q3", "2019 Q4"],
                                          sales_series()[TRAIN_PERIODS:], predictions["y_pred"], strict=True), 1)]


def test_dvc_plots_show_accepts_every_plot(repo: Path) -> None:
    shown = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=repo,
                           capture_output=True, text=True, check=False, timeout=120)
    assert shown.returncode == 0, shown.stderr
    output = json.loads(shown.stdout)

    assert not output.get("errors"), output["errors"]
    expected = {f"reports/{p}/plots/{name}.json": (p, name) for p in ("loans", "loans-tree", "loans-grid",
                                                                        "loans-random")
                for name in PLOT_FILES["loans"]}
    expected |= {"reports/houses/plots/residuals.json": ("houses", "residuals"),
                 "reports/sales/plots/forecast.json": ("sales", "forecast")}
    assert set(output["data"]) == set(expected)
    axes = {"roc": ("fpr", "tpr"), "precision_recall": ("recall", "precision"),
            "calibration": ("predicted", "observed"), "residuals": ("predicted", "residual"),
            "forecast": ("period", "actual", "forecast")}
    for path, (pipeline, name) in expected.items():
        (rendered,) = output["data"][path]
        content = rendered["content"]
        x, *ys = axes[name]
        assert content["encoding"]["x"]["field"] == x
        assert content["encoding"]["x"]["type"] == "quantitative"
        assert all(isinstance(point[x], int | float) for point in content["data"]["values"]), path
        # every y field is drawn, each over every point of the file
        drawn = [point.get("field", ys[0]) for point in content["data"]["values"]]
        assert sorted(set(drawn)) == sorted(ys), path
        assert len(drawn) == len(ys) * len(plot(repo, pipeline, name)), path
