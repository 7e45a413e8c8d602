"""`modelops-ci serve` on a repository with verified versions (real signed tags, models read from the
DVC cache), as a process on loopback: it answers from what deployments/staging.yaml names, splits a
canary stickily, reloads a changed file, refuses a tampered model, and after a SIGKILL under load every
answered request is in the log."""

from __future__ import annotations

import csv
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_ci.registry.dvc_cache import CACHE
from modelops_ci.serve import predlog
from tests.helpers.deployed import CHALLENGER, CHAMPION, deployed_repo, deployed_template, deployment
from tests.helpers.registry import RegistryRepo
from tests.helpers.servers import ModelServer, model_server

pytestmark = pytest.mark.shared_setup

CANARY = deployment(f"    loans:\n      champion: {CHAMPION}\n      challenger: {CHALLENGER}\n      weight: 50\n")
FEATURES = ("income", "debt", "age", "region")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> RegistryRepo:
    built = deployed_repo(deployed_template(tmp_path_factory), tmp_path_factory.mktemp("serve") / "repo")
    (built.root / "deployments").mkdir()
    (built.root / "deployments" / "staging.yaml").write_text(CANARY)
    return built


@pytest.fixture(scope="module")
def rows(repo: RegistryRepo) -> list[dict[str, Any]]:
    with (repo.root / "data" / "raw" / "loans.csv").open() as handle:
        table = list(csv.DictReader(handle))
    return [{k: (float(r[k]) if k != "region" else r[k]) for k in FEATURES} for r in table[:50]]


@pytest.fixture(scope="module")
def server(repo: RegistryRepo, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with model_server(repo.root, "staging", tmp_path_factory.mktemp("log") / "staging.sqlite", "--poll", "0.2") as up:
        yield up.wait("/readyz")


def predict(url: str, row: dict[str, Any], request_id: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/loans/predict", json={"row": row}, headers={"X-Request-Id": request_id},
                      timeout=30)


def test_the_canary_splits_stickily_between_the_verified_versions(server: ModelServer,
                                                                  rows: list[dict[str, Any]]) -> None:
    answered = {f"req-{n}": predict(server.url, rows[n % len(rows)], f"req-{n}").json() for n in range(60)}
    versions = {body["version"] for body in answered.values()}
    assert versions == {CHAMPION, CHALLENGER}
    for request_id, body in list(answered.items())[:10]:  # the same id goes to the same version
        assert predict(server.url, rows[0], request_id).json()["version"] == body["version"]
    logged = predlog.read(server.log)
    assert set(answered) <= set(logged["request_id"])
    assert set(logged.loc[logged["request_id"].isin(answered), "version"]) == {CHAMPION, CHALLENGER}


def test_the_versions_answer_as_their_models_do(server: ModelServer, repo: RegistryRepo,
                                                rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    from modelops_ci.serve.catalog import Catalog

    served = Catalog(repo.root, "staging").load()
    by_version = {v.version: v for v in served.versions}
    for n in range(20):
        body = predict(server.url, rows[n], f"compare-{n}").json()
        model = by_version[body["version"]].model
        frame = pd.DataFrame([rows[n]])
        classes = list(model.classes_)
        positive = classes.index("yes") if "yes" in classes else classes.index(1)  # the target as trained
        assert body["scores"] == pytest.approx([model.predict_proba(frame)[0, positive]])


def test_bad_input_is_a_4xx_that_says_what_and_is_logged(server: ModelServer, rows: list[dict[str, Any]]) -> None:
    wrong = predict(server.url, {**rows[0], "income": "lots"}, "bad-1")
    assert wrong.status_code == 422 and "rows[0].income" in wrong.json()["error"]
    unknown = httpx.post(f"{server.url}/v1/models/cars/predict", json={"row": rows[0]}, timeout=30)
    assert unknown.status_code == 404 and "loans" in unknown.json()["error"]
    logged = predlog.read(server.log)
    assert logged.loc[logged["request_id"] == "bad-1", "status"].tolist() == [422]


def test_a_changed_deployment_file_moves_the_traffic(repo: RegistryRepo, tmp_path: Path,
                                                     rows: list[dict[str, Any]]) -> None:
    path = repo.root / "deployments" / "staging.yaml"
    with model_server(repo.root, "staging", tmp_path / "log.sqlite", "--poll", "0.2") as up:
        up.wait("/readyz")
        path.write_text(deployment(f"    loans:\n      champion: {CHALLENGER}\n"))
        try:
            _until(lambda: all(predict(up.url, rows[0], f"after-{n}").json()["version"] == CHALLENGER
                               for n in range(8)))
        finally:
            path.write_text(CANARY)


def test_a_tampered_model_in_the_cache_is_not_served(repo: RegistryRepo, tmp_path: Path,
                                                     rows: list[dict[str, Any]]) -> None:
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(repo.root, copy, symlinks=True)
    # v1.1.0 is the model the work tree's dvc.lock records: one bit of its cached bytes flipped
    (copy / "deployments" / "staging.yaml").write_text(deployment(f"    loans:\n      champion: {CHALLENGER}\n"))
    _tamper_model(copy)
    with model_server(copy, "staging", tmp_path / "log.sqlite") as up:
        up.wait("/healthz")
        ready = httpx.get(f"{up.url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert "md5" in " ".join(ready.json()["problems"])
        assert predict(up.url, rows[0], "x").status_code == 503


def test_after_a_sigkill_under_load_every_answered_request_is_in_the_log(repo: RegistryRepo, tmp_path: Path,
                                                                          rows: list[dict[str, Any]]) -> None:
    log = tmp_path / "log.sqlite"
    answered: list[str] = []
    with model_server(repo.root, "staging", log) as up:
        up.wait("/readyz")
        enough = threading.Event()

        def client(worker: int) -> None:
            with httpx.Client(timeout=30) as http:
                for n in range(10_000):
                    try:
                        done = http.post(f"{up.url}/v1/models/loans/predict", json={"row": rows[n % len(rows)]},
                                         headers={"X-Request-Id": f"w{worker}-{n}"})
                    except httpx.TransportError:
                        return  # the server is gone
                    if done.status_code == 200:
                        answered.append(done.json()["request_id"])
                    if len(answered) >= 400:
                        enough.set()

        with ThreadPoolExecutor(8) as pool:
            for worker in range(8):
                pool.submit(client, worker)
            assert enough.wait(timeout=120), "the server answered too few requests"
            up.kill()
    with model_server(repo.root, "staging", log) as again:
        again.wait("/readyz")  # the log opened cleanly
    logged = set(predlog.read(log)["request_id"])
    lost = [request_id for request_id in answered if request_id not in logged]
    assert len(answered) >= 400 and lost == []


def _tamper_model(root: Path) -> None:
    import yaml

    lock = yaml.safe_load((root / "compiled" / "loans" / "dvc.lock").read_text())
    md5 = next(o["md5"] for s in lock["stages"].values() for o in s.get("outs", [])
               if o["path"] == "models/loans/model.skops")
    cached = root.joinpath(*CACHE, md5[:2], md5[2:])
    cached.chmod(0o644)
    raw = bytearray(cached.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    cached.write_bytes(bytes(raw))
    assert hashlib.md5(bytes(raw), usedforsecurity=False).hexdigest() != md5


def _until(condition: Any, tries: int = 600) -> None:
    import time

    for _ in range(tries):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the server never moved the traffic")


def test_a_corrupt_log_stops_the_server_before_it_listens_and_is_kept(repo: RegistryRepo, tmp_path: Path) -> None:
    log = tmp_path / "staging.sqlite"
    garbage = b"SQLite format 3\x00" + bytes(range(256)) * 40  # a header, then nothing SQLite can read
    log.write_bytes(garbage)
    with model_server(repo.root, "staging", log) as up:
        code = up.process.wait(timeout=120)
        output = up.output_tail()
    assert code == 2, output
    assert str(log) in output and "kept" in output
    assert log.read_bytes() == garbage


def test_models_missing_from_the_cache_are_read_from_the_dvc_remote(repo: RegistryRepo, tmp_path: Path) -> None:
    import shutil

    from modelops_ci.serve.catalog import Catalog

    copy = tmp_path / "repo"
    shutil.copytree(repo.root, copy, symlinks=True)
    shutil.rmtree(copy / ".dvc" / "cache")  # as a fresh clone: only the remote (.modelops/dvc-remote) has them
    served = Catalog(copy, "staging").load()
    assert served.ready, served.problems
    assert sorted(v.version for v in served.versions) == [CHAMPION, CHALLENGER]


def test_a_label_posted_later_is_joined_to_its_answer(server: ModelServer, rows: list[dict[str, Any]]) -> None:
    assert predict(server.url, rows[0], "labelled-1").status_code == 200
    posted = httpx.post(f"{server.url}/v1/feedback", json={"request_id": "labelled-1", "label": "yes"}, timeout=30)
    assert posted.status_code == 202
    logged = predlog.read(server.log)
    assert logged.loc[logged["request_id"] == "labelled-1", "label"].tolist() == ['["yes"]']
