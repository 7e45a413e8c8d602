"""`validate` on deployments/<stage>.yaml: every version it names must hold a verified tag of the
stage (real signed tags, real ssh-keygen verification); one holding only the stage before's waits
(a warning), anything else is refused with the file, the line and the tag that is missing or
refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.registry import RegistryRepo, assign, commit_files, register, registry_repo

pytestmark = pytest.mark.shared_setup

PIPELINE = "loans"


@pytest.fixture(scope="module")
def repo(registry_template: Path, tmp_path_factory: pytest.TempPathFactory) -> RegistryRepo:
    """loans (stages staging -> production): v1.0.0 registered and in staging (signed by ci-bot); v1.1.0
    registered only; a production tag for v1.2.0 signed by a key allowed_signers does not list."""
    built = registry_repo(registry_template, tmp_path_factory.mktemp("deploy") / "repo")
    register(built, version="v1.0.0")
    assign(built, "staging", 1, version="v1.0.0")
    second = commit_files(built.root, {"notes.txt": "a second commit for v1.1.0\n"}, "notes")
    register(built, version="v1.1.0", at=second)
    third = commit_files(built.root, {"notes.txt": "a third commit for v1.2.0\n"}, "more notes")
    register(built, version="v1.2.0", at=third)
    assign(built, "production", 2, "attacker", version="v1.2.0", at=third)
    return built


def deployment(stage: str, models: str) -> str:
    return (f"apiVersion: modelops/v1\nkind: Deployment\nmetadata: {{name: {stage}}}\nspec:\n  stage: {stage}\n"
            f"  models:\n{models}")


def validate(repo: RegistryRepo, stage: str, models: str) -> tuple[int, str, str]:
    path = repo.root / "deployments" / f"{stage}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(deployment(stage, models))
    done = run_cli("validate", path, "-C", repo.root)
    path.unlink()
    return done.exit_code, done.stdout, done.stderr


def test_a_champion_holding_the_stages_verified_tag_is_valid(repo: RegistryRepo) -> None:
    code, out, err = validate(repo, "staging", f"    {PIPELINE}:\n      champion: v1.0.0\n")
    assert code == 0, err
    assert "1 file(s) valid" in out and "warning" not in err


def test_a_version_holding_only_the_stage_before_is_pending_not_refused(repo: RegistryRepo) -> None:
    code, _, err = validate(repo, "production", f"    {PIPELINE}:\n      champion: v1.0.0\n")
    assert code == 0, err
    assert "warning: deployments/production.yaml:8:7: spec.models.loans.champion: v1.0.0 is pending" in err
    assert "no loans#production#N tag holds it: it holds 'staging'" in err


@pytest.mark.parametrize(("stage", "models", "message"), [
    ("production", "    loans:\n      champion: v1.0.0\n      challenger: v1.1.0\n      weight: 10\n",
     "deployments/production.yaml:9:7: spec.models.loans.challenger: loans@v1.1.0 may not be deployed to "
     "'production' (no loans#production#N tag holds it, nor does it hold 'staging': promote it to 'staging' first)"),
    ("staging", "    loans:\n      champion: v9.9.9\n",
     "deployments/staging.yaml:8:7: spec.models.loans.champion: loans@v9.9.9 may not be deployed to 'staging' "
     "(loans@v9.9.9 is not registered (registered: v1.0.0, v1.1.0, v1.2.0))"),
    ("production", "    loans:\n      champion: v1.2.0\n",
     "deployments/production.yaml:8:7: spec.models.loans.champion: loans@v1.2.0 may not be deployed to 'production' "
     "(loans#production#N does not verify (loans#production#2 [signer-unknown]), nor does it hold 'staging'"),
    ("staging", "    mortgages:\n      champion: v1.0.0\n",
     "deployments/staging.yaml:7:5: spec.models.mortgages: unknown model 'mortgages'"),
    ("staging", f"    loans:\n      champion: v1.0.0\n      commits: {{v1.0.0: {'a' * 40}}}\n",
     "deployments/staging.yaml:8:7: spec.models.loans.champion: loans@v1.0.0 is registered at "),
])
def test_a_version_without_a_verified_stage_tag_is_refused_with_file_and_line(repo: RegistryRepo, stage: str,
                                                                              models: str, message: str) -> None:
    code, _, err = validate(repo, stage, models)
    assert code == 2, err
    assert message in err
