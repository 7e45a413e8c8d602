"""The GitHub side of CI against a local fake GitHub and real git + DVC repos: the one PR comment
(metric diffs from `dvc metrics diff`, found by its marker and updated, cut to 65,536 characters),
`::error` annotations at the policy line behind a failed gate, the job summary under 1 MiB, and
promotion requests (branch, commit, push, PR) — with bad names and every way the API can fail — and
that a merged request is what the approvals rule counts, read from GitHub's view of the pushed git."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_ci.commands.promotion_request import open_request, parse
from modelops_ci.errors import EXIT_GATE_FAILED, EXIT_USER_ERROR
from modelops_ci.gates.verdict import GatesReport
from modelops_ci.github.annotations import commands, gate_annotations
from modelops_ci.github.client import GitHub, GitHubAuthError, GitHubUnavailable
from modelops_ci.github.comment import comment_body, upsert_comment
from modelops_ci.github.metrics import Diffs, MetricDiff
from modelops_ci.registry import approvals
from modelops_ci.report.markdown import PR_COMMENT_LIMIT
from tests.helpers.cli import run_cli
from tests.helpers.github_server import REPO, TOKEN, FakeGitHub, Reply, add_list_routes, error, fast_client, serving
from tests.helpers.registry import RegistryRepo, assign, register, trained_repo, with_origin
from tests.helpers.repos import git, write
from tests.helpers.specs import loans_policy

MARKER = "<!-- modelops-ci:report -->"
PR = 7
COMMENTS = f"/repos/{REPO}/issues/{PR}/comments"
PULLS = f"/repos/{REPO}/pulls"
RUN_LINK = "https://github.com/acme/models/actions/runs/4242"
HOSTILE = ["loans$(touch pwned)@v1.0.0", "loans@v1.0.0;touch pwned", "loans`touch pwned`@v1.0.0",
           "${{ github.token }}@v1.0.0", "loans@v1.0.0${{ secrets.X }}", "loans@v1.0"]


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def repo(registry_template: Path, tmp_path: Path) -> RegistryRepo:
    return trained_repo(registry_template, tmp_path / "repo")


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    for name in ("GITHUB_RUN_ID", "GITHUB_SERVER_URL", "GITHUB_EVENT_PATH", "GITHUB_BASE_REF", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    for server in serving(monkeypatch):
        server.add_pull(REPO, PR, head_ref="feature", title="Better model")
        add_list_routes(server)
        yield server


def comments_on(server: FakeGitHub, number: int = PR) -> list[dict[str, Any]]:
    url = f"{server.url}/repos/{REPO}/issues/{number}"
    return [c for c in server.comments.values() if c["issue_url"] == url]


def report_of(root: Path, pipeline: str = "loans", **changes: Any) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((root / f"reports/{pipeline}/gates.json").read_text())
    report.update(changes)
    return report


# -- the PR comment ----------------------------------------------------------------------------------


def test_comment_is_posted_once_then_updated_in_place(repo: RegistryRepo, gh: FakeGitHub,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    client = fast_client(gh)
    for index in range(105):  # ours lands on the second page of comments
        client.post(COMMENTS, {"body": f"review note {index}"})
    metrics = repo.root / "reports/loans/metrics.json"
    values = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**values, "roc_auc": values["roc_auc"] + 0.01}))
    hostile = "$(touch pwned) `touch pwned` ${{ github.token }}"
    event = write(repo.root.parent, "event.json", json.dumps({"pull_request": {
        "number": PR, "title": hostile, "head": {"ref": "feature;touch pwned"}, "body": hostile}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")

    first = run_cli("github", "comment", "-C", repo.root)
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith("created comment")
    ours = [c for c in comments_on(gh) if c["body"].startswith(MARKER)]
    assert len(ours) == 1
    body = ours[0]["body"]
    assert "# ✅ 1 pipeline ready for production" in body
    assert "### Metrics against `main`" in body
    assert re.search(rf"\| loans \| roc\\_auc \| {values['roc_auc']:.4g} \| {values['roc_auc'] + 0.01:.4g} \| "
                     r"\+0\.01 \(\+\d\.\d%\) \|", body)
    assert "| loans | accuracy |" in body and RUN_LINK in body
    assert "pwned" not in body and "${{" not in body  # the PR's title and branch are data, never read as code
    assert not (repo.root / "pwned").exists() and not Path("pwned").exists()

    metrics.write_text(json.dumps({**values, "roc_auc": values["roc_auc"] - 0.02}))
    second = run_cli("github", "comment", "--pr", PR, "-C", repo.root)
    assert second.exit_code == 0 and second.stdout.startswith(f"updated comment {ours[0]['id']}")
    third = run_cli("github", "comment", "--pr", PR, "-C", repo.root)
    assert third.exit_code == 0 and third.stdout.startswith("unchanged comment")
    assert len([c for c in comments_on(gh) if c["body"].startswith(MARKER)]) == 1
    assert len(comments_on(gh)) == 106
    assert "-0.02" in comments_on(gh)[-1]["body"]


def test_without_gate_results_or_a_pr_number(repo: RegistryRepo, gh: FakeGitHub) -> None:
    body = comment_body([], Diffs("main", problem="the base branch `main` is not in this clone"), link=RUN_LINK)
    assert body.startswith(MARKER + "\n## ⛔ No gate results") and RUN_LINK in body
    done = run_cli("github", "comment", "-C", repo.root)
    assert done.exit_code == EXIT_USER_ERROR and "no pull request: pass --pr N" in done.stderr
    assert gh.calls == []


def test_a_base_branch_missing_from_the_clone_is_said_in_the_comment(repo: RegistryRepo, gh: FakeGitHub) -> None:
    done = run_cli("github", "comment", "--dry-run", "--base", "release/2024", "-C", repo.root)
    assert done.exit_code == 0, done.stderr
    assert "the base branch `release/2024` is not in this clone" in done.stdout and "fetch-depth: 0" in done.stdout
    assert gh.calls == []


@pytest.mark.parametrize("base", ["main$(touch pwned)", "${{ github.head_ref }}", "--all", "main;id", "a..b"])
def test_a_hostile_base_branch_is_refused_before_anything_runs(repo: RegistryRepo, gh: FakeGitHub,
                                                               base: str) -> None:
    done = run_cli("github", "comment", "--pr", PR, "--base", base, "-C", repo.root)
    assert done.exit_code == EXIT_USER_ERROR
    assert "is not a branch name" in done.stderr
    assert gh.calls == [] and not (repo.root / "pwned").exists() and not Path("pwned").exists()


def test_a_comment_over_65536_characters_is_cut_with_a_link_to_the_run(repo: RegistryRepo, gh: FakeGitHub) -> None:
    loans = report_of(repo.root)
    long_reason = "the model is worse on every group of the data; " * 30
    reports = [{**loans, "pipeline": f"p{i:03d}", "verdict": "fail", "reason": long_reason,
                "gates": [{**loans["gates"][0], "status": "fail", "reason": long_reason}]} for i in range(150)]
    rows = tuple(MetricDiff(f"p{i:03d}", f"metric_{j}", 0.5, 0.5 + j / 100) for i in range(150) for j in range(40))
    body = comment_body([GatesReport.from_json(r) for r in reports], Diffs("main", rows), link=RUN_LINK)
    assert len(body) <= PR_COMMENT_LIMIT
    assert body.startswith(MARKER + "\n# ❌ 150 of 150 pipelines not ready for production")
    assert f"The full report does not fit in a comment (GitHub allows 65,536 characters): it is in " \
           f"[the run's artifacts]({RUN_LINK})" in body
    assert re.search(r"\| and \d+ more \| \| \| \| \|", body)  # metric rows that did not fit

    posted = upsert_comment(fast_client(gh), REPO, PR, body)  # the fake answers 422 above the limit
    assert posted.action == "created" and comments_on(gh)[0]["body"] == body


@pytest.mark.parametrize(("method", "path", "status", "expected", "message"), [
    ("GET", COMMENTS, 401, EXIT_USER_ERROR, "GITHUB_TOKEN was rejected"),
    ("POST", COMMENTS, 403, EXIT_USER_ERROR, "the token lacks a permission"),
    ("GET", COMMENTS, 404, EXIT_USER_ERROR, "check the repository and number"),
    ("POST", COMMENTS, 502, EXIT_GATE_FAILED, "The comment is not on PR #7"),
])
def test_api_refusals_fail_clearly_and_post_nothing(repo: RegistryRepo, gh: FakeGitHub, method: str, path: str,
                                                    status: int, expected: int, message: str) -> None:
    gh.script(method, path, error(status))
    done = run_cli("github", "comment", "--pr", PR, "--base", "main", "-C", repo.root)
    assert done.exit_code == expected, done.stderr
    assert message in done.stderr and f"GitHub {method} {path}" in done.stderr
    assert TOKEN not in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert comments_on(gh) == []
    again = run_cli("github", "comment", "--pr", PR, "--base", "main", "-C", repo.root)
    assert again.exit_code == 0, again.stderr
    assert len(comments_on(gh)) == 1


def test_a_create_that_timed_out_but_landed_is_updated_not_posted_twice(gh: FakeGitHub) -> None:
    gh.script("POST", COMMENTS, Reply(delay=1.5))  # GitHub creates it, but answers too late
    client = fast_client(gh, timeout=0.5)
    with pytest.raises(GitHubUnavailable, match="run the command again"):
        upsert_comment(client, REPO, PR, MARKER + "\nfirst")
    assert len(gh.calls_to("POST", COMMENTS)) == 1  # a POST that was sent is never repeated blindly
    for _ in range(50):
        if comments_on(gh):
            break
        time.sleep(0.05)
    posted = upsert_comment(fast_client(gh), REPO, PR, MARKER + "\nsecond")
    assert posted.action == "updated"
    assert [c["body"] for c in comments_on(gh)] == [MARKER + "\nsecond"]


def test_listing_comments_is_retried_after_a_5xx_and_a_timeout(gh: FakeGitHub) -> None:
    gh.script("GET", COMMENTS, Reply(503), Reply(delay=1.5))
    posted = upsert_comment(fast_client(gh, timeout=0.5), REPO, PR, MARKER + "\nbody")
    assert posted.action == "created"
    assert len(gh.calls_to("GET", COMMENTS)) == 3 and len(gh.calls_to("POST", COMMENTS)) == 1


def test_with_every_attempt_timing_out_nothing_is_posted(gh: FakeGitHub) -> None:
    gh.script("GET", COMMENTS, *[Reply(delay=1.5)] * 3)
    with pytest.raises(GitHubUnavailable, match=r"no answer within 0\.5 s after 3 attempts"):
        upsert_comment(fast_client(gh, timeout=0.5), REPO, PR, MARKER + "\nbody")
    assert gh.calls_to("POST", COMMENTS) == []


def test_a_bad_token_is_never_shown(gh: FakeGitHub) -> None:
    with pytest.raises(GitHubAuthError) as caught:
        upsert_comment(GitHub(gh.url, "ghs_wrong_token_123"), REPO, PR, MARKER + "\nbody")
    assert "ghs_wrong_token_123" not in str(caught.value) and TOKEN not in str(caught.value)


# -- annotations --------------------------------------------------------------------------------------


POLICY = loans_policy("performance:\n  confidence: 0.9\n  metrics:\n    roc_auc:\n      min: 0.6",
                      stages="staging, production")


def fail_performance(root: Path, minimum: float) -> None:
    """gates.json as `gate` writes it when ROC AUC falls short of `minimum`."""
    report = report_of(root)
    gate = report["gates"][0]
    check = {**gate["checks"][0], "status": "fail", "threshold": {"min": minimum},
             "reason": f"ROC AUC is 0.84: the policy needs at least {minimum},\nsurely"}
    report["gates"] = [{**gate, "status": "fail", "reason": check["reason"], "checks": [check]}]
    report.update(verdict="fail", reason="performance: " + check["reason"])
    write(root, "reports/loans/gates.json", json.dumps(report))


def test_a_failed_gate_is_annotated_at_its_policy_threshold(repo: RegistryRepo) -> None:
    write(repo.root, "policies/test.yaml", POLICY)
    fail_performance(repo.root, 0.6)
    done = run_cli("github", "annotations", "-C", repo.root)
    assert done.exit_code == 0
    line = POLICY.splitlines().index("          min: 0.6") + 1
    assert done.stdout.splitlines() == [
        f"::error file=policies/test.yaml,line={line},col=11,title=loans%3A Performance gate failed::"
        "loans: ROC AUC is 0.84: the policy needs at least 0.6, surely"]


def test_a_threshold_the_pipeline_sets_is_annotated_in_its_spec(repo: RegistryRepo) -> None:
    write(repo.root, "policies/test.yaml", POLICY)
    spec = (repo.root / "pipelines/loans.yaml").read_text()
    write(repo.root, "pipelines/loans.yaml", spec + "  gates:\n    performance: {metrics: {roc_auc: {min: 0.95}}}\n")
    fail_performance(repo.root, 0.95)
    (done,) = commands(gate_annotations(repo.root))
    line = len(spec.splitlines()) + 2
    assert done.startswith(f"::error file=pipelines/loans.yaml,line={line},col=")


def test_passing_gates_make_no_annotation(repo: RegistryRepo) -> None:
    done = run_cli("github", "annotations", "-C", repo.root)
    assert (done.exit_code, done.stdout) == (0, "")


# -- promotion requests ------------------------------------------------------------------------------


@pytest.fixture
def registered(repo: RegistryRepo, tmp_path: Path) -> RegistryRepo:
    """loans@v1.0.0 registered (signed tag) and main + tags on a bare origin."""
    register(repo, "ci-bot", version="v1.0.0")
    with_origin(repo.root, tmp_path)
    return repo


def branches(root: Path) -> list[str]:
    return git("ls-remote", "--heads", "origin", cwd=root).split()[1::2]


def test_a_promotion_request_pushes_a_branch_and_opens_a_pr_with_the_evidence(registered: RegistryRepo,
                                                                              gh: FakeGitHub) -> None:
    root = registered.root
    head_before = git("rev-parse", "HEAD", cwd=root)
    done = run_cli("promotion-request", "loans@v1.0.0", "--to", "staging", "--canary", "10", "-C", root)
    assert done.exit_code == 0, done.stderr
    branch = "promote/loans-v1.0.0-to-staging"
    assert branches(root) == ["refs/heads/main", f"refs/heads/{branch}"]
    deployment = yaml.safe_load(git("show", f"origin/{branch}:deployments/staging.yaml", cwd=root))
    assert deployment["kind"] == "Deployment" and deployment["metadata"]["name"] == "staging"
    # no champion in staging yet: the version becomes it, pinned to the commit it was registered at
    assert deployment["spec"]["models"]["loans"] == {"champion": "v1.0.0", "commits": {"v1.0.0": registered.commit}}
    assert git("log", "--format=%P %s", "-1", f"origin/{branch}", cwd=root).split(" ", 1) == [
        git("rev-parse", "origin/main", cwd=root).strip(), "Promote loans v1.0.0 to staging\n"]
    (call,) = gh.calls_to("POST", PULLS)
    assert call.body["title"] == "Promote loans v1.0.0 to staging"
    assert (call.body["head"], call.body["base"]) == (branch, "main")
    assert registered.commit in call.body["body"] and '"verdict":"pass"' in call.body["body"]
    assert "a roll-out starting at 10% of traffic when a champion is deployed" in call.body["body"]
    assert git("rev-parse", "HEAD", cwd=root) == head_before and git("status", "--porcelain", cwd=root) == ""
    assert "opened: PR #8 https://github.com/acme/models/pull/8" in done.stdout

    again = run_cli("promotion-request", "loans@v1.0.0", "--to", "staging", "--canary", "10", "-C", root)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith("already open: PR #8") and len(gh.calls_to("POST", PULLS)) == 1


@pytest.mark.parametrize(("args", "message"), [
    *[((target, "--to", "staging"), "is not NAME@vX.Y.Z") for target in HOSTILE],
    (("loans@v1.0.0", "--to", "staging$(touch pwned)"), "is not a valid stage name"),
    (("loans@v1.0.0", "--to", "${{ github.event.pull_request.title }}"), "is not a valid stage name"),
    (("loans@v1.0.0", "--to", "staging", "--base", "main;touch pwned"), "is not a branch name"),
    (("loans@v1.0.0", "--to", "staging", "--base", "${{ github.base_ref }}"), "is not a branch name"),
    (("loans@v1.0.0", "--to", "staging", "--canary", "0"), "percentage from 1 to 100"),
])
def test_hostile_names_are_refused_before_anything_happens(registered: RegistryRepo, gh: FakeGitHub,
                                                           args: tuple[str, ...], message: str) -> None:
    done = run_cli("promotion-request", *args, "-C", registered.root)
    assert done.exit_code == EXIT_USER_ERROR, done.stdout
    assert message in done.stderr
    assert gh.calls == [] and branches(registered.root) == ["refs/heads/main"]
    assert not (registered.root / "pwned").exists() and not Path("pwned").exists()


def test_a_request_that_skips_a_stage_is_refused_before_any_push(registered: RegistryRepo, gh: FakeGitHub) -> None:
    done = run_cli("promotion-request", "loans@v1.0.0", "--to", "production", "-C", registered.root)
    assert done.exit_code == EXIT_GATE_FAILED
    assert "is not in 'staging'" in done.stderr and "request 'staging' first" in done.stderr
    assert gh.calls == [] and branches(registered.root) == ["refs/heads/main"]


def test_after_staging_production_can_be_requested(registered: RegistryRepo, gh: FakeGitHub) -> None:
    assign(registered, "staging", 1)
    request = parse("loans@v1.0.0", "production")
    opened = open_request(registered.root, request, client=fast_client(gh), slug=REPO)
    assert opened.created and opened.pushed and opened.branch == "promote/loans-v1.0.0-to-production"


def test_the_merged_request_is_what_approvals_count_for_and_a_later_commit_is_not(
        registered: RegistryRepo, gh: FakeGitHub, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    gh.serve_git(REPO, origin)  # the PR's files and contents come from what was pushed
    opened = open_request(registered.root, parse("loans@v1.0.0", "staging"), client=fast_client(gh), slug=REPO)
    pull = gh.pulls[(REPO, opened.number)]
    assert pull["head"]["sha"] == opened.commit
    gh.add_review(REPO, opened.number, "bob", "APPROVED")
    promotion = approvals.Promotion("loans", "v1.0.0", "staging", registered.commit)

    def judged() -> approvals.ApprovalResult:
        return approvals.check(fast_client(gh), REPO, opened.number, promotion, required=1, reviewers=["bob"])

    assert judged().rule == "pr-not-merged"
    gh.merge(REPO, opened.number)
    assert judged().ok, judged().reason
    listed = fast_client(gh).get_paginated(f"{PULLS}/{opened.number}/files")
    assert [(f["filename"], f["status"], f["deletions"]) for f in listed] == [("deployments/staging.yaml", "added", 0)]
    assert "\n+      champion: v1.0.0\n" in listed[0]["patch"]

    # One more commit on the request's branch, approved at the new head: no longer only the deployment.
    work = tmp_path / "work"
    git("clone", "-q", "-b", opened.branch, str(origin), str(work), cwd=tmp_path)
    write(work, "README.md", "also this\n")
    git("add", "README.md", cwd=work)
    git("commit", "-qm", "and a README", cwd=work)
    git("push", "-q", "origin", opened.branch, cwd=work)
    gh.push(REPO, opened.number, git("rev-parse", "HEAD", cwd=work).strip())
    gh.add_review(REPO, opened.number, "bob", "APPROVED")
    result = judged()
    assert (result.ok, result.rule) == (False, "pr-wrong-change")
    assert "changes README.md (added), deployments/staging.yaml (added)" in result.reason


@pytest.mark.parametrize(("status", "expected"), [(403, EXIT_USER_ERROR), (502, EXIT_GATE_FAILED)])
def test_a_pr_that_fails_after_the_push_says_what_exists_and_a_rerun_finishes(
        registered: RegistryRepo, gh: FakeGitHub, status: int, expected: int) -> None:
    gh.script("POST", PULLS, error(status))
    done = run_cli("promotion-request", "loans@v1.0.0", "--to", "staging", "-C", registered.root)
    branch = "promote/loans-v1.0.0-to-staging"
    assert done.exit_code == expected
    assert f"branch '{branch}' is on 'origin'" in done.stderr
    assert "to finish: run `modelops-ci promotion-request loans@v1.0.0 --to staging --base main` again" in done.stderr
    assert f"https://github.com/{REPO}/compare/main...{branch}?expand=1" in done.stderr
    assert f"to clean up instead: git push origin --delete {branch}" in done.stderr
    assert ("It may have been opened anyway" in done.stderr) is (status == 502)
    assert branches(registered.root) == ["refs/heads/main", f"refs/heads/{branch}"] and not gh.pulls.keys() - {
        (REPO, PR)}
    pushed = git("rev-parse", f"refs/remotes/origin/{branch}", cwd=registered.root)

    again = run_cli("promotion-request", "loans@v1.0.0", "--to", "staging", "-C", registered.root)
    assert again.exit_code == 0, again.stderr
    assert f"branch {branch} (already on origin)" in again.stdout
    assert git("ls-remote", "origin", f"refs/heads/{branch}", cwd=registered.root).split()[0] == pushed.strip()
    assert len([p for p in gh.pulls.values() if p["head"]["ref"] == branch]) == 1


@pytest.mark.parametrize("reply", [error(401), Reply(delay=1.5)])
def test_an_api_that_refuses_or_hangs_before_the_push_leaves_nothing(registered: RegistryRepo, gh: FakeGitHub,
                                                                    reply: Reply) -> None:
    gh.script("GET", PULLS, *[reply] * 3)
    request = parse("loans@v1.0.0", "staging")
    with pytest.raises((GitHubAuthError, GitHubUnavailable)):
        open_request(registered.root, request, client=fast_client(gh, timeout=0.5), slug=REPO)
    assert branches(registered.root) == ["refs/heads/main"] and gh.calls_to("POST", PULLS) == []


def test_a_branch_on_origin_with_other_content_is_not_overwritten(registered: RegistryRepo, gh: FakeGitHub) -> None:
    root = registered.root
    git("push", "-q", "origin", "HEAD~1:refs/heads/promote/loans-v1.0.0-to-staging", cwd=root)
    done = run_cli("promotion-request", "loans@v1.0.0", "--to", "staging", "-C", root)
    assert done.exit_code == EXIT_USER_ERROR
    assert "already exists on 'origin' with other content" in done.stderr
    assert gh.calls_to("POST", PULLS) == []


def test_without_a_token_nothing_is_pushed(registered: RegistryRepo, gh: FakeGitHub,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    done = run_cli("promotion-request", "loans@v1.0.0", "--to", "staging", "-C", registered.root)
    assert done.exit_code == EXIT_USER_ERROR and "GITHUB_TOKEN is not set" in done.stderr
    assert branches(registered.root) == ["refs/heads/main"]


def test_every_github_command_and_option_has_help() -> None:
    from modelops_ci.cli.github import github, monitor, promotion_request

    commands_ = [monitor, promotion_request, *github.commands.values()]
    for command in commands_:
        assert command.help, command.name
        for param in command.params:
            if param.param_type_name == "option":
                assert getattr(param, "help", None), f"{command.name} {param.name}"
