"""MLflow tracking for real: SQLite in tmp_path, skops models, registered versions, lineage tags."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from modelops_ci.layout import STATE_DIR, Layout
from modelops_ci.ml import tracking
from modelops_ci.offline import QUIET_ENV
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.train import INPUT_EXAMPLE_ROWS
from tests.helpers.cli import Result, run_cli
from tests.helpers.paths import BIN
from tests.helpers.repos import git, make_ml_repo, write

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

STEPS = ("ingest", "split", "train", "evaluate")
LOANS_PARAMS = {"model.estimator": "sklearn.linear_model.LogisticRegression", "model.params.C": "1.0",
                "model.params.max_iter": "500", "split.kind": "stratified", "split.test_size": "0.3",
                "split.seed": "7"}
SALES_PARAMS = {"model.estimator": "sklearn.linear_model.Ridge", "model.params.alpha": "1.0",
                "model.lags": "[1, 4]", "model.season": "4", "split.kind": "temporal",
                "split.test_periods": "4"}


@dataclass
class Tracked:
    repo: Path
    steps: dict[tuple[str, str], Result]
    mlruns_in_cwd: bool

    def client(self) -> Any:
        from mlflow import MlflowClient

        uri = tracking.tracking_uri(self.repo)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _pin_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """What conftest's per-test fixture does, for a module-scoped repo."""
    for name in list(os.environ):
        if name.startswith("GIT_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    for name, value in QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def _steps(repo: Path, pipeline: str, *steps: str) -> dict[tuple[str, str], Result]:
    results = {}
    for step in steps:
        result = run_cli("step", step, pipeline, cwd=repo)
        assert result.exit_code == 0, f"{pipeline} {step}: {result}"
        results[pipeline, step] = result
    return results


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracked]:
    """Both pipelines run step by step in-process, with the repo's default tracking store.

    Both are trained before either is evaluated, as one process running several pipelines would.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        _pin_env(monkeypatch, tmp_path_factory.mktemp("home"))
        repo = make_ml_repo(tmp_path_factory.mktemp("tracked") / "ml")
        had_mlruns = (Path.cwd() / "mlruns").exists()
        steps = {**_steps(repo, "loans", "ingest", "split", "train"),
                 **_steps(repo, "sales", "ingest", "split", "train"),
                 **_steps(repo, "loans", "evaluate"), **_steps(repo, "sales", "evaluate")}
        yield Tracked(repo, steps, (Path.cwd() / "mlruns").exists() and not had_mlruns)


def _only_run(client: Any, experiment: str) -> Any:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def _card(repo: Path, pipeline: str) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((repo / Layout(pipeline).model_card).read_text())
    return card


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def _logged_model(client: Any, run: Any) -> Any:
    """The one model the run logged."""
    models = client.search_logged_models([run.info.experiment_id])
    [model] = [m for m in models if m.source_run_id == run.info.run_id]
    return model


@pytest.mark.parametrize(("pipeline", "params"), [("loans", LOANS_PARAMS), ("sales", SALES_PARAMS)])
def test_one_run_with_params_metrics_and_lineage(tracked: Tracked, pipeline: str,
                                                 params: dict[str, str]) -> None:
    repo, layout = tracked.repo, Layout(pipeline)
    run = _only_run(tracked.client(), pipeline)
    assert run.info.run_name == f"{pipeline}-train"
    assert run.data.params == params
    assert run.data.metrics == json.loads((repo / layout.metrics).read_text())
    tags = run.data.tags
    assert tags["modelops.pipeline"] == pipeline
    assert tags["modelops.stage"] == "train"
    assert tags["modelops.git_commit"] == git("rev-parse", "HEAD", cwd=repo).strip()
    assert tags[f"modelops.md5.{layout.train}"] == _md5(repo / layout.train)
    assert tags[f"modelops.md5.{layout.test}"] == _md5(repo / layout.test)
    assert tags["modelops.model_sha256"] == _card(repo, pipeline)["sha256"]


@pytest.mark.parametrize("pipeline", ["loans", "sales"])
def test_model_registered_as_version_1_with_its_sha256(tracked: Tracked, pipeline: str) -> None:
    client = tracked.client()
    run = _only_run(client, pipeline)
    versions = client.search_model_versions(f"name='{pipeline}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert versions[0].run_id == run.info.run_id
    assert versions[0].tags == {"sha256": _card(tracked.repo, pipeline)["sha256"]}
    assert versions[0].source == f"models:/{_logged_model(client, run).model_id}"


@pytest.mark.parametrize(("pipeline", "inputs"), [("loans", ["income", "debt", "age", "region"]),
                                                  ("sales", None)])
def test_logged_model_is_skops_with_signature_and_input_example(tracked: Tracked, pipeline: str,
                                                                 inputs: list[str] | None) -> None:
    from mlflow.models import Model

    client = tracked.client()
    folder = _local(_logged_model(client, _only_run(client, pipeline)).artifact_location)
    assert (folder / "model.skops").is_file()
    assert not list(folder.glob("*.pkl"))
    mlmodel = Model.load(folder)
    flavor = mlmodel.flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert flavor["pickled_model"] == "model.skops"
    assert flavor["skops_trusted_types"] == _card(tracked.repo, pipeline)["trusted_types"]
    assert mlmodel.signature is not None
    if inputs is not None:  # a forecast model takes an array of lag features, not named columns
        assert mlmodel.signature.inputs.input_names() == inputs
    example = mlmodel.load_input_example(str(folder))
    assert example is not None and len(example) == INPUT_EXAMPLE_ROWS


def _features(repo: Path, pipeline: str) -> Any:
    """Rows the model predicts from: test columns for a table, the logged input example for a forecast."""
    from modelops_ci.steps.frames import read_parquet

    card = _card(repo, pipeline)
    if card["task"] == "forecast":
        from mlflow.models import Model

        return Model.load(f"models:/{pipeline}/1").load_input_example()
    return read_parquet(repo / Layout(pipeline).test)[card["numeric"] + card["categorical"]]


@pytest.mark.parametrize("pipeline", ["loans", "sales"])
def test_registered_model_loads_back_and_predicts_like_the_model_file(tracked: Tracked,
                                                                       pipeline: str) -> None:
    import mlflow
    import numpy as np

    from modelops_ci.ml import model_store

    repo, layout = tracked.repo, Layout(pipeline)
    mlflow.set_tracking_uri(tracking.tracking_uri(repo))
    ours, _ = model_store.load(repo / layout.model, repo / layout.model_card)
    theirs = mlflow.sklearn.load_model(f"models:/{pipeline}/1")
    rows = _features(repo, pipeline)
    np.testing.assert_array_equal(theirs.predict(rows), ours.predict(rows))


def test_evaluation_metrics_belong_to_the_evaluated_model(tracked: Tracked) -> None:
    """Both models were trained before either was evaluated: each model gets its own metrics."""
    client = tracked.client()
    for pipeline in ("loans", "sales"):
        model = _logged_model(client, _only_run(client, pipeline))
        expected = json.loads((tracked.repo / Layout(pipeline).metrics).read_text())
        assert {m.key: m.value for m in model.metrics or []} == expected, pipeline


def test_registry_chatter_stays_off_the_terminal(tracked: Tracked) -> None:
    assert tracked.steps["loans", "train"].stderr == ""
    assert tracked.steps["loans", "train"].stdout.startswith("loans train: rows=280, sha256=")


def test_nothing_lands_outside_the_state_folder(tracked: Tracked) -> None:
    repo, client = tracked.repo, tracked.client()
    state = repo / STATE_DIR
    assert not tracked.mlruns_in_cwd
    assert not list(repo.rglob("mlruns"))
    assert [p.relative_to(repo) for p in repo.rglob("mlartifacts")] == [Path(STATE_DIR, "mlartifacts")]
    assert sorted(p.relative_to(state).parts[0] for p in state.iterdir()) == ["mlartifacts", "mlflow.db"]
    for pipeline in ("loans", "sales"):
        run = _only_run(client, pipeline)
        assert _local(run.info.artifact_uri).is_relative_to(state)
        assert _local(_logged_model(client, run).artifact_location).is_relative_to(state)
    models = [p for p in repo.rglob("MLmodel")]
    assert len(models) == 2 and all(p.is_relative_to(state) for p in models)


def test_retraining_registers_version_2_in_the_store_the_environment_names(
        ml_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    _steps(ml_repo, "loans", "ingest", "split", "train")
    first_commit, first_sha = git("rev-parse", "HEAD", cwd=ml_repo).strip(), _card(ml_repo, "loans")["sha256"]

    spec = ml_repo / "pipelines/loans.yaml"
    write(ml_repo, "pipelines/loans.yaml", spec.read_text().replace("C: 1.0", "C: 0.1"))
    assert run_cli("compile", cwd=ml_repo).exit_code == 0
    git("commit", "-qam", "smaller C", cwd=ml_repo)
    second_commit = git("rev-parse", "HEAD", cwd=ml_repo).strip()
    _steps(ml_repo, "loans", "evaluate")  # the model trained at the first commit, evaluated later
    first_metrics = json.loads((ml_repo / "reports/loans/metrics.json").read_text())
    mlflow.set_tracking_uri(uri)
    with mlflow.set_active_model(name="some-other-model"):  # e.g. set by a notebook or plug-in
        _steps(ml_repo, "loans", "train", "evaluate")

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = {str(v.version): v for v in client.search_model_versions("name='loans'")}
    assert sorted(versions) == ["1", "2"]
    second_sha = _card(ml_repo, "loans")["sha256"]
    assert second_sha != first_sha
    assert versions["1"].tags["sha256"] == first_sha and versions["2"].tags["sha256"] == second_sha
    first, second = (client.get_run(str(versions[v].run_id)) for v in ("1", "2"))
    assert first.data.params["model.params.C"] == "1.0" and second.data.params["model.params.C"] == "0.1"
    assert first.data.tags["modelops.git_commit"] == first_commit  # evaluating later keeps its lineage
    assert second.data.tags["modelops.git_commit"] == second_commit
    assert first.data.metrics == first_metrics
    second_metrics = json.loads((ml_repo / "reports/loans/metrics.json").read_text())
    assert second.data.metrics == second_metrics
    assert second.data.tags["modelops.evaluate.git_commit"] == second_commit
    assert first.data.tags["modelops.evaluate.git_commit"] == second_commit
    for run, metrics in ((first, first_metrics), (second, second_metrics)):
        assert {m.key: m.value for m in _logged_model(client, run).metrics or []} == metrics
    assert not (ml_repo / STATE_DIR / "mlflow.db").exists()


def test_tracking_turns_telemetry_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    ctx = StepContext(tmp_path, "loans", {"family": "telemetry"})
    tracking.log_evaluation(ctx.tracked, {"accuracy": 0.5, "mase": float("nan")}, {"sha256": "0" * 64}, [])

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert os.environ["DO_NOT_TRACK"] == "true"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = _only_run(client, "telemetry")  # no training run to attach to: a run of its own
    assert run.info.run_name == "loans-evaluate" and run.data.metrics == {"accuracy": 0.5}
    assert run.data.tags["modelops.stage"] == "evaluate"


@pytest.mark.parametrize(("uri", "local"), [
    ("sqlite:////tmp/elsewhere/mlflow.db", True), ("postgresql://user@db:5432/mlflow", True),
    ("mysql+pymysql://user@db/mlflow", True), ("/tmp/mlruns", True), ("file:///tmp/mlruns", True),
    ("http://mlflow.internal:5000", False), ("https://mlflow.example.com", False), ("databricks", False),
])
def test_artifacts_of_a_store_without_server_go_to_the_state_folder(tmp_path: Path, uri: str,
                                                                      local: bool) -> None:
    expected = (tmp_path / STATE_DIR / "mlartifacts").as_uri() if local else None
    assert tracking.artifact_location(tmp_path, uri) == expected
