"""`modelops-ci monitor` on a trained repo whose `loans` model holds production: the newest batch
of drift.current against the training data with the policy's drift settings; on drift a report,
exit 1 and one retraining issue (or PR) per batch through a local fake GitHub; no drift, nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops_ci.commands.compile import compile_repo
from modelops_ci.commands.monitor import monitor
from modelops_ci.errors import EXIT_GATE_FAILED, EXIT_USER_ERROR, CheckFailed
from modelops_ci.report.markdown import PR_COMMENT_LIMIT
from tests.helpers.cli import run_cli
from tests.helpers.data import loans_csv
from tests.helpers.github_server import REPO, FakeGitHub, Reply, add_list_routes, error, fast_client, serving
from tests.helpers.registry import (
    RegistryRepo,
    assign,
    policy_yaml,
    register,
    shared_template,
    trained_repo,
    with_origin,
)
from tests.helpers.repos import git, write
from tests.helpers.specs import LOANS_SPEC, PERFORMANCE_GATE

ISSUES = f"/repos/{REPO}/issues"
PULLS = f"/repos/{REPO}/pulls"
# Advisory: the champion was trained before the policy asked for drift, and its tags must still
# verify against that policy (monitoring ignores `advisory`, see monitor.py).
DRIFT_GATE = "drift: {alpha: 0.05, max_drifted_share: 0.3, multivariate: false, advisory: true}"


def batch(seed: int, shift: dict[str, float] | None = None) -> str:
    """Loan applications like the training data (another sample), or with columns shifted."""
    import pandas as pd

    frame = pd.read_csv(io.StringIO(loans_csv(rows=300, seed=seed)))
    for column, amount in (shift or {}).items():
        frame[column] = frame[column] + amount
    return str(frame.to_csv(index=False))


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_template(tmp_path_factory)


def setup_monitoring(repo: RegistryRepo, drift_gate: str = DRIFT_GATE) -> None:
    spec = LOANS_SPEC + "  drift: {reference: train, current: data/batches}\n"
    write(repo.root, "pipelines/loans.yaml", spec)
    write(repo.root, "policies/test.yaml", policy_yaml(gates=(PERFORMANCE_GATE, drift_gate)))
    compile_repo(repo.root)


@pytest.fixture
def repo(_template: Path, tmp_path: Path) -> RegistryRepo:
    """The trained repo, loans@v1.0.0 in production, monitoring data/batches/ (one calm batch)."""
    made = trained_repo(_template, tmp_path / "repo")
    setup_monitoring(made)
    write(made.root, "data/batches/2024-01.csv", batch(seed=11))
    git("add", "-A", cwd=made.root)
    git("commit", "-qm", "monitor loans", cwd=made.root)
    register(made, "ci-bot", version="v1.0.0")
    assign(made, "staging", 1, "ci-bot")
    assign(made, "production", 2, "release-managers")
    with_origin(made.root, tmp_path)
    return made


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    for server in serving(monkeypatch):
        add_list_routes(server)
        yield server


def drifted(repo: RegistryRepo, name: str = "2024-02.csv") -> None:
    write(repo.root, f"data/batches/{name}", batch(seed=12, shift={"income": 30.0, "debt": 15.0}))


def test_no_drift_exits_0_writes_the_report_and_opens_nothing(repo: RegistryRepo, gh: FakeGitHub) -> None:
    done = run_cli("monitor", "-C", repo.root)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert "loans v1.0.0 on data/batches/2024-01.csv: no drift:" in done.stdout
    assert "sales: not monitored (no drift.current in its spec)" in done.stdout
    report = json.loads((repo.root / "reports/loans/monitor.json").read_text())
    assert report["verdict"] == "no drift" and report["stage"] == "production"
    assert report["champion"]["version"] == "v1.0.0" and report["champion"]["commit"] == repo.commit
    assert report["batch"]["path"] == "data/batches/2024-01.csv" and report["gate"]["gate"] == "drift"
    assert report["checkout_matches_champion"] is True
    assert (repo.root / "reports/loans/monitor.md").read_text().startswith("<!-- modelops-ci:monitor pipeline=loans")
    assert gh.calls == []


def test_drift_in_the_newest_batch_opens_one_issue_with_the_report(repo: RegistryRepo, gh: FakeGitHub) -> None:
    drifted(repo)
    done = run_cli("monitor", "-C", repo.root)
    assert done.exit_code == EXIT_GATE_FAILED
    assert "loans v1.0.0 on data/batches/2024-02.csv: DRIFT:" in done.stdout
    assert "opened: https://github.com/acme/models/issues/1" in done.stdout
    assert "loans: drift:" in done.stderr and "income" in done.stderr
    (call,) = gh.calls_to("POST", ISSUES)
    assert call.body["title"] == "Drift in production: loans v1.0.0 on batch 2024-02.csv"
    body = call.body["body"]
    assert len(body) <= PR_COMMENT_LIMIT and body.startswith("<!-- modelops-ci:monitor pipeline=loans batch=")
    assert "# loans in production: the production data drifted" in body and "Retrain on recent data" in body
    assert json.loads((repo.root / "reports/loans/monitor.json").read_text())["verdict"] == "drift"

    again = run_cli("monitor", "-C", repo.root)
    assert again.exit_code == EXIT_GATE_FAILED
    assert "already open: https://github.com/acme/models/issues/1" in again.stdout
    assert len(gh.calls_to("POST", ISSUES)) == 1 and len(gh.issues) == 1


def test_the_policy_threshold_decides_what_is_drift(repo: RegistryRepo, gh: FakeGitHub) -> None:
    write(repo.root, "data/batches/2024-02.csv", batch(seed=12, shift={"income": 30.0}))  # 1 of 4 features
    (calm,) = monitor(repo.root, open_as="none").outcomes
    assert calm.status in ("pass", "warn")  # a shift in the model's scores is a warning
    assert calm.reason.startswith("1 of 4 features changed significantly (income); the policy allows at most 30%")
    setup_monitoring(repo, "drift: {alpha: 0.05, max_drifted_share: 0.2, multivariate: false, advisory: true}")
    strict = monitor(repo.root, open_as="none")
    assert [(o.status, o.reason) for o in strict.outcomes] == [
        ("fail", "1 of 4 features changed significantly (income); the policy allows at most 20%")]
    with pytest.raises(CheckFailed, match="loans: drift: 1 of 4 features"):
        strict.enforce()
    assert gh.calls == []


def test_a_retraining_pr_has_a_branch_with_the_report_and_is_opened_once(repo: RegistryRepo,
                                                                         gh: FakeGitHub) -> None:
    drifted(repo)
    first = monitor(repo.root, open_as="pr", client=fast_client(gh), slug=REPO)
    (outcome,) = first.outcomes
    branch = f"retrain/loans-{outcome.batch.digest[:12]}"
    assert outcome.drifted and outcome.url.endswith("/pull/1")
    committed = json.loads(git("show", f"origin/{branch}:reports/loans/monitor.json", cwd=repo.root))
    assert committed["verdict"] == "drift" and committed["batch"]["path"] == "data/batches/2024-02.csv"
    (call,) = gh.calls_to("POST", PULLS)
    assert (call.body["head"], call.body["base"]) == (branch, "main")
    assert call.body["title"] == "Retrain loans: drift in production on batch 2024-02.csv"

    second = monitor(repo.root, open_as="pr", client=fast_client(gh), slug=REPO)
    assert second.outcomes[0].existing and len(gh.calls_to("POST", PULLS)) == 1


def test_a_hostile_batch_file_name_stays_out_of_the_issue_title(repo: RegistryRepo, gh: FakeGitHub) -> None:
    drifted(repo, name="2024-02;$(touch pwned)${{ github.token }}.csv")
    done = run_cli("monitor", "-C", repo.root)
    assert done.exit_code == EXIT_GATE_FAILED
    (call,) = gh.calls_to("POST", ISSUES)
    label = "2024-02___touch_pwned_____github.token___.csv"
    assert call.body["title"] == f"Drift in production: loans v1.0.0 on batch {label}"
    assert "the batch data/batches/2024-02;\\$(touch pwned)\\${{ github.token }}.csv (sha256" in call.body["body"]
    assert not (repo.root / "pwned").exists() and not Path("pwned").exists()


def test_open_none_reports_and_fails_without_calling_github(repo: RegistryRepo, gh: FakeGitHub) -> None:
    drifted(repo)
    done = run_cli("monitor", "--open", "none", "-C", repo.root)
    assert done.exit_code == EXIT_GATE_FAILED and gh.calls == []


@pytest.mark.parametrize(("method", "path", "reply", "expected", "message"), [
    ("GET", ISSUES, error(401), EXIT_USER_ERROR, "GITHUB_TOKEN was rejected"),
    ("GET", ISSUES, error(403), EXIT_USER_ERROR, "the token lacks a permission"),
    ("POST", ISSUES, error(404), EXIT_USER_ERROR, "check the repository"),
    ("POST", ISSUES, Reply(502), EXIT_GATE_FAILED, "502 Bad Gateway"),
])
def test_api_failures_keep_the_report_and_a_rerun_opens_the_issue_once(
        repo: RegistryRepo, gh: FakeGitHub, method: str, path: str, reply: Reply, expected: int,
        message: str) -> None:
    drifted(repo)
    gh.script(method, path, reply)  # none of these is retried: a refusal, and a POST that reached GitHub
    failed = run_cli("monitor", "-C", repo.root)
    assert failed.exit_code == expected, failed.stderr
    assert "loans v1.0.0 on data/batches/2024-02.csv: DRIFT:" in failed.stdout
    assert message in failed.stderr and "reports written (reports/loans/monitor.json)" in failed.stderr
    assert "Running again opens only what is missing" in failed.stderr and "Traceback" not in failed.stderr
    assert (repo.root / "reports/loans/monitor.json").is_file() and gh.issues == {}
    again = run_cli("monitor", "-C", repo.root)
    assert again.exit_code == EXIT_GATE_FAILED and len(gh.issues) == 1


def test_a_batch_that_cannot_be_checked_fails_but_opens_nothing(repo: RegistryRepo, gh: FakeGitHub) -> None:
    write(repo.root, "data/batches/2024-03.csv", "income,age\n1,2\n3,4\n")
    done = run_cli("monitor", "-C", repo.root)
    assert done.exit_code == EXIT_GATE_FAILED
    assert "NOT CHECKED" in done.stdout and "columns missing from the current data: debt, region" in done.stdout
    assert gh.calls == []


def test_a_batch_option_overrides_the_spec(repo: RegistryRepo, gh: FakeGitHub, tmp_path: Path) -> None:
    outside = write(tmp_path, "incoming/today.csv", batch(seed=12, shift={"income": 30.0, "debt": 15.0}))
    done = run_cli("monitor", "loans", "--batch", outside, "--open", "none", "-C", repo.root)
    assert done.exit_code == EXIT_GATE_FAILED and f"on {outside}: DRIFT" in done.stdout


def test_models_not_in_production_are_not_monitored(_template: Path, tmp_path: Path, gh: FakeGitHub) -> None:
    made = trained_repo(_template, tmp_path / "repo")
    setup_monitoring(made)
    write(made.root, "data/batches/2024-01.csv", batch(seed=12, shift={"income": 30.0}))
    done = run_cli("monitor", "-C", made.root)
    assert done.exit_code == 0 and "loans: not monitored (no verified version holds 'production')" in done.stdout
    assert not (made.root / "reports/loans/monitor.json").exists() and gh.calls == []


def test_a_named_pipeline_without_a_production_version_is_an_error(_template: Path, tmp_path: Path,
                                                                  gh: FakeGitHub) -> None:
    made = trained_repo(_template, tmp_path / "repo")
    setup_monitoring(made)
    incoming = write(tmp_path, "incoming/today.csv", batch(seed=12))
    done = run_cli("monitor", "loans", "--batch", incoming, "-C", made.root)
    assert done.exit_code == EXIT_USER_ERROR, done.stdout + done.stderr
    assert ("loans: cannot be monitored: no verified version holds 'production': promote a version to "
            "'production' first, or name another with --stage") in done.stderr
    assert "no pipeline to monitor" not in done.stdout and gh.calls == []
    plain = run_cli("monitor", "sales", "-C", made.root)
    assert plain.exit_code == EXIT_USER_ERROR
    assert "sales: cannot be monitored: no drift.current in its spec: add drift.current" in plain.stderr


def test_a_named_pipeline_without_its_drift_reference_is_an_error(repo: RegistryRepo, gh: FakeGitHub) -> None:
    (repo.root / "data/loans/train.parquet").unlink()
    done = run_cli("monitor", "loans", "-C", repo.root)
    assert done.exit_code == EXIT_USER_ERROR, done.stdout + done.stderr
    assert ("loans: cannot be monitored: its drift reference data/loans/train.parquet is not in the checkout: "
            "restore it (`dvc pull`") in done.stderr
    assert not (repo.root / "reports/loans/monitor.json").exists() and gh.calls == []


def test_an_unsigned_production_tag_is_not_watched(_template: Path, tmp_path: Path, gh: FakeGitHub) -> None:
    made = trained_repo(_template, tmp_path / "repo")
    setup_monitoring(made)
    write(made.root, "data/batches/2024-01.csv", batch(seed=12, shift={"income": 30.0}))
    git("add", "-A", cwd=made.root)
    git("commit", "-qm", "monitor loans", cwd=made.root)
    git("tag", "-a", "loans@v9.0.0", "-m", "register", cwd=made.root)
    git("tag", "-a", "loans#production#1", "-m", "promote", cwd=made.root)
    done = run_cli("monitor", "-C", made.root)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert ("loans: not monitored (no verified version holds 'production' (not counted, they do not verify: "
            "loans#production#1 [signed]))") in done.stdout
    assert not (made.root / "reports/loans/monitor.json").exists() and gh.calls == []


def test_bad_arguments_are_refused(repo: RegistryRepo) -> None:
    assert "no compiled pipeline nope" in run_cli("monitor", "nope", "-C", repo.root).stderr
    refused = run_cli("monitor", "--stage", "prod$(id)", "-C", repo.root)
    assert refused.exit_code == EXIT_USER_ERROR and "is not a valid stage name" in refused.stderr
