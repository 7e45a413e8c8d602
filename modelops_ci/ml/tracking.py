"""MLflow: one run per trained model, with its params, metrics, lineage tags and the model itself
(skops, never pickle) registered as a version of the model named after the pipeline.

The tracking URI comes from MLFLOW_TRACKING_URI; by default a SQLite file in the repo's ignored
state folder. MLflow is imported only here, and only by the steps that log.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci import git
from modelops_ci.layout import STATE_DIR
from modelops_ci.offline import apply as stay_offline

if TYPE_CHECKING:
    pass

SERVED_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc")


@dataclass(frozen=True)
class Tracked:
    """What MLflow is told of a pipeline, as plain values (tracking knows no step internals):
    the repo, the pipeline (the registered model's name) and the experiment it logs to."""

    root: Path
    pipeline: str
    experiment: str


@dataclass(frozen=True)
class Training:
    """One trained model to log: the model, an input example, the params to log, the card's facts
    (search results), its sha256, the types it holds, and the files it was trained from."""

    model: Any
    example: Any
    params: dict[str, Any]
    facts: dict[str, Any]
    sha256: str
    trusted_types: list[str]
    inputs: list[str]


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / STATE_DIR / 'mlflow.db'}"


@contextlib.contextmanager
def _tracking(tracked: Tracked) -> Iterator[Any]:
    """MLflow set up for this repo. `set_tracking_uri` changes process-wide state (a module
    global and os.environ); both are put back afterwards, so one repo's store never leaks into
    the next in the same process. (MLflow offers no public way to undo it.)"""
    stay_offline()
    from mlflow.tracking._tracking_service import utils as tracking_state

    before_env, before_global = os.environ.get("MLFLOW_TRACKING_URI"), tracking_state._tracking_uri
    try:
        yield _mlflow(tracked)
    finally:
        tracking_state._tracking_uri = before_global
        if before_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before_env


def _mlflow(tracked: Tracked) -> Any:
    stay_offline()
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    uri = tracking_uri(tracked.root)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(tracked.experiment) is None:
        mlflow.create_experiment(tracked.experiment, artifact_location=artifact_location(tracked.root, uri))
    mlflow.set_experiment(tracked.experiment)
    return mlflow


def artifact_location(root: Path, uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: the state folder, unless a server decides.

    Without a tracking server (a file or database store, SQLite or PostgreSQL alike) MLflow
    would put them in ./mlruns under whatever the working directory is.
    """
    served = uri.partition("://")[0] in SERVED_SCHEMES or uri in ("databricks", "databricks-uc")
    return None if served else (root / STATE_DIR / "mlartifacts").as_uri()


def lineage_tags(tracked: Tracked, stage: str, inputs: list[str]) -> dict[str, str]:
    commit = git.run("rev-parse", "HEAD", cwd=tracked.root, check=False).stdout.strip() or "uncommitted"
    tags = {"modelops.pipeline": tracked.pipeline, "modelops.stage": stage, "modelops.git_commit": commit}
    for relative in inputs:
        path = tracked.root / relative
        if path.is_file():
            tags[f"modelops.md5.{relative}"] = _md5(path)  # DVC's own file hash
    return tags


def log_training(tracked: Tracked, trained: Training) -> None:
    with _tracking(tracked) as mlflow:
        from mlflow.models import infer_signature

        tags = {**lineage_tags(tracked, "train", trained.inputs), "modelops.model_sha256": trained.sha256}
        with mlflow.start_run(run_name=f"{tracked.pipeline}-train", tags=tags):
            mlflow.log_params(_flatten(trained.params))
            search = trained.facts.get("search")
            if search:
                mlflow.log_params(_flatten({"search.best": search["best_params"]}))
                mlflow.log_metric("search.best_cv_score", search["best_cv_score"])
            example = trained.example
            # MLflow prints registry chatter ("Successfully registered model...") to stderr.
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                info = mlflow.sklearn.log_model(
                    trained.model, name="model", serialization_format="skops",
                    skops_trusted_types=trained.trusted_types,
                    signature=infer_signature(example, trained.model.predict(example)),
                    input_example=example, registered_model_name=tracked.pipeline,
                    pip_requirements=_requirements(),
                )
            if info.registered_model_version is not None:
                client = mlflow.MlflowClient()
                version = str(info.registered_model_version)
                client.set_model_version_tag(tracked.pipeline, version, "sha256", trained.sha256)


def log_evaluation(tracked: Tracked, metrics: dict[str, float], facts: dict[str, Any], inputs: list[str]) -> None:
    """Metrics go to the run that trained this exact model (found by its sha256) and to the model.

    The training run keeps its lineage: the commit it was trained at stays `modelops.git_commit`
    even when the model is evaluated again at a later commit (e.g. after a change of metrics).
    """
    with _tracking(tracked) as mlflow:
        found = mlflow.search_runs(filter_string=f"tags.`modelops.model_sha256` = '{facts['sha256']}'",
                                   max_results=1, order_by=["attributes.start_time DESC"], output_format="list")
        training = found[0] if found else None
        tags = lineage = lineage_tags(tracked, "evaluate", inputs)
        if training is not None:
            tags = {k: v for k, v in lineage.items() if k.startswith("modelops.md5.")}
            tags["modelops.evaluate.git_commit"] = lineage["modelops.git_commit"]
        with mlflow.start_run(run_id=training.info.run_id if training else None,
                              run_name=None if training else f"{tracked.pipeline}-evaluate"):
            mlflow.set_tags(tags)
            # Name the model: otherwise MLflow links the metrics to the process's "active model"
            # (mlflow.set_active_model, MLFLOW_ACTIVE_MODEL_ID) when one is set, not the one evaluated.
            mlflow.log_metrics({k: v for k, v in metrics.items() if v == v},  # NaN is not loggable
                               model_id=_model_id(training))


class FamilyRun:
    """The MLflow runs of one batched stage: a parent run, and a child run per series that ran,
    logged as each series' record arrives (while the workers fit the next ones). Each child is one
    create and one batch of metrics, params and tags: no call per value, and no model upload (DVC
    versions the models; the child names its sha256)."""

    def __init__(self, tracked: Tracked) -> None:
        """Connect to the store (~1 s for SQLite: its schema is checked) before any series is done;
        the parent run itself is created with the first record, so a stage that ran no series
        leaves no run."""
        self._tracked = tracked
        self._context = _tracking(tracked)
        mlflow = self._context.__enter__()
        self._client = mlflow.MlflowClient()
        self._experiment = mlflow.get_experiment_by_name(tracked.experiment).experiment_id
        self._lineage = lineage_tags(tracked, "batch", [])
        self._parent: str | None = None
        self._time = 0

    def _parent_run(self) -> str:
        if self._parent is None:
            parent = self._client.create_run(self._experiment, run_name=f"{self._tracked.pipeline}-batch",
                                             tags={**self._lineage, "modelops.family": self._tracked.pipeline})
            self._parent, self._time = parent.info.run_id, parent.info.start_time
        return self._parent

    def log_series(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        parent = self._parent_run()
        tags = {**self._lineage, "mlflow.parentRunId": parent, "modelops.family": self._tracked.pipeline,
                "modelops.series": record["series"], "modelops.verdict": record["verdict"]}
        if record.get("model_sha256"):
            tags["modelops.model_sha256"] = record["model_sha256"]
        child = self._client.create_run(self._experiment, run_name=record["series"], tags=tags,
                                        start_time=self._time)
        metrics = [Metric(k, float(v), self._time, 0) for k, v in sorted(record["metrics"].items()) if v is not None]
        self._client.log_batch(child.info.run_id, metrics=metrics, params=[Param("rows", str(record["rows"]))],
                               tags=[RunTag("modelops.reason", record["reason"][:5000])])
        self._client.set_terminated(child.info.run_id, end_time=self._time)

    def log_family(self, metrics: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        parent = self._parent_run()
        values = [Metric(k, float(v), self._time, 0) for k, v in sorted(metrics.items())
                  if isinstance(v, (int, float)) and v == v]
        self._client.log_batch(parent, metrics=values)

    def __enter__(self) -> FamilyRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """The parent run ends FINISHED, or FAILED when the stage stopped half-way."""
        try:
            if self._parent is not None:
                self._client.set_terminated(self._parent, status="FINISHED" if kind is None else "FAILED")
        finally:
            self._context.__exit__(None, None, None)


def _model_id(run: Any) -> str | None:
    outputs = run.outputs.model_outputs if run is not None and run.outputs else []
    return str(outputs[0].model_id) if outputs else None


def _requirements() -> list[str]:
    # Given explicitly so MLflow does not load the model in a subprocess to infer them.
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "skops", "numpy", "pandas")]


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
