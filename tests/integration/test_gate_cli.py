"""The gate-facing commands: `contract infer`, `gate`, and `run` refusing a missing contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import run_exe
from tests.helpers.repos import git, write
from tests.helpers.specs import PERFORMANCE_GATE, loans_policy
from tests.helpers.templates import trained_ml_copy

POLICY = loans_policy("data_contract: {}", PERFORMANCE_GATE)


def _governed(repo: Path) -> Path:
    write(repo, "policies/test.yaml", POLICY)
    assert run_exe("compile", cwd=repo).exit_code == 0
    return repo


def test_run_refuses_a_missing_contract_and_says_how_to_make_one(ml_repo: Path) -> None:
    repo = _governed(ml_repo)
    result = run_exe("run", "loans", cwd=repo)
    assert result.exit_code == 2
    assert "contracts/loans.yaml: not found" in result.stderr
    assert "modelops-ci contract infer loans" in result.stderr


def test_contract_infer_ingests_first_then_the_gates_pass(ml_repo: Path) -> None:
    repo = _governed(ml_repo)
    inferred = run_exe("contract", "infer", "loans", cwd=repo)
    assert inferred.exit_code == 0, inferred.stderr
    assert "wrote contracts/loans.yaml" in inferred.stdout
    contract = (repo / "contracts/loans.yaml").read_text()
    assert "region:" in contract and "categories: [east, north, south]" in contract
    ran = run_exe("run", "loans", cwd=repo)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert "loans: PASS" in ran.stdout
    assert "data_contract  pass" in ran.stdout

    # an income far out of the contract's range: the run exits 1 and names the column
    csv = repo / "data/raw/loans.csv"
    header, first, *rest = csv.read_text().splitlines()
    csv.write_text("\n".join([header, "100000.0" + first[first.index(","):], *rest]) + "\n")
    failed = run_exe("run", "loans", cwd=repo)
    assert failed.exit_code == 1
    assert "data_contract  fail" in failed.stdout
    assert "income" in failed.stdout
    gated = run_exe("gate", "loans", "--only", "performance", cwd=repo)
    assert gated.exit_code == 0, gated.stdout
    git("status", "--short", cwd=repo)


def test_gate_before_any_run_is_a_user_error(ml_repo: Path) -> None:
    repo = _governed(ml_repo)
    result = run_exe("gate", "loans", cwd=repo)
    assert result.exit_code == 2
    assert "run `modelops-ci run loans` first" in result.stderr


def test_gate_with_an_unknown_kind(ml_repo: Path) -> None:
    result = run_exe("gate", "--only", "fairnes", cwd=_governed(ml_repo))
    assert result.exit_code == 2
    assert "unknown gate kind fairnes" in result.stderr


DRIFT_POLICY = loans_policy("drift: {alpha: 0.05, correction: fdr_bh, max_drifted_share: 0.3}", name="watch")


def test_drift_profile_replaces_the_raw_reference(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    repo = trained_ml_copy(tmp_path_factory, tmp_path / "ml")  # trained: only the gates run here
    spec = repo / "pipelines/loans.yaml"
    spec.write_text(spec.read_text() + "  drift: {reference: train}\n")
    write(repo, "policies/watch.yaml", DRIFT_POLICY)
    assert run_exe("compile", cwd=repo).exit_code == 0
    assert run_exe("run", "loans", cwd=repo).exit_code == 0
    raw = (repo / "reports/loans/gates/drift.json").read_text()

    made = run_exe("drift", "profile", "loans", "-o", "data/loans-reference.npz", cwd=repo)
    assert made.exit_code == 0, made.stderr
    assert (repo / "data/loans-reference.npz").stat().st_size > 0
    spec.write_text(spec.read_text().replace("reference: train", "reference: data/loans-reference.npz"))
    assert run_exe("compile", cwd=repo).exit_code == 0
    ran = run_exe("run", "loans", cwd=repo)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert "drift          pass" in ran.stdout
    import json

    by_profile = json.loads((repo / "reports/loans/gates/drift.json").read_text())
    by_raw = json.loads(raw)
    assert by_profile["status"] == by_raw["status"] == "pass"
    assert [c["name"] for c in by_profile["checks"]] == [c["name"] for c in by_raw["checks"]]


def test_drift_profile_of_a_reference_that_does_not_exist_is_a_user_error(ml_repo: Path) -> None:
    spec = ml_repo / "pipelines/loans.yaml"
    spec.write_text(spec.read_text() + "  drift: {reference: data/nowhere.parquet}\n")
    assert run_exe("compile", cwd=ml_repo).exit_code == 0
    made = run_exe("drift", "profile", "loans", cwd=ml_repo)
    assert made.exit_code == 2, made.stdout + made.stderr
    assert "drift profile loans: drift.reference: data/nowhere.parquet does not exist" in made.stderr
