"""The engines a team shares, for real on loopback: a DVC remote on S3 (moto's server) set only by
.dvc/config and the usual AWS variables, and an `mlflow server` (SQLite, proxied artifacts) chosen
only by MLFLOW_TRACKING_URI. Each server starts once for the module; every test works on a copy of
the trained registry repo (tests/helpers/registry.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_ci.layout import STATE_DIR, Layout
from tests.helpers.cli import run_cli, run_exe
from tests.helpers.paths import BIN
from tests.helpers.registry import PIPELINE, assign, register, trained_repo
from tests.helpers.repos import git
from tests.helpers.servers import AWS_ENV, MlflowServer, S3Server, mlflow_server, moto_s3

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

BUCKET = "models"
PREFIX = "credit/dvc"
REMOTE = "s3"
STAGE = "staging"
OUTPUT_KINDS = ("outs", "metrics", "plots")  # what a dvc.yaml stage writes; its dvc.lock lists them all as outs
Case = Callable[[S3Server, pytest.MonkeyPatch], tuple[str, str, str]]  # -> remote URL, endpoint, what run says


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture(scope="module")
def mlflow_at(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Started first and waited for last: it boots while the test copies and signs."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The usual AWS variables and no other: nothing of the caller's AWS set-up leaks in."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    return AWS_ENV


def dvc(root: Path, *args: str) -> str:
    done = subprocess.run([str(BIN / "dvc"), *args], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def use_s3(root: Path, url: str, endpoint: str) -> None:
    """What a user types: the default remote on a bucket, and the S3-compatible server it lives on."""
    dvc(root, "remote", "add", "-d", "-f", REMOTE, url)
    dvc(root, "remote", "modify", REMOTE, "endpointurl", endpoint)


def cached_outputs(root: Path, pipeline: str) -> dict[str, str]:
    """path -> md5 of the pipeline's outputs DVC caches (and pushes), as its dvc.lock records them;
    the `cache: false` ones are committed to git instead."""
    layout = Layout(pipeline)
    in_git = set()
    for stage in yaml.safe_load((root / layout.stages).read_text(encoding="utf-8"))["stages"].values():
        for kind in OUTPUT_KINDS:
            in_git |= {_path(out) for out in stage.get(kind, []) if _uncached(out)}
    cached = {}
    for stage in yaml.safe_load((root / layout.lock).read_text(encoding="utf-8"))["stages"].values():
        cached |= {out["path"]: out["md5"] for out in stage.get("outs", []) if out["path"] not in in_git}
    return cached


def _path(out: str | dict[str, Any]) -> str:
    """A dvc.yaml output is its path, or {path: settings}."""
    return out if isinstance(out, str) else next(iter(out))


def _uncached(out: str | dict[str, Any]) -> bool:
    return isinstance(out, dict) and out[_path(out)].get("cache") is False


def secrets_in(text: str) -> list[str]:
    return [name for name, value in AWS_ENV.items() if name != "AWS_DEFAULT_REGION" and value in text]


# -- DVC on S3 ------------------------------------------------------------------------------------


def test_run_pushes_to_s3_and_a_fresh_clone_pulls_the_model(registry_template: Path, s3: S3Server,
                                                           aws: dict[str, str], tmp_path: Path) -> None:
    root = trained_repo(registry_template, tmp_path / "repo").root
    use_s3(root, f"s3://{BUCKET}/{PREFIX}", s3.endpoint)
    git("commit", "-qm", "DVC remote on S3", "--", ".dvc/config", cwd=root)

    ran = run_exe("run", PIPELINE, cwd=root)

    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert "outputs pushed to the DVC remote" in ran.stdout
    expected = cached_outputs(root, PIPELINE)
    assert {"models/loans/model.skops", "data/loans/train.parquet"} <= set(expected)
    objects = {f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}" for md5 in expected.values()}
    assert set(s3.keys(BUCKET, f"{PREFIX}/")) == objects

    clone = tmp_path / "clone"
    git("clone", "-q", str(root), str(clone), cwd=tmp_path)
    dvc(clone, "pull", f"{Layout(PIPELINE).stages}")  # from S3 only: the clone has no cache and no other remote
    for path in ("models/loans/model.skops", "models/loans/model.json"):
        assert (clone / path).read_bytes() == (root / path).read_bytes(), path


def _wrong_bucket(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    return f"s3://no-such-bucket/{PREFIX}", s3.endpoint, "the push failed (The specified bucket does not exist)"


def _no_credentials(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # botocore would ask the network for a role
    return f"s3://{BUCKET}/{PREFIX}", s3.endpoint, "the push failed (Unable to locate credentials)"


# An unreachable endpoint is classified by tests/unit/test_remote_errors.py: end to end it costs
# s3fs's ~19 s of retries, a third of this file's time.
@pytest.mark.parametrize("case", [_wrong_bucket, _no_credentials], ids=["wrong-bucket", "no-credentials"])
def test_an_unusable_s3_remote_is_exit_2_naming_it_without_secrets(
        case: Case, registry_template: Path, s3: S3Server, aws: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = trained_repo(registry_template, tmp_path / "repo").root
    url, endpoint, what = case(s3, monkeypatch)
    use_s3(root, url, endpoint)

    ran = run_exe("run", PIPELINE, cwd=root)

    assert ran.exit_code == 2, ran.stdout + ran.stderr
    assert ran.stderr.startswith(f"DVC remote '{REMOTE}' ({url} at {endpoint}): {what}"), ran.stderr
    assert f"`dvc remote modify {REMOTE} " in ran.stderr and "run` again only pushes" in ran.stderr
    assert "Traceback" not in ran.stderr and "internal error" not in ran.stderr
    assert secrets_in(ran.stdout + ran.stderr) == []


# -- an MLflow tracking server --------------------------------------------------------------------


def test_runs_models_and_aliases_land_on_the_mlflow_server(mlflow_at: MlflowServer, registry_template: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from modelops_ci.ml import model_store

    trained = trained_repo(registry_template, tmp_path / "repo")
    root, layout, state = trained.root, Layout(PIPELINE), trained.root / STATE_DIR
    (state / "mlflow.db").unlink()  # where the template's own training logged
    shutil.rmtree(state / "mlartifacts")
    register(trained, "ci-bot")
    assign(trained, STAGE, 1, "ci-bot")  # signed by a key the policy allows: sync-mlflow follows it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_at.wait().uri)

    for step in ("train", "evaluate"):  # in this process, as test_tracking.py does: ~2 s less each
        done = run_cli("step", step, PIPELINE, cwd=root)
        assert done.exit_code == 0, f"{step}: {done.stdout}{done.stderr}"

    client = MlflowClient(tracking_uri=mlflow_at.uri)
    sha256 = model_store.read_card(root / layout.model_card)["sha256"]
    experiment = client.get_experiment_by_name(PIPELINE)
    (run,) = client.search_runs([experiment.experiment_id], f"tags.`modelops.model_sha256` = '{sha256}'")
    assert run.data.metrics == json.loads((root / layout.metrics).read_text(encoding="utf-8"))
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # the server stores them, not this machine
    (version,) = client.search_model_versions(f"name = '{PIPELINE}'")
    assert (version.run_id, version.tags["sha256"]) == (run.info.run_id, sha256)

    served = mlflow.pyfunc.load_model(f"models:/{PIPELINE}/{version.version}")  # fetched through the proxy
    local, _ = model_store.load(root / layout.model, root / layout.model_card)
    test = pd.read_parquet(root / layout.test)
    features = test[served.metadata.get_input_schema().input_names()]
    assert list(served.predict(features)) == list(local.predict(features))
    assert len(list(mlflow_at.artifacts.rglob("model.skops"))) == 1  # in the server's --artifacts-destination

    synced = run_cli("registry", "sync-mlflow", "-C", root)

    assert synced.exit_code == 0, synced.stdout + synced.stderr
    assert client.get_registered_model(PIPELINE).aliases == {STAGE: version.version}
    assert sorted(p.name for p in state.iterdir()) == ["dvc-remote"]  # no local MLflow store was made
    assert not (root / "mlruns").exists() and not (root / "mlartifacts").exists()
