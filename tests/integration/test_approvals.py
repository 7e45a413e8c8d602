"""The approvals rule of a promotion, read from a local server answering with GitHub's shapes: the PR
must be the promotion's own merged request, and its reviews must approve it."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from modelops_ci.errors import EXIT_GATE_FAILED, EXIT_USER_ERROR
from modelops_ci.github.client import (
    GitHub,
    GitHubAuthError,
    GitHubConfigError,
    GitHubError,
    GitHubNotFound,
    GitHubUnavailable,
)
from modelops_ci.registry import approvals
from modelops_ci.registry.approvals import ApprovalResult, Promotion, check
from tests.helpers.approvals import PR, evidence, rule_for
from tests.helpers.github_server import REPO, TOKEN, FakeGitHub, Reply, error, serving
from tests.helpers.registry import add_promotion_pull, promotion_files

BRANCH = "promote/credit-risk-v1.2.0-to-production"
DEPLOYMENT = "deployments/production.yaml"


PROMOTION = Promotion("credit-risk", "v1.2.0", "production", "c" * 40)


@pytest.fixture
def github_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    yield from serving(monkeypatch)


@pytest.fixture
def gh(github_server: FakeGitHub) -> FakeGitHub:
    """The promotion PR #7 by alice, as `promotion-request credit-risk@v1.2.0 --to production` opens it,
    merged into main."""
    add_promotion_pull(github_server, evidence(), "production", PR, author="alice")
    return github_server


def run(server: FakeGitHub, required: int = 2,
        reviewers: Sequence[str | Sequence[str]] = ("bob", "carol", "dave", "alice"), *,
        promotion: Promotion = PROMOTION, **options: Any) -> ApprovalResult:
    client = GitHub(server.url, TOKEN, backoff=0, **{"timeout": 2.0, **options})
    return check(client, REPO, PR, promotion, required=required, reviewers=list(reviewers))


def approve(server: FakeGitHub, *logins: str) -> None:
    for login in logins:
        server.add_review(REPO, PR, login, "APPROVED")


def test_enough_allowed_approvals_on_the_head_pass(gh: FakeGitHub) -> None:
    approve(gh, "Carol", "bob")
    result = run(gh)
    assert result == ApprovalResult(True, "approvals", result.reason, ("bob", "Carol"))
    assert "2 of 2 required approvals on PR #7 at head" in result.reason


def test_self_approval_does_not_count(gh: FakeGitHub) -> None:
    approve(gh, "bob", "alice")
    result = run(gh)
    assert (result.ok, result.rule, result.approvers) == (False, "self-approval", ("bob",))
    assert "alice is the PR's author (self-approval)" in result.reason


def test_approval_of_an_older_commit_is_stale(gh: FakeGitHub) -> None:
    approve(gh, "bob", "carol")
    old = gh.pulls[(REPO, PR)]["head"]["sha"]
    gh.push(REPO, PR)
    approve(gh, "bob")  # bob re-approves the new head; carol does not
    result = run(gh)
    assert (result.ok, result.rule, result.approvers) == (False, "stale-approval", ("bob",))
    assert f"carol approved {old[:12]}, not the head" in result.reason


def test_outstanding_changes_requested_blocks_even_with_enough_approvals(gh: FakeGitHub) -> None:
    approve(gh, "bob", "carol")
    gh.add_review(REPO, PR, "dave", "CHANGES_REQUESTED", body="the fairness gate is advisory here?")
    result = run(gh)
    assert (result.ok, result.rule) == (False, "changes-requested")
    assert "changes requested by dave are outstanding" in result.reason


def test_changes_requested_then_approved_or_dismissed_no_longer_blocks(gh: FakeGitHub) -> None:
    gh.add_review(REPO, PR, "bob", "CHANGES_REQUESTED")
    approve(gh, "bob")
    blocked = gh.add_review(REPO, PR, "dave", "CHANGES_REQUESTED")
    gh.dismiss(REPO, PR, blocked["id"])
    approve(gh, "carol")
    assert run(gh).ok


def test_a_later_comment_keeps_an_approval_and_pending_reviews_are_ignored(gh: FakeGitHub) -> None:
    approve(gh, "bob", "carol")
    gh.add_review(REPO, PR, "bob", "COMMENTED", body="nit")
    gh.add_review(REPO, PR, "carol", "PENDING")
    assert run(gh).approvers == ("bob", "carol")


def test_a_dismissed_approval_does_not_count(gh: FakeGitHub) -> None:
    approve(gh, "bob")
    gh.dismiss(REPO, PR, gh.add_review(REPO, PR, "carol", "APPROVED")["id"])
    result = run(gh)
    assert (result.ok, result.rule, result.approvers) == (False, "too-few-approvals", ("bob",))
    assert result.reason.startswith("1 of 2 required approvals on PR #7")


def test_too_few_approvals(gh: FakeGitHub) -> None:
    approve(gh, "bob")
    gh.add_review(REPO, PR, "carol", "COMMENTED")
    result = run(gh)
    assert (result.ok, result.rule) == (False, "too-few-approvals")
    assert run(gh, required=1).ok


def test_approver_not_allowed_by_policy(gh: FakeGitHub) -> None:
    approve(gh, "bob", "mallory")
    result = run(gh, reviewers=("bob", "carol"))
    assert (result.ok, result.rule, result.approvers) == (False, "reviewer-not-allowed", ("bob",))
    assert "mallory is not among the policy's reviewers" in result.reason


def test_team_members_are_allowed_when_active(gh: FakeGitHub) -> None:
    gh.add_team("acme", "model-risk", {"bob": "active", "erin": "pending"})
    approve(gh, "bob", "erin", "carol")
    result = run(gh, required=3, reviewers=("@acme/model-risk", "carol"))
    assert (result.ok, result.rule, result.approvers) == (False, "reviewer-not-allowed", ("bob", "carol"))
    assert "erin is not among" in result.reason
    assert gh.calls_to("GET", "/orgs/acme/teams/model-risk/memberships/bob")
    approve(gh, "frank")
    gh.add_team("acme", "model-risk", ["bob", "erin", "frank"])
    assert run(gh, required=4, reviewers=("@acme/model-risk", "carol")).ok


def test_without_a_reviewer_list_only_repository_writers_count(gh: FakeGitHub) -> None:
    approve(gh, "bob")
    gh.add_review(REPO, PR, "drive-by", "APPROVED", association="CONTRIBUTOR")
    gh.add_review(REPO, PR, "stranger", "APPROVED", association="NONE")
    result = run(gh, reviewers=())
    assert (result.rule, result.approvers) == ("reviewer-not-allowed", ("bob",))
    gh.add_review(REPO, PR, "owner", "APPROVED", association="OWNER")
    assert run(gh, reviewers=()).ok


def test_reviews_are_read_across_three_pages(gh: FakeGitHub) -> None:
    for n in range(240):
        gh.add_review(REPO, PR, f"commenter-{n}", "COMMENTED")
    approve(gh, "bob", "carol")  # on the third page
    gh.add_review(REPO, PR, "dave", "CHANGES_REQUESTED")
    assert run(gh).rule == "changes-requested"
    pages = gh.calls_to("GET", f"/repos/{REPO}/pulls/{PR}/reviews")
    assert [c.query.get("page", ["1"])[0] for c in pages] == ["1", "2", "3"]


@pytest.mark.parametrize(("path", "reply", "kind", "code", "expected"), [
    (f"/repos/{REPO}/pulls/{PR}", error(404), GitHubNotFound, EXIT_USER_ERROR, f"GET /repos/{REPO}/pulls/{PR}: 404"),
    (f"/repos/{REPO}/pulls/{PR}/reviews", error(401), GitHubAuthError, EXIT_USER_ERROR, "401 Unauthorized"),
    (f"/repos/{REPO}/pulls/{PR}/reviews", error(403), GitHubAuthError, EXIT_USER_ERROR, "403 Forbidden"),
    ("/orgs/acme/teams/model-risk/memberships/bob", error(403), GitHubAuthError, EXIT_USER_ERROR,
     "reading @acme/model-risk needs a token with the organization's members: read permission"),
    (f"/repos/{REPO}/pulls/{PR}/reviews", error(500), GitHubUnavailable, EXIT_GATE_FAILED,
     "500 Internal Server Error after 3 attempts"),
    (f"/repos/{REPO}/pulls/{PR}", Reply(delay=2.0), GitHubUnavailable, EXIT_GATE_FAILED,
     "no answer within 0.5 s after 3 attempts"),
])
def test_github_failures_are_errors_not_verdicts(gh: FakeGitHub, caplog: pytest.LogCaptureFixture, path: str,
                                                 reply: Reply, kind: type[Exception], code: int,
                                                 expected: str) -> None:
    caplog.set_level(logging.DEBUG)
    approve(gh, "bob", "carol")
    gh.script("GET", path, *[reply] * 3)
    with pytest.raises(kind) as raised:
        run(gh, reviewers=("@acme/model-risk", "carol"), timeout=0.5)
    assert expected in str(raised.value)
    assert raised.value.exit_code == code  # type: ignore[attr-defined]
    assert TOKEN not in str(raised.value) and TOKEN not in caplog.text


def test_verifier_adapter_reads_the_policy_and_the_pr_from_the_evidence(gh: FakeGitHub) -> None:
    gh.add_team("acme", "model-risk", ["bob", "carol"])
    approve(gh, "bob")
    check_approvals = approvals.from_env(rule_for)
    assert check_approvals("credit-risk", "production", evidence()) == (
        False, "too-few-approvals", check_approvals("credit-risk", "production", evidence())[2])
    approve(gh, "carol")
    ok, rule, reason = check_approvals("credit-risk", "production", evidence())
    assert (ok, rule) == (True, "approvals") and "(bob, carol)" in reason


def test_an_approver_must_be_allowed_by_every_governing_policy(gh: FakeGitHub) -> None:
    gh.add_team("acme", "model-risk", ["bob", "carol"])
    approve(gh, "bob", "carol")
    both = [["@acme/model-risk"], ["bob", "dave"]]  # e.g. trust.StageRule.reviewers of two policies
    result = run(gh, reviewers=both)
    assert (result.rule, result.approvers) == ("reviewer-not-allowed", ("bob",))


def test_verifier_adapter_takes_a_stage_rule_object(gh: FakeGitHub) -> None:
    @dataclass(frozen=True)
    class StageRule:
        stage: str
        approvals: int
        reviewers: tuple[tuple[str, ...], ...]

    approve(gh, "bob")
    rule = StageRule("production", 1, (("bob", "carol"),))
    check_approvals = approvals.from_env(lambda pipeline, stage: rule)
    assert check_approvals("credit-risk", "production", evidence())[:2] == (True, "approvals")
    assert check_approvals("credit-risk", "production", evidence())[2].endswith("(bob)")


def test_a_failure_on_a_later_page_decides_nothing(gh: FakeGitHub) -> None:
    for n in range(150):
        gh.add_review(REPO, PR, f"commenter-{n}", "COMMENTED")
    approve(gh, "bob", "carol")
    gh.script("GET", f"/repos/{REPO}/pulls/{PR}/reviews", Reply(), *[error(502)] * 3)
    with pytest.raises(GitHubUnavailable, match="502 Bad Gateway after 3 attempts"):
        run(gh)


def test_bad_input_is_refused_before_or_after_the_call(gh: FakeGitHub) -> None:
    with pytest.raises(GitHubConfigError, match="is not owner/name"):
        check(GitHub(gh.url, TOKEN), "../../orgs", PR, PROMOTION, required=1)
    gh.route("GET", f"/repos/{REPO}/pulls/8", lambda call, match: Reply(200, [{"not": "a pull"}]))
    with pytest.raises(GitHubError, match="not a pull request"):
        check(GitHub(gh.url, TOKEN), REPO, 8, PROMOTION, required=1)
    assert not [c for c in gh.calls if "orgs" in c.path]


def test_a_pull_request_by_a_deleted_account_still_counts_approvals(gh: FakeGitHub) -> None:
    gh.pulls[(REPO, PR)]["user"] = None  # GitHub shows a deleted account as null (ghost)
    approve(gh, "bob", "carol")
    assert run(gh).ok


# -- the PR must be this promotion's request, merged into the default branch ------------------------------


def approved(server: FakeGitHub, pull: dict[str, Any]) -> dict[str, Any]:
    """`pull` approved by bob and carol on its head: enough for the rule before it was bound."""
    for login in ("bob", "carol"):
        server.add_review(REPO, int(pull["number"]), login, "APPROVED")
    return pull


def test_the_promotion_request_merged_into_main_passes(gh: FakeGitHub) -> None:
    approve(gh, "bob", "carol")
    result = run(gh)
    assert (result.ok, result.rule, result.approvers) == (True, "approvals", ("bob", "carol"))
    assert gh.calls_to("GET", f"/repos/{REPO}")
    assert len(gh.calls_to("GET", f"/repos/{REPO}/pulls/{PR}/files")) == 1
    (contents,) = gh.calls_to("GET", f"/repos/{REPO}/contents/{DEPLOYMENT}")
    assert contents.query["ref"] == [gh.pulls[(REPO, PR)]["head"]["sha"]]


def test_an_approved_typo_fix_does_not_promote(github_server: FakeGitHub) -> None:
    approved(github_server, github_server.add_pull(REPO, PR, author="alice", head_ref="fix-typo", merged=True,
                                                   files={"README.md": "modelops-ci, spelled right\n"}))
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-branch")
    assert (f"PR #7 comes from branch 'fix-typo' of {REPO}, not '{BRANCH}' of {REPO}, which "
            "`modelops-ci promotion-request credit-risk@v1.2.0 --to production` makes") in result.reason
    assert not github_server.calls_to("GET", f"/repos/{REPO}/pulls/{PR}/reviews")


@pytest.mark.parametrize(("merged", "state"), [(False, "still open"), (True, "closed without being merged")])
def test_a_pr_not_merged_does_not_promote(github_server: FakeGitHub, merged: bool, state: str) -> None:
    pull = approved(github_server, add_promotion_pull(github_server, evidence(), "production", PR, merged=False))
    if merged:  # closed: GitHub keeps merged false and merged_at null
        pull.update(state="closed", closed_at=pull["created_at"])
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-not-merged")
    assert f"PR #7 is {state}: approvals count only for a promotion PR merged into the default branch" in result.reason


def test_a_pr_merged_into_another_branch_does_not_promote(github_server: FakeGitHub) -> None:
    approved(github_server, add_promotion_pull(github_server, evidence(), "production", PR, base_ref="release-1"))
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-base")
    assert "merged into 'release-1', not the default branch 'main'" in result.reason
    assert "`modelops-ci promotion-request credit-risk@v1.2.0 --to production --base main`" in result.reason


def test_the_default_branch_is_the_repositorys_own(github_server: FakeGitHub) -> None:
    github_server.repos[REPO]["default_branch"] = "trunk"
    approved(github_server, add_promotion_pull(github_server, evidence(), "production", PR, base_ref="trunk"))
    assert run(github_server).ok
    github_server.repos[REPO]["default_branch"] = "main"
    assert run(github_server).rule == "pr-wrong-base"


@pytest.mark.parametrize(("version", "stage"), [("v1.1.0", "production"), ("v1.2.0", "staging")])
def test_the_request_for_another_version_or_stage_does_not_promote(github_server: FakeGitHub, version: str,
                                                                  stage: str) -> None:
    other = evidence(version=version, stage=stage)
    approved(github_server, add_promotion_pull(github_server, other, stage, PR))
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-branch")
    assert f"comes from branch 'promote/credit-risk-{version}-to-{stage}' of {REPO}, not '{BRANCH}'" in result.reason


def test_the_right_branch_deploying_another_version_does_not_promote(github_server: FakeGitHub) -> None:
    files = promotion_files(evidence(), "production", version="v1.1.0")
    approved(github_server, add_promotion_pull(github_server, evidence(), "production", PR, files=files))
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-change")
    assert f"PR #7: {DEPLOYMENT} at its head " in result.reason
    assert "deploys credit-risk v1.1.0, not v1.2.0" in result.reason


def test_a_deployment_of_another_commit_does_not_promote(github_server: FakeGitHub) -> None:
    files = promotion_files(evidence(commit="f" * 40), "production")
    approved(github_server, add_promotion_pull(github_server, evidence(), "production", PR, files=files))
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-change")
    assert f"deploys v1.2.0 from commit {'f' * 12}, not the tagged {'c' * 12}" in result.reason


def test_a_later_push_of_another_version_on_the_branch_does_not_promote(github_server: FakeGitHub) -> None:
    add_promotion_pull(github_server, evidence(), "production", PR, merged=False)
    github_server.push(REPO, PR, files=promotion_files(evidence(), "production", version="v0.9.0"))
    approved(github_server, github_server.merge(REPO, PR))  # approved at the final head, which lies
    assert run(github_server).rule == "pr-wrong-change"


@pytest.mark.parametrize(("files", "listed"), [
    ({"README.md": "hello\n"}, f"README.md (added), {DEPLOYMENT} (added)"),
    ({"policies/finance.yaml": "spec: {}\n"}, f"{DEPLOYMENT} (added), policies/finance.yaml (added)"),
])
def test_a_promotion_pr_that_changes_anything_else_does_not_promote(github_server: FakeGitHub,
                                                                   files: dict[str, str], listed: str) -> None:
    changed = promotion_files(evidence(), "production") | files
    approved(github_server, add_promotion_pull(github_server, evidence(), "production", PR, files=changed))
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-change")
    assert f"PR #7 changes {listed}: a promotion PR changes only {DEPLOYMENT}" in result.reason


def test_a_pr_that_deletes_the_deployments_file_does_not_promote(github_server: FakeGitHub) -> None:
    before = promotion_files(evidence(version="v1.1.0"), "production")
    pull = github_server.add_pull(REPO, PR, head_ref=BRANCH, base_files=before, files={DEPLOYMENT: None})
    approved(github_server, github_server.merge(REPO, int(pull["number"])))
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-change")
    assert f"PR #7 changes {DEPLOYMENT} (removed)" in result.reason


def test_a_pr_from_a_forks_branch_of_the_same_name_does_not_promote(github_server: FakeGitHub) -> None:
    pull = approved(github_server, add_promotion_pull(github_server, evidence(), "production", PR))
    pull["head"]["repo"] = {**pull["head"]["repo"], "full_name": "mallory/models"}
    pull["head"]["label"] = f"mallory:{BRANCH}"
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-branch")
    assert f"from branch '{BRANCH}' of mallory/models, not '{BRANCH}' of {REPO}" in result.reason


def test_a_deployments_file_that_is_not_a_deployment_does_not_promote(github_server: FakeGitHub) -> None:
    approved(github_server, add_promotion_pull(github_server, evidence(), "production", PR,
                                               files={DEPLOYMENT: "models: [credit-risk@v1.2.0\n"}))
    result = run(github_server)
    assert (result.ok, result.rule) == (False, "pr-wrong-change") and "is not YAML" in result.reason


def test_a_file_github_sends_without_content_is_an_error(gh: FakeGitHub) -> None:
    approve(gh, "bob", "carol")
    too_big = {"type": "file", "encoding": "none", "content": "", "size": 2_000_000, "path": DEPLOYMENT}
    gh.script("GET", f"/repos/{REPO}/contents/{DEPLOYMENT}", Reply(200, too_big))
    with pytest.raises(GitHubError, match="comes without its content"):
        run(gh)


# -- who can veto ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("association", ["NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR"])
def test_an_outsiders_changes_requested_does_not_block(gh: FakeGitHub, association: str) -> None:
    approve(gh, "bob", "carol")
    gh.add_review(REPO, PR, "drive-by", "CHANGES_REQUESTED", association=association)
    result = run(gh)
    assert (result.ok, result.approvers) == (True, ("bob", "carol")), result.reason


def test_a_collaborators_changes_requested_blocks_though_no_policy_names_them(gh: FakeGitHub) -> None:
    approve(gh, "bob", "carol")
    gh.add_review(REPO, PR, "erin", "CHANGES_REQUESTED", association="COLLABORATOR")
    result = run(gh, reviewers=("bob", "carol"))
    assert (result.ok, result.rule) == (False, "changes-requested")
    assert "changes requested by erin are outstanding" in result.reason


def test_a_reviewer_the_policy_names_can_block_without_write_access(gh: FakeGitHub) -> None:
    gh.add_team("acme", "model-risk", ["bob", "carol", "frank"])
    approve(gh, "bob", "carol")
    gh.add_review(REPO, PR, "frank", "CHANGES_REQUESTED", association="NONE")
    result = run(gh, reviewers=[["@acme/model-risk"], ["bob", "carol"]])  # frank: named by one policy
    assert (result.ok, result.rule) == (False, "changes-requested")
    assert "changes requested by frank" in result.reason
