"""The workflows run end to end under tests/helpers/workflow_runner.py (#6): ci.yml on pull requests (the
job summary; one PR comment, updated in place; a PR that breaks fairness fails with an annotation
at the policy line; a PR that fails before the gates), promote.yml from a merged, approved
promotion PR (its `request` job dispatches the signing run on main) to a pushed, verified stage
tag whose gates were recomputed (no tag without the signing secret; a dispatch with no PR or an
unapproved one leaves origin without the tag; the signing environment refuses any other branch;
an unsigned tag push fails `verify`), and hostile PR titles, branch names and dispatch inputs.

One trained repository is built per module (a `loans` pipeline run on main, registered as
loans@v1.0.0 by the ci-bot key); each test copies its bare `origin`. Each ci.yml run on a PR is
made once and shared by the tests that read it (a run trains the model: ~15 s).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_ci.hooks import render_local_config
from tests.helpers.cli import run_exe
from tests.helpers.github_server import REPO, TOKEN, FakeGitHub, Reply, add_list_routes
from tests.helpers.paths import PROJECT
from tests.helpers.registry import POLICY_FILE, SshKey, head, trained_repo
from tests.helpers.repos import git, write
from tests.helpers.workflow_runner import (
    Event,
    JobResult,
    RunnerError,
    WorkflowRun,
    dispatch_event,
    merge_pull_request,
    open_pull_request,
    pull_request_event,
    push_event,
    sync_pull_request,
)

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

WORKFLOWS = PROJECT / ".github" / "workflows"
CI, PROMOTE = WORKFLOWS / "ci.yml", WORKFLOWS / "promote.yml"
MARKER = "<!-- modelops-ci:report -->"
POLICY = """\
apiVersion: modelops/v1
kind: Policy
metadata: {name: lending}
spec:
  selector: {names: [loans]}
  gates:
    performance: {confidence: 0.9, metrics: {roc_auc: {min: 0.6}}}
    fairness:
      metrics:
        demographic_parity_ratio: {min: 0.8}
      min_group_size: 30
      intersectional: false
      inconclusive_warns: true
  stages: [staging, production]
  promotion:
    staging: {signers: [ci-bot], approvals: 1, reviewers: [bob]}
    production: {signers: [release-managers], approvals: 2}
"""
FAIRNESS_LINE = POLICY.splitlines().index("        demographic_parity_ratio: {min: 0.8}") + 1
STAGE_BRANCH = "promote/loans-v1.0.0-to-staging"


# -- the trained repository, once per module --------------------------------------------------------


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workflow-runs")


def _build(template: Path, registry: Path) -> None:
    """main: the loans pipeline (the sales one removed: CI time), the lending policy, allowed
    signers and pre-commit hooks, trained and committed; loans@v1.0.0 registered by ci-bot. It
    starts from a copy of the session's trained registry repo: only the gates run again here."""
    work = template / "work"
    repo = trained_repo(registry, work)
    shutil.copytree(repo.keys["ci-bot"].private.parent, template / "keys")
    write(work, POLICY_FILE, POLICY)
    git("rm", "-q", "pipelines/sales.yaml", "data/raw/sales.csv", cwd=work)
    write(work, ".pre-commit-config.yaml", render_local_config())
    # The DVC remote the training pushed to, by absolute path, so a runner's checkout pulls from it.
    remote = str(work / ".modelops" / "dvc-remote")
    subprocess.run([sys.executable, "-m", "dvc", "remote", "modify", "local", "url", remote], cwd=work, check=True)
    assert run_exe("compile", cwd=work).exit_code == 0
    ran = run_exe("run", "loans", cwd=work)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    git("add", "-A", cwd=work)
    git("commit", "-qm", "loans under the lending policy", cwd=work)
    registered = run_exe("register", "loans", "--version", "v1.0.0", "--signing-key",
                         str(template / "keys" / "ci-bot"), "--no-push", cwd=work)
    assert registered.exit_code == 0, registered.stdout + registered.stderr
    git("clone", "-q", "--bare", str(work), str(template / "origin.git"), cwd=template)


@pytest.fixture
def origin(_template: Path, registry_template: Path, tmp_path: Path) -> Path:
    """A bare copy of the module's origin: main trained, loans@v1.0.0 registered."""
    if not (_template / "origin.git").is_dir():
        shutil.rmtree(_template, ignore_errors=True)
        _template.mkdir()
        _build(_template, registry_template)
    copy = tmp_path / "origin.git"
    shutil.copytree(_template / "origin.git", copy, symlinks=True)
    return copy


@pytest.fixture
def ci_bot(_template: Path, origin: Path) -> SshKey:
    private = _template / "keys" / "ci-bot"
    return SshKey("ci-bot", private, " ".join(private.with_suffix(".pub").read_text().split()[:2]))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGitHub]:
    """One fake GitHub per module (the cached PR runs outlive a test); PR numbers keep tests apart."""
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        add_list_routes(fake)
        fake.route("POST", r"^/repos/[^/]+/[^/]+/actions/workflows/[^/]+/dispatches$", lambda call, m: Reply(204))
        yield fake


@pytest.fixture(autouse=True)
def _github_env(server: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """GITHUB_* of this process, for what the tests run themselves (verify, promotion requests)."""
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)


def clone(origin: Path, dest: Path) -> Path:
    git("clone", "-q", str(origin), str(dest), cwd=origin.parent)
    return dest


def push_branch(work: Path, branch: str, files: dict[str, str], message: str, *, compile_: bool = True) -> str:
    git("checkout", "-qb", branch, cwd=work)
    for relative, text in files.items():
        write(work, relative, text)
    if compile_:
        compiled = run_exe("compile", cwd=work)
        assert compiled.exit_code == 0, compiled.stderr
    git("add", "-A", cwd=work)
    git("commit", "-qm", message, cwd=work)
    git("push", "-q", "origin", branch, cwd=work)
    return head(work)


def unfair(csv: str) -> str:
    """The loans data with almost every applicant from the south marked as a default."""
    lines = csv.splitlines()
    rows = [line.split(",") for line in lines[1:]]
    for index, row in enumerate(rows):
        if row[3] == "south" and index % 10:
            row[4] = "yes"
    return "\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n"


def comments(server: FakeGitHub, number: int) -> list[dict[str, object]]:
    url = f"{server.url}/repos/{REPO}/issues/{number}"
    return [c for c in server.comments.values() if c["issue_url"] == url]


def remote_tags(origin: Path) -> set[str]:
    listing = git("ls-remote", "--tags", "--refs", str(origin), cwd=origin.parent)
    return {line.split("\t")[1].removeprefix("refs/tags/") for line in listing.splitlines()}


# -- the runner itself ------------------------------------------------------------------------------


SYNTHETIC = """\
on: push
env: {LEVEL: workflow}
jobs:
  first:
    runs-on: ubuntu-latest
    outputs: {greeting: "${{ steps.say.outputs.greeting }}"}
    steps:
      - id: say
        run: |
          echo "greeting=hello $LEVEL" >> "$GITHUB_OUTPUT"
          echo "FROM_ENV=set by a step" >> "$GITHUB_ENV"
          echo "## summary line" >> "$GITHUB_STEP_SUMMARY"
      - name: sees the output and GITHUB_ENV
        env: {GREETING: "${{ steps.say.outputs.greeting }}"}
        run: test "$GREETING|$FROM_ENV|$GITHUB_EVENT_NAME" = "hello workflow|set by a step|push"
      - name: fails, tolerated
        continue-on-error: true
        run: exit 3
      - name: fails
        run: echo "::error file=a.yaml,line=2::broken"; exit 1
      - name: skipped after a failure
        run: echo never
      - name: runs on failure
        if: failure()
        run: echo cleanup
  second:
    needs: first
    if: ${{ !cancelled() }}
    runs-on: ubuntu-latest
    steps:
      - env: {GOT: "${{ needs.first.outputs.greeting }}/${{ needs.first.result }}"}
        run: test "$GOT" = "hello workflow/failure"
  third:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - run: echo "first failed, so this job is skipped"
"""


def test_the_runner_follows_githubs_step_and_job_semantics(server: FakeGitHub, tmp_path: Path) -> None:
    workflow = write(tmp_path, "synthetic.yml", SYNTHETIC)
    event = Event("push", {"ref": "refs/heads/main"}, "refs/heads/main", "0" * 40)
    jobs = WorkflowRun(workflow, origin=tmp_path, event=event, server=server, root=tmp_path / "run").run()
    first = jobs["first"]
    assert [(s.name, s.outcome, s.conclusion) for s in first.steps[1:]] == [
        ("sees the output and GITHUB_ENV", "success", "success"), ("fails, tolerated", "failure", "success"),
        ("fails", "failure", "failure"), ("skipped after a failure", "skipped", "skipped"),
        ("runs on failure", "success", "success")]
    assert first.result == "failure" and first.outputs == {"greeting": "hello workflow"}
    assert first.summary == "## summary line\n"
    assert [(a.level, a.file, a.line, a.message) for a in first.annotations] == [("error", "a.yaml", 2, "broken")]
    assert jobs["second"].result == "success", jobs["second"].log()
    assert jobs["third"].result == "skipped"


@pytest.mark.parametrize(("step", "refused"), [
    ("uses: actions/github-script@60a0d83039c74a4aee543508d2ffcb1c3799cdea", "no stand-in"),
    ("uses: actions/checkout@93cb6efe18208431cddfb8368fd83d5badbf9bfd\n        with: {submodules: true}",
     "not supported"),
    ("run: echo ${{ vars.NAME }}", "context 'vars'"),
])
def test_the_runner_refuses_what_it_cannot_run(server: FakeGitHub, tmp_path: Path, step: str, refused: str) -> None:
    workflow = write(tmp_path, "w.yml", f"on: push\njobs:\n  a:\n    steps:\n      - {step}\n")
    event = Event("push", {}, "refs/heads/main", "0" * 40)
    with pytest.raises(RunnerError, match=refused):
        WorkflowRun(workflow, origin=tmp_path, event=event, server=server, root=tmp_path / "run").run()


# -- ci.yml -----------------------------------------------------------------------------------------

@dataclass
class PullRequestRun:
    """A PR in git and in the fake GitHub, and one run of ci.yml on it (made once per module)."""

    origin: Path
    work: Path
    number: int
    run: WorkflowRun
    jobs: dict[str, JobResult]


def _pr_run(cache: dict[str, PullRequestRun], key: str, origin: Path, server: FakeGitHub, tmp_path: Path,
            files: Callable[[Path], dict[str, str]], title: str, *, compile_: bool = True) -> PullRequestRun:
    if key not in cache:
        work = clone(origin, tmp_path / "dev")
        push_branch(work, key, files(work), title, compile_=compile_)
        number = open_pull_request(server, origin, key, title=title)
        run = WorkflowRun(CI, origin=origin, event=pull_request_event(server, REPO, number), server=server,
                          root=tmp_path / "run")
        cache[key] = PullRequestRun(origin, work, number, run, run.run())
    return cache[key]


@pytest.fixture(scope="module")
def _pr_runs() -> dict[str, PullRequestRun]:
    return {}


@pytest.fixture
def tuned_pr(_pr_runs: dict[str, PullRequestRun], origin: Path, server: FakeGitHub, tmp_path: Path) -> PullRequestRun:
    """A PR that halves the model's C: every gate still passes."""
    def files(work: Path) -> dict[str, str]:
        return {"pipelines/loans.yaml": (work / "pipelines/loans.yaml").read_text().replace("C: 1.0", "C: 0.5")}

    return _pr_run(_pr_runs, "tune-regularisation", origin, server, tmp_path, files, "Tune loans")


@pytest.fixture
def unfair_pr(_pr_runs: dict[str, PullRequestRun], origin: Path, server: FakeGitHub, tmp_path: Path) -> PullRequestRun:
    """A PR with new data in which applicants from the south nearly always default."""
    def files(work: Path) -> dict[str, str]:
        return {"data/raw/loans.csv": unfair((work / "data/raw/loans.csv").read_text())}

    return _pr_run(_pr_runs, "more-data", origin, server, tmp_path, files, "Add this month's applications")


def test_ci_passes_a_pull_request_and_writes_the_job_summary(tuned_pr: PullRequestRun) -> None:
    ci = tuned_pr.jobs["ci"]
    assert ci.result == "success", ci.log()
    assert [s.outcome for s in ci.steps if s.name in ("pre-commit", "modelops-ci ci")] == ["success", "success"]
    assert "loans" in ci.summary and "PASS" in ci.summary.upper(), ci.summary
    assert [a for a in ci.annotations if a.level == "error"] == []
    # The composite action installed this project (with the ml extra) and pre-commit, nothing else.
    assert ci.installs == [["-m", "pip", "install", "--disable-pip-version-check", "--quiet", f"{PROJECT}[ml]",
                            "pre-commit"]]
    uploaded = tuned_pr.run.artifacts / "modelops-reports"
    assert (uploaded / "reports/loans/gates.json").is_file() and (uploaded / "compiled/loans/dvc.lock").is_file()
    assert TOKEN not in (ci.workspace / ".git" / "config").read_text()  # persist-credentials: false
    comment = tuned_pr.jobs["comment"]
    assert comment.step("Download the reports").outcome == "success"
    assert (comment.workspace / "reports" / "loans" / "gates.json").is_file()


def test_ci_keeps_one_pr_comment_and_updates_it(tuned_pr: PullRequestRun, server: FakeGitHub,
                                               tmp_path: Path) -> None:
    number = tuned_pr.number
    comment = tuned_pr.jobs["comment"]
    assert comment.result == "success", comment.log()
    posts = server.calls_to("POST", f"/repos/{REPO}/issues/{number}/comments")
    assert len(posts) == 1
    assert posts[0].headers["authorization"] == f"Bearer {TOKEN}"
    (posted,) = comments(server, number)
    body = str(posted["body"])
    assert body.startswith(MARKER)
    assert "| loans | ✅ ready |" in body, body
    # dvc metrics diff against the base branch (fetch-depth: 0 brought it): main's committed metrics vs the PR's.
    assert "### Metrics against `origin/main`" in body, body
    assert re.search(r"^\| loans \| roc\\_auc \| 0\.\d+ \| 0\.\d+ \| [-+]", body, re.MULTILINE), body

    # A new commit on the PR: the whole workflow runs again and the one comment is updated in place.
    work = tuned_pr.work
    write(work, "pipelines/loans.yaml", (work / "pipelines/loans.yaml").read_text().replace("C: 0.5", "C: 0.25"))
    assert run_exe("compile", cwd=work).exit_code == 0
    git("commit", "-qam", "Even less", cwd=work)
    git("push", "-q", "origin", "tune-regularisation", cwd=work)
    sync_pull_request(server, tuned_pr.origin, REPO, number)
    again = WorkflowRun(CI, origin=tuned_pr.origin, event=pull_request_event(server, REPO, number, "synchronize"),
                        server=server, root=tmp_path / "run2", run_id=4243).run()
    assert again["ci"].result == again["comment"].result == "success", again["ci"].log() + again["comment"].log()
    assert len(server.calls_to("POST", f"/repos/{REPO}/issues/{number}/comments")) == 1
    assert len(server.calls_to("PATCH", f"/repos/{REPO}/issues/comments/{posted['id']}")) == 1
    (updated,) = comments(server, number)
    assert updated["id"] == posted["id"] and updated["body"] != body and "4243" in str(updated["body"])


def test_ci_fails_a_pr_that_breaks_fairness(unfair_pr: PullRequestRun) -> None:
    ci = unfair_pr.jobs["ci"]
    assert ci.result == "failure", ci.log()
    assert ci.step("pre-commit").outcome == "success"
    failed = ci.step("modelops-ci ci")
    assert (failed.outcome, failed.returncode) == ("failure", 1), ci.log()
    assert "gate(s) failed: loans: fairness: region: demographic parity ratio" in failed.stderr, failed.stderr
    assert ci.step("Upload the reports").outcome == "success"  # the gates ran: their reports go up
    assert "fairness" in ci.summary.lower() and "FAIL" in ci.summary.upper()
    assert unfair_pr.jobs["comment"].result != "skipped"  # runs after a failed ci job too


def test_the_failed_fairness_gate_is_annotated_at_the_policy_line(unfair_pr: PullRequestRun) -> None:
    ci = unfair_pr.jobs["ci"]
    errors = [a for a in ci.annotations if a.level == "error"]
    assert errors, f"no ::error annotation:\n{ci.log()}"
    assert [(a.file, a.line) for a in errors] == [(POLICY_FILE, FAIRNESS_LINE)], errors
    assert "fairness" in (errors[0].title or "").lower()
    assert "region" in errors[0].message


def test_the_pr_comment_says_which_gate_failed(unfair_pr: PullRequestRun, server: FakeGitHub) -> None:
    comment = unfair_pr.jobs["comment"]
    assert comment.result == "success", comment.log()
    (posted,) = comments(server, unfair_pr.number)
    assert "fairness" in str(posted["body"]).lower() and "FAIL" in str(posted["body"]).upper()


@pytest.fixture
def stale_pr(_pr_runs: dict[str, PullRequestRun], origin: Path, server: FakeGitHub, tmp_path: Path) -> PullRequestRun:
    """A PR that changes the spec but not the compiled pipeline: pre-commit fails, no gate runs."""
    def files(work: Path) -> dict[str, str]:
        return {"pipelines/loans.yaml": (work / "pipelines/loans.yaml").read_text().replace("C: 1.0", "C: 2.0")}

    return _pr_run(_pr_runs, "forgot-to-compile", origin, server, tmp_path, files, "Tune loans", compile_=False)


def test_a_pr_failing_pre_commit_stops_before_the_gates(stale_pr: PullRequestRun) -> None:
    ci = stale_pr.jobs["ci"]
    assert ci.result == "failure", ci.log()
    hooks = ci.step("pre-commit")
    assert hooks.outcome == "failure" and "modelops-compile-check" in hooks.stdout + hooks.stderr, ci.log()
    assert ci.step("modelops-ci ci").outcome == "skipped"
    assert ci.step("Upload the reports").outcome == "skipped"  # nothing this run wrote
    assert stale_pr.jobs["comment"].result == "success", stale_pr.jobs["comment"].log()


def test_a_pr_failing_before_the_gates_gets_no_stale_verdict(stale_pr: PullRequestRun, server: FakeGitHub) -> None:
    (posted,) = comments(server, stale_pr.number)
    body = str(posted["body"])
    assert "✅" not in body and "not ready for production" in body, body
    assert "no verdict for this commit" in body, body


# -- promote.yml ------------------------------------------------------------------------------------


def approved_promotion(origin: Path, server: FakeGitHub, tmp_path: Path) -> int:
    """The request `modelops-ci promotion-request loans@v1.0.0 --to staging` makes, approved by bob
    on its head commit, merged."""
    server.serve_git(REPO, origin)  # the PR's files, as GitHub reads them from its branches
    work = clone(origin, tmp_path / "dev")
    requested = run_exe("promotion-request", "loans@v1.0.0", "--to", "staging", cwd=work)
    assert requested.exit_code == 0, requested.stdout + requested.stderr
    opened = re.match(r"opened: PR #(\d+) ", requested.stdout)
    assert opened, requested.stdout
    number = int(opened[1])
    assert server.pulls[(REPO, number)]["head"]["ref"] == STAGE_BRANCH
    sync_pull_request(server, origin, REPO, number)  # the fake's head sha is the branch's commit
    server.add_review(REPO, number, "bob", "APPROVED")
    merge_pull_request(server, origin, number)
    return number


DISPATCHES = f"/repos/{REPO}/actions/workflows/promote.yml/dispatches"


def signing_run(origin: Path, server: FakeGitHub, root: Path, inputs: dict[str, str], key: SshKey | None,
                ) -> dict[str, JobResult]:
    """The dispatched run on main, with the signing key (if any) in the model-signing environment."""
    environments = {"model-signing": {"MODELOPS_SIGNING_KEY": key.private.read_text()}} if key else {}
    return WorkflowRun(PROMOTE, origin=origin, event=dispatch_event(server, REPO, origin, inputs), server=server,
                       root=root, environments=environments).run()


def test_a_merged_promotion_pr_becomes_a_verified_signed_tag(origin: Path, server: FakeGitHub, ci_bot: SshKey,
                                                              tmp_path: Path) -> None:
    number = approved_promotion(origin, server, tmp_path)
    before = len(server.calls_to("POST", DISPATCHES))
    merged = WorkflowRun(PROMOTE, origin=origin, event=pull_request_event(server, REPO, number, "closed"),
                         server=server, root=tmp_path / "merged",
                         environments={"model-signing": {"MODELOPS_SIGNING_KEY": ci_bot.private.read_text()}}).run()
    assert merged["request"].result == "success", merged["request"].log()
    assert merged["promote"].result == "skipped"  # no signing in a run on a pull request
    assert merged["request"].step("Read the promotion").outputs == {"name": "loans", "version": "v1.0.0",
                                                                    "stage": "staging", "pr": str(number)}
    (dispatch,) = server.calls_to("POST", DISPATCHES)[before:]
    assert dispatch.headers["authorization"] == f"Bearer {TOKEN}"
    assert dispatch.body == {"ref": "main", "inputs": {"name": "loans", "version": "v1.0.0", "stage": "staging",
                                                       "pr": str(number)}}

    jobs = signing_run(origin, server, tmp_path / "run", dispatch.body["inputs"], ci_bot)
    promote = jobs["promote"]
    assert promote.result == "success", promote.log()
    assert promote.environment == "model-signing"
    assert jobs["verify"].result == "skipped"  # tag pushes only
    assert jobs["sync-mlflow"].result == "success", jobs["sync-mlflow"].log()
    assert jobs["sync-mlflow"].environment == "mlflow"
    assert any(a.level == "notice" and a.title == "no MLflow server" for a in jobs["sync-mlflow"].annotations)
    assert "loans#staging#1" in remote_tags(origin)
    message = git("cat-file", "tag", "loans#staging#1", cwd=promote.workspace)
    assert '"recomputed":true' in message and f'"pr":{number}' in message
    assert promote.installs and promote.installs[0][-1] == f"{PROJECT}[ml]"
    for step in promote.all_steps():
        assert "PRIVATE KEY" not in step.stdout + step.stderr, step.name
    assert TOKEN not in (promote.workspace / ".git" / "config").read_text()

    # Anyone can check it: a fresh clone, the trusted main, approvals read from GitHub.
    reader = clone(origin, tmp_path / "reader")
    verified = run_exe("verify", "loans#staging#1", cwd=reader)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert server.calls_to("GET", f"/repos/{REPO}/pulls/{number}/reviews")

    # The tag push runs the `verify` job, which accepts it.
    pushed = WorkflowRun(PROMOTE, origin=origin, event=push_event(server, REPO, origin, "refs/tags/loans#staging#1"),
                         server=server, root=tmp_path / "push").run(["promote", "verify"])
    assert pushed["promote"].result == "skipped"
    assert pushed["verify"].result == "success", pushed["verify"].log()


def test_without_the_signing_secret_nothing_is_promoted(origin: Path, server: FakeGitHub, tmp_path: Path) -> None:
    number = approved_promotion(origin, server, tmp_path)
    before = remote_tags(origin)
    inputs = {"name": "loans", "version": "v1.0.0", "stage": "staging", "pr": str(number)}
    jobs = signing_run(origin, server, tmp_path / "run", inputs, None)

    promote = jobs["promote"]
    assert promote.result == "failure", promote.log()
    assert promote.step("Promote and push the signed tag").outcome == "failure"
    (error,) = [a for a in promote.annotations if a.level == "error"]
    assert error.title == "no signing key" and "MODELOPS_SIGNING_KEY secret is not set" in error.message
    assert remote_tags(origin) == before
    assert not any("#staging#" in tag for tag in remote_tags(origin))
    assert jobs["sync-mlflow"].result == "skipped"


@pytest.mark.parametrize("reviewed", [False, True], ids=["no PR", "unapproved PR"])
def test_a_refused_promotion_never_leaves_the_runner(origin: Path, server: FakeGitHub, ci_bot: SshKey,
                                                     tmp_path: Path, reviewed: bool) -> None:
    """A dispatch with an empty PR (staging needs one approval) or with a PR nobody approved: once the
    signed tag reached origin before the approvals were checked; now origin never sees it."""
    pr = ""
    if reviewed:
        server.serve_git(REPO, origin)
        work = clone(origin, tmp_path / "dev")
        requested = run_exe("promotion-request", "loans@v1.0.0", "--to", "staging", cwd=work)
        assert requested.exit_code == 0, requested.stdout + requested.stderr
        number = int(re.match(r"opened: PR #(\d+) ", requested.stdout)[1])  # type: ignore[index]
        sync_pull_request(server, origin, REPO, number)
        server.add_review(REPO, number, "bob", "CHANGES_REQUESTED")
        merge_pull_request(server, origin, number)
        pr = str(number)
    inputs = {"name": "loans", "version": "v1.0.0", "stage": "staging", "pr": pr}
    jobs = signing_run(origin, server, tmp_path / "run", inputs, ci_bot)
    promote = jobs["promote"]
    assert promote.result == "failure", promote.log()
    said = promote.step("Promote and push the signed tag")
    expected = "does not verify, so it was removed and not pushed" if reviewed else "and no --pr was given"
    assert expected in said.stderr, promote.log()
    assert not any("#staging#" in tag for tag in remote_tags(origin))
    assert jobs["sync-mlflow"].result == "skipped"


def test_the_signing_environment_refuses_any_other_branch(origin: Path, server: FakeGitHub, ci_bot: SshKey,
                                                          tmp_path: Path) -> None:
    """A writer's branch whose workflow asks for the signing job: the environment keeps the key."""
    inputs = {"name": "loans", "version": "v1.0.0", "stage": "staging", "pr": ""}
    work = clone(origin, tmp_path / "dev")
    git("push", "-q", "origin", "HEAD:refs/heads/feature", cwd=work)
    event = dispatch_event(server, REPO, origin, inputs, ref="refs/heads/feature")
    event.payload["repository"]["default_branch"] = "feature"  # even a run that passes the job's `if:`
    run = WorkflowRun(PROMOTE, origin=origin, event=event, server=server, root=tmp_path / "run",
                      environments={"model-signing": {"MODELOPS_SIGNING_KEY": ci_bot.private.read_text()}},
                      environment_branches={"model-signing": ["main"]})
    promote = run.run(["promote"])["promote"]
    assert promote.result == "failure" and promote.steps == []
    assert 'Branch "feature" is not allowed to deploy to model-signing' in promote.refusal


def test_an_unsigned_tag_push_fails_the_verify_job(origin: Path, server: FakeGitHub, tmp_path: Path) -> None:
    work = clone(origin, tmp_path / "dev")
    git("tag", "-a", "-m", "trust me", "loans#production#1", "loans@v1.0.0^{commit}", cwd=work)
    git("push", "-q", "origin", "loans#production#1", cwd=work)
    jobs = WorkflowRun(PROMOTE, origin=origin, event=push_event(server, REPO, origin, "refs/tags/loans#production#1"),
                       server=server, root=tmp_path / "run").run(["verify"])
    verify = jobs["verify"]
    assert verify.result == "failure", verify.log()
    assert any(a.level == "error" and a.title == "unverified registry tag" for a in verify.annotations), verify.log()


# -- hostile input ----------------------------------------------------------------------------------


def hostile(marker: Path) -> str:
    return f"$(touch${{IFS}}{marker})`touch${{IFS}}{marker}`;touch${{IFS}}{marker};${{{{github.token}}}}"


def test_hostile_pr_title_and_branch_run_nothing(origin: Path, server: FakeGitHub, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    work = clone(origin, tmp_path / "dev")
    branch = f"promote/loans-v1.0.0-to-staging{hostile(marker)}"
    deployment = ("apiVersion: modelops/v1\nkind: Deployment\nmetadata: {name: staging}\n"
                  "spec: {stage: staging, models: {}}\n")
    push_branch(work, branch, {"deployments/staging.yaml": deployment}, "Promote")
    title = f"Promote {hostile(marker)} ${{{{ secrets.MODELOPS_SIGNING_KEY }}}} \"'; touch {marker}"
    number = open_pull_request(server, origin, branch, title=title)
    event = pull_request_event(server, REPO, number)
    assert event.payload["pull_request"]["head"]["ref"] == branch

    # ci.yml's comment job, whose event carries them: its steps get them as data or not at all.
    comment = WorkflowRun(CI, origin=origin, event=event, server=server, root=tmp_path / "ci").run(["comment"])
    assert comment["comment"].result == "success", comment["comment"].log()
    (posted,) = comments(server, number)
    assert TOKEN not in str(posted["body"])

    # Merged: promote.yml refuses the branch name before anything reaches a command line or a key.
    server.add_review(REPO, number, "bob", "APPROVED")
    merge_pull_request(server, origin, number)
    jobs = WorkflowRun(PROMOTE, origin=origin, event=pull_request_event(server, REPO, number, "closed"),
                       server=server, root=tmp_path / "promote", secrets={"MODELOPS_SIGNING_KEY": "not used"}).run()
    request = jobs["request"]
    assert request.result == "failure"
    assert request.step("Read the promotion").outcome == "failure"
    assert request.step("Start the signing run on the default branch").outcome == "skipped"
    assert [a.title for a in request.annotations if a.level == "error"] == ["not a promotion"]
    assert jobs["promote"].result == "skipped"

    # A manual dispatch with hostile inputs is refused the same way.
    inputs = {"name": f"loans{hostile(marker)}", "version": "v1.0.0", "stage": "staging", "pr": str(number)}
    dispatched = WorkflowRun(PROMOTE, origin=origin, event=dispatch_event(server, REPO, origin, inputs),
                             server=server, root=tmp_path / "dispatch",
                             secrets={"MODELOPS_SIGNING_KEY": "not used"}).run(["promote"])
    assert [a.title for a in dispatched["promote"].annotations if a.level == "error"] == ["bad promotion request"]

    assert not marker.exists()
    assert not any("#staging#" in tag for tag in remote_tags(origin))
