"""Champion/challenger: GTO registry tags, McNemar and DeLong against references, the paired
bootstrap, non-inferiority decisions, bad input, and the gate end to end on a real git + DVC repo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelops_ci import gates
from modelops_ci.gates.context import GateContext
from modelops_ci.registry import tags
from modelops_ci.steps.context import load_context
from tests.helpers.cli import run_cli
from tests.helpers.registry import evidence_message, make_key, policy_yaml, sign_tag, signer_line
from tests.helpers.repos import git, write
from tests.helpers.specs import LOANS_SPEC

# -- registry tags (GTO grammar) ---------------------------------------------------------------


def _replayed(repo: Path, name: str, stage: str) -> tags.Champion | None:
    """The stage's holder as GTO's replay of every tag gives it (verification aside)."""
    artifact = tags.state(tags.read(repo, names=[name])).get(name)
    return artifact.stages.get(stage) if artifact else None


def _commit(repo: Path, name: str) -> str:
    write(repo, name, name)
    git("add", name, cwd=repo)
    git("commit", "-qm", name, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


def _tag(repo: Path, name: str, commit: str) -> None:
    git("tag", "-a", name, "-m", f"registry: {name}", commit, cwd=repo)


@pytest.fixture
def tagged(tmp_path: Path) -> tuple[Path, list[str]]:
    """Three commits, one version registered on each."""
    repo = tmp_path / "reg"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    commits = [_commit(repo, f"f{i}") for i in range(3)]
    for i, commit in enumerate(commits):
        _tag(repo, f"loans@v1.{i}.0", commit)
    return repo, commits


def test_champion_is_the_latest_assignment_of_the_stage(tagged: tuple[Path, list[str]]) -> None:
    repo, commits = tagged
    assert _replayed(repo, "loans", "production") is None
    _tag(repo, "loans#production#1", commits[0])
    _tag(repo, "loans#staging#2", commits[2])
    _tag(repo, "loans#production#3", commits[1])
    _tag(repo, "sales#production#4", commits[2])
    git("tag", "loans#production#9", commits[2], cwd=repo)  # lightweight: not a registry event
    found = _replayed(repo, "loans", "production")
    assert found == tags.Champion("v1.1.0", commits[1], "loans#production#3")
    assert _replayed(repo, "loans", "staging") == tags.Champion("v1.2.0", commits[2], "loans#staging#2")


def test_unassigning_or_deprecating_clears_the_stage(tagged: tuple[Path, list[str]]) -> None:
    repo, commits = tagged
    _tag(repo, "loans#production#1", commits[0])
    _tag(repo, "loans#production#2", commits[1])
    _tag(repo, "loans#production!#3", commits[0])  # unassigns an older holder: no effect
    assert _replayed(repo, "loans", "production") == tags.Champion(
        "v1.1.0", commits[1], "loans#production#2")
    _tag(repo, "loans#production!#4", commits[1])
    assert _replayed(repo, "loans", "production") is None
    _tag(repo, "loans#production#5", commits[2])
    _tag(repo, "loans@deprecated#6", commits[2])
    assert _replayed(repo, "loans", "production") is None


def test_an_unregistered_commit_is_named_by_its_hash(tagged: tuple[Path, list[str]]) -> None:
    repo, _ = tagged
    commit = _commit(repo, "f3")
    _tag(repo, "loans#production#1", commit)
    assert _replayed(repo, "loans", "production") == tags.Champion(commit, commit, "loans#production#1")


def test_champion_outside_git_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(tags.RegistryError, match="git repository"):
        _replayed(tmp_path, "loans", "production")


# -- end to end: a real git + DVC repo, tags, a retrained model ------------------------------------


def _dvc(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=True, capture_output=True)


def _run_steps(repo: Path, *steps: str) -> None:
    for step in steps:
        result = run_cli("step", step, "loans", cwd=repo)
        assert result.exit_code == 0, result.stdout + result.stderr


def _gate(repo: Path) -> dict[str, Any]:
    result = run_cli("step", "gate-compare", "loans", cwd=repo)
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads((repo / "reports/loans/gates/compare.json").read_text())
    return report


def _evaluate(repo: Path, **settings: Any) -> Any:
    return gates.evaluate("compare", GateContext(load_context(repo, "loans")), settings)


COMPARE = "  gates:\n    compare: {metric: roc_auc, against: production, margin: 0.02}\n"


def test_challenger_against_the_production_champion(ml_repo: Path) -> None:
    repo = ml_repo
    write(repo, "pipelines/loans.yaml", LOANS_SPEC + COMPARE)
    assert run_cli("compile", cwd=repo).exit_code == 0
    _run_steps(repo, "ingest", "split", "train", "evaluate")

    first = _gate(repo)  # no champion yet
    assert first["status"] == "fail" and "no champion" in first["reason"] and "allow_first" in first["reason"]
    assert _evaluate(repo, metric="roc_auc", allow_first=True).status == "pass"

    # v1: record the outputs in dvc.lock, push them, commit, register and promote to production
    # with signed tags that verify: the champion comes from verified tags only
    key = make_key(repo.parent / "keys", "ci-bot")
    write(repo, "policies/allowed_signers", signer_line(key, "ci-bot") + "\n")
    write(repo, "policies/test.yaml", policy_yaml(signers={}, approvals={}, gates=()))
    assert run_cli("compile", cwd=repo).exit_code == 0
    _dvc(repo, "commit", "-f", *(f"compiled/loans/dvc.yaml:{s}" for s in ("ingest", "split", "train", "evaluate")))
    _dvc(repo, "push")
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "loans v1", cwd=repo)
    v1 = git("rev-parse", "HEAD", cwd=repo).strip()
    for tag, stage in (("loans@v1.0.0", None), ("loans#staging#1", "staging"), ("loans#production#2", "production")):
        sign_tag(repo, tag, v1, evidence_message(repo, v1, version="v1.0.0", stage=stage), key.signing_key)
    v1_metrics = json.loads((repo / "reports/loans/metrics.json").read_text())

    same = _gate(repo)
    assert same["status"] == "pass" and "the challenger is the champion's model" in same["reason"]

    # the challenger: a different model; the champion must now come from the DVC remote
    write(repo, "pipelines/loans.yaml", LOANS_SPEC.replace(
        "estimator: sklearn.linear_model.LogisticRegression\n    params: {C: 1.0, max_iter: 500}",
        "estimator: sklearn.tree.DecisionTreeClassifier\n    params: {max_depth: 2, random_state: 0}") + COMPARE)
    assert run_cli("compile", cwd=repo).exit_code == 0
    shutil.rmtree(repo / ".dvc" / "cache")
    _run_steps(repo, "train", "evaluate")
    # anyone can make a tag in a clone: an unsigned production tag on another commit changes nothing
    git("commit", "-qm", "an unreviewed model", "--allow-empty", cwd=repo)
    forged = git("rev-parse", "HEAD", cwd=repo).strip()
    git("tag", "-a", "loans#production#3", "-m", "promote loans to production", forged, cwd=repo)
    report = _gate(repo)
    assert report["details"]["champion"] == {"version": "v1.0.0", "commit": v1, "tag": "loans#production#2"}
    assert report["n"] == 120
    bootstrapped, delong = report["checks"]
    assert (bootstrapped["name"], delong["name"]) == ("paired_bootstrap", "delong")
    # the champion was scored on the (unchanged) hold-out exactly as at v1
    assert delong["details"]["champion"] == pytest.approx(v1_metrics["roc_auc"], abs=1e-12)
    challenger_auc = json.loads((repo / "reports/loans/metrics.json").read_text())["roc_auc"]
    assert delong["details"]["challenger"] == pytest.approx(challenger_auc, abs=1e-12)
    # a depth-2 tree ranks worse than the logistic regression it replaces: surely worse by > 0.02
    assert delong["details"]["challenger"] < delong["details"]["champion"] - 0.05
    assert bootstrapped["ci"][0] < -0.02 and delong["ci"][0] < -0.02
    assert (bootstrapped["status"], delong["status"], report["status"]) == ("fail", "fail", "fail")
    assert report["reason"].startswith("against production v1.0.0: ROC AUC: challenger")

    accuracy = _evaluate(repo, metric="accuracy", margin=0.5)
    assert [c.name for c in accuracy.checks] == ["paired_bootstrap", "mcnemar"]
    assert accuracy.checks[0].details["champion"] == pytest.approx(v1_metrics["accuracy"])
    assert _evaluate(repo, metric="roc_auc", against="dev").status == "fail"  # nobody holds dev

    predictions = repo / "reports/loans/predictions.parquet"
    pd.read_parquet(predictions).iloc[:-1].to_parquet(predictions)
    stale = _evaluate(repo, metric="roc_auc")
    assert stale.status == "error" and "predictions have 119 rows but the hold-out has 120" in stale.reason

    # the champion's bytes are gone from cache and remote: an error that says what to do
    shutil.rmtree(repo / ".modelops" / "dvc-remote")
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
    lost = _gate(repo)
    assert lost["status"] == "error"
    assert "cannot compare with the champion v1.0.0" in lost["reason"] and "dvc push" in lost["reason"]
