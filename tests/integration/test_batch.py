"""A batched family (spec.batch) run by DVC: one stage, every series in one process, only the series
whose rows, spec or code changed run again; bad data fails its own series only (issue 12)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run_exe
from tests.helpers.family import (
    FAMILY,
    PANEL,
    TEST_PERIODS,
    make_family_repo,
    panel_csv,
    panel_rows,
    series_csv,
    series_names,
)
from tests.helpers.repos import git, write

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

SERIES = series_names(5)


@pytest.fixture(scope="module")
def trained_family(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A family of 5 series, run once by `modelops-ci run` and committed."""
    repo = make_family_repo(tmp_path_factory.mktemp("family") / "repo", count=len(SERIES))
    result = run_exe("run", FAMILY, cwd=repo)
    assert result.exit_code == 0, result.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "trained", cwd=repo)
    return repo


@pytest.fixture
def family(trained_family: Path, tmp_path: Path) -> Path:
    """A private copy of the trained family (its DVC cache and MLflow store too)."""
    copy = tmp_path / "repo"
    shutil.copytree(trained_family, copy, symlinks=True)
    return copy


def records(repo: Path) -> dict[str, dict[str, object]]:
    folder = repo / "reports" / FAMILY / "series"
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(folder.glob("*/series.json"))}


def digests(repo: Path) -> dict[str, str]:
    """sha256 of every file under the family's series folders (models and reports)."""
    found = {}
    for kind in ("models", "reports"):
        for path in sorted((repo / kind / FAMILY / "series").rglob("*")):
            if path.is_file():
                found[path.relative_to(repo).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def gates(repo: Path) -> dict[str, object]:
    report: dict[str, object] = json.loads((repo / "reports" / FAMILY / "gates.json").read_text())
    return report


def test_one_stage_runs_every_series_and_the_family_verdict_counts_them(trained_family: Path) -> None:
    report = gates(trained_family)

    assert report["verdict"] == "pass"
    assert [s["series"] for s in report["series"]] == [f"{FAMILY}-{s}" for s in SERIES]  # type: ignore[attr-defined,index]
    assert report["gates"][0]["gate"] == "series" and report["gates"][0]["statistic"] == 0  # type: ignore[index]
    for name in SERIES:
        model = trained_family / "models" / FAMILY / "series" / f"{FAMILY}-{name}" / "model.skops"
        record = records(trained_family)[f"{FAMILY}-{name}"]
        assert hashlib.sha256(model.read_bytes()).hexdigest() == record["model_sha256"]
        assert record["verdict"] == "pass"
    lock = (trained_family / "compiled" / FAMILY / "dvc.lock").read_text()
    assert "models/panel/series" in lock and "reports/panel/series" in lock  # DVC versions the series


def test_a_series_leaves_its_model_and_a_record_holding_its_card_and_predictions(trained_family: Path) -> None:
    from modelops_ci.ml.model_store import types_held

    report = gates(trained_family)
    for name, record in records(trained_family).items():
        model = trained_family / "models" / FAMILY / "series" / name / "model.skops"
        files = {p.relative_to(trained_family).as_posix() for kind in ("models", "reports")
                 for p in (trained_family / kind / FAMILY / "series" / name).iterdir()}
        assert files == {f"models/{FAMILY}/series/{name}/model.skops", f"reports/{FAMILY}/series/{name}/series.json"}
        card, predictions = record["card"], record["predictions"]
        assert card["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest() == record["model_sha256"]  # type: ignore[index]
        assert card["trusted_types"] == types_held(model, model.read_bytes())  # type: ignore[index]
        assert card["mase_scale"] > 0  # type: ignore[index]  # the facts the gates read
        assert predictions["columns"] == ["row", "time", "y_true", "y_pred"]  # type: ignore[index]
        assert len(predictions["rows"]) == TEST_PERIODS  # type: ignore[index]
    for entry in report["series"]:  # type: ignore[attr-defined]
        assert "card" not in entry and "predictions" not in entry  # the family's gates.json stays small


def change_one_value(repo: Path, series: str) -> None:
    rows = panel_rows(SERIES)
    changed = next(i for i, row in enumerate(rows) if row[0] == series and row[1].startswith("2004-12"))
    rows[changed][2] = "999.000"
    write(repo, PANEL, panel_csv(rows))


def test_a_changed_series_runs_alone_and_the_others_keep_their_files(family: Path) -> None:
    before, kept = digests(family), records(family)
    change_one_value(family, "s02")

    result = run_exe("run", FAMILY, cwd=family)

    assert result.exit_code == 0, result.stderr
    assert "ran=1" in result.stdout + result.stderr
    after, now = digests(family), records(family)
    differ = sorted({p.split("/")[3] for p in set(before) | set(after) if before.get(p) != after.get(p)})
    assert differ == [f"{FAMILY}-s02"]
    assert now[f"{FAMILY}-s02"]["key"] != kept[f"{FAMILY}-s02"]["key"]


def test_a_removed_series_loses_its_outputs_and_an_added_one_runs_alone(family: Path) -> None:
    names = [n for n in SERIES if n != "s01"] + ["s09"]
    write(family, "pipelines/series/panel.csv", series_csv(names))
    write(family, PANEL, panel_csv(panel_rows(names)))
    before = digests(family)
    assert run_exe("compile", cwd=family).exit_code == 0

    result = run_exe("run", FAMILY, cwd=family)

    assert result.exit_code == 0, result.stderr
    assert "ran=1" in result.stdout + result.stderr
    assert sorted(records(family)) == sorted(f"{FAMILY}-{n}" for n in names)
    assert not (family / "models" / FAMILY / "series" / f"{FAMILY}-s01").exists()
    after = digests(family)
    untouched = [p for p in before if f"{FAMILY}-s01" not in p]
    assert all(after[p] == before[p] for p in untouched)


def test_a_model_file_changed_by_hand_is_computed_again(family: Path) -> None:
    model = family / "models" / FAMILY / "series" / f"{FAMILY}-s03" / "model.skops"
    original = model.read_bytes()
    model.unlink()  # DVC links cached files read-only: replace the file, as an editor would
    model.write_bytes(original + b"\0")

    result = run_exe("step", "batch", FAMILY, cwd=family)

    assert result.exit_code == 0, result.stderr
    assert "ran=1" in result.stdout
    assert model.read_bytes() == original


def test_bad_data_fails_its_own_series_naming_it_and_the_row(family: Path) -> None:
    rows = panel_rows(SERIES)
    rows = [r for r in rows if not (r[0] == "s01" and r[1] >= "2001")]  # too few points
    rows = [[a, b, "" if a == "s02" else c] for a, b, c in rows]  # every target missing
    rows.append(next(list(r) for r in rows if r[0] == "s03"))  # a duplicated month
    rows = [[a, b, "abc" if (a == "s04" and b == "2003-05-01") else c] for a, b, c in rows]  # text
    write(family, PANEL, panel_csv(rows))

    result = run_exe("step", "batch", FAMILY, cwd=family)

    assert result.exit_code == 0, result.stderr  # a failed series is a result; `run` and `ci` enforce it
    report = gates(family)
    by_name = {s["series"]: s for s in report["series"]}  # type: ignore[attr-defined]
    assert report["verdict"] == "fail"
    assert report["reason"].startswith("4 of 5 series failed (at most 0 may)")  # type: ignore[attr-defined]
    assert by_name[f"{FAMILY}-s00"]["verdict"] == "pass"
    expected = {"s01": ("split", "test periods"), "s02": ("data", "missing in 96 of 96 rows"),
                "s03": ("data", "appears 2 times"), "s04": ("data", "non-numeric values 'abc'")}
    for name, (stage, words) in expected.items():
        entry = by_name[f"{FAMILY}-{name}"]
        assert entry["verdict"] == "fail"
        assert entry["gates"][0]["gate"] == stage and entry["gates"][0]["status"] == "error"
        assert entry["reason"].startswith(f"{stage}: {FAMILY}-{name}: pipelines/panel.yaml:")
        assert words in entry["reason"]
        if name != "s01":
            assert "data/panel.csv row " in entry["reason"]
    assert not (family / "models" / FAMILY / "series" / f"{FAMILY}-s02" / "model.skops").exists()


def test_a_policy_may_allow_failed_series(family: Path) -> None:
    rows = [r for r in panel_rows(SERIES) if not (r[0] == "s01" and r[1] >= "2001")]
    write(family, PANEL, panel_csv(rows))
    policy = (family / "policies" / "panel.yaml").read_text()
    write(family, "policies/panel.yaml", policy.replace("family: {max_failed: 0}", "family: {max_failed_share: 0.2}"))
    assert run_exe("compile", cwd=family).exit_code == 0

    result = run_exe("step", "batch", FAMILY, cwd=family)

    assert result.exit_code == 0, result.stderr
    report = gates(family)
    assert report["verdict"] == "pass"
    assert report["reason"] == "1 of 5 series failed (at most 1 may): panel-s01"


def test_serial_and_parallel_runs_write_the_same_bytes(family: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelops_ci.steps import batch, parallel

    for folder in ("models", "reports"):
        shutil.rmtree(family / folder / FAMILY / "series")
    monkeypatch.setenv(parallel.JOBS_ENV, "1")
    batch.run(family, FAMILY)
    serial = digests(family)
    for folder in ("models", "reports"):
        shutil.rmtree(family / folder / FAMILY / "series")
    monkeypatch.setenv(parallel.JOBS_ENV, "2")
    monkeypatch.setattr(parallel, "PARALLEL_FROM", 1)

    batch.run(family, FAMILY)

    assert digests(family) == serial
    assert len(serial) == len(SERIES) * 2  # the model and the record


def test_mlflow_gets_one_parent_run_and_a_child_per_series_that_ran(trained_family: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{trained_family / '.modelops' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(FAMILY)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    assert sorted(r.data.tags["modelops.series"] for r in children) == [f"{FAMILY}-{s}" for s in SERIES]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    child = next(r for r in children if r.data.tags["modelops.series"] == f"{FAMILY}-s00")
    record = records(trained_family)[f"{FAMILY}-s00"]
    assert child.data.tags["modelops.model_sha256"] == record["model_sha256"]
    assert child.data.metrics["mase"] == pytest.approx(record["metrics"]["mase"])  # type: ignore[index]
    assert parents[0].data.metrics["series"] == len(SERIES)


def test_a_tracking_store_that_cannot_be_written_fails_the_run_and_the_outputs_stay(family: Path,
                                                                                   tmp_path: Path) -> None:
    """`run`'s logger takes the records the stage hands over; its failure is `run`'s, said plainly,
    after DVC has kept the stage's outputs (the runs are a record beside them)."""
    kept, lock = records(family), family / "compiled" / FAMILY / "dvc.lock"
    locked = lock.read_text(encoding="utf-8")
    change_one_value(family, "s03")
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("", encoding="utf-8")
    tracking = {"MLFLOW_TRACKING_URI": f"sqlite:///{not_a_folder}/mlflow.db"}

    result = run_exe("run", FAMILY, cwd=family, env={**os.environ, **tracking})

    assert result.exit_code == 2, result.stderr
    assert "MLflow's store" in result.stderr and "MLFLOW_TRACKING_URI" in result.stderr
    assert "Traceback" not in result.stderr
    assert records(family)[f"{FAMILY}-s03"]["key"] != kept[f"{FAMILY}-s03"]["key"]
    assert lock.read_text(encoding="utf-8") != locked  # DVC committed the stage's outputs


def test_a_fresh_clone_restores_every_series_from_the_remote_and_runs_only_a_changed_one(
        trained_family: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git("clone", "-q", str(trained_family), str(clone), cwd=tmp_path)
    remote = trained_family / ".modelops" / "dvc-remote"
    subprocess.run([sys.executable, "-m", "dvc", "remote", "modify", "--local", "local", "url", str(remote)],
                   cwd=clone, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=clone, check=True)
    assert digests(clone) == digests(trained_family)

    rows = panel_rows(SERIES)
    changed = next(i for i, row in enumerate(rows) if row[0] == "s04" and row[1].startswith("2005-06"))
    rows[changed][2] = f"{float(rows[changed][2]) * 1.01:.3f}"
    write(clone, PANEL, panel_csv(rows))
    result = run_exe("run", FAMILY, cwd=clone)

    assert result.exit_code == 0, result.stderr
    assert "ran=1" in result.stdout + result.stderr


def test_a_family_stage_that_stops_leaves_no_verdict(family: Path) -> None:
    write(family, PANEL, "series,month,value\n")  # no rows: the whole family cannot run

    result = run_exe("run", FAMILY, cwd=family)

    assert result.exit_code == 2
    assert "data/panel.csv has no rows" in result.stderr
    assert not (family / "reports" / FAMILY / "gates.json").exists()


def test_gate_counts_a_family_verdict_again_from_its_series_results(family: Path) -> None:
    (family / "reports" / FAMILY / "gates.json").unlink()

    result = run_exe("gate", FAMILY, cwd=family)

    assert result.exit_code == 0, result.stderr
    assert "panel: PASS (a family of 5 series)" in result.stdout
    assert gates(family)["verdict"] == "pass"
    only = run_exe("gate", FAMILY, "--only", "performance", cwd=family)
    assert only.exit_code == 2
    assert "a batched family's gates run with its series" in only.stderr
