"""The approvals rule of `verify`, end to end: trusted policy -> the promotion's own merged PR and its
reviews (a local server answering with GitHub's payloads) -> the rule a refused promotion breaks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.registry import approvals, evidence, trust
from modelops_ci.registry.verify import verify
from tests.helpers.cli import run_cli, run_exe
from tests.helpers.github_server import REPO, TOKEN, FakeGitHub, serving
from tests.helpers.registry import (
    POLICY_FILE,
    RegistryRepo,
    add_promotion_pull,
    assign,
    commit_files,
    promotion_files,
    register,
    registry_repo,
    with_origin,
)
from tests.helpers.repos import git
from tests.helpers.servers import free_port
from tests.helpers.specs import loans_policy

PR = 7
POLICY = loans_policy("performance: {metrics: {roc_auc: {min: 0.5}}}", stages="staging, production",
                      promotion="staging: {signers: [ci-bot]}\n"
                                "production: {signers: [release-managers], approvals: 1, reviewers: [bob, carol]}\n")


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    yield from serving(monkeypatch)


@pytest.fixture
def production(registry_template: Path, tmp_path: Path) -> tuple[RegistryRepo, str]:
    repo = registry_repo(registry_template, tmp_path / "repo")
    register(repo)
    assign(repo, "staging", 1)
    tag = assign(repo, "production", 2, "release-managers", pr=PR, approvers=["bob"])
    # the trusted branch moves on: its policy names who may approve production
    commit_files(repo.root, {"policies/test.yaml": POLICY}, "production reviewers")
    return repo, tag


def claimed(repo: RegistryRepo, **changes: Any) -> evidence.Evidence:
    """The evidence of loans v1.0.0 at the tagged commit, as `promotion-request` puts it in the PR."""
    found = evidence.collect(repo.root, "loans", repo.commit, version="v1.0.0", stage="production")
    return replace(found, **changes)


def promotion_pr(repo: RegistryRepo, github: FakeGitHub, author: str = "alice") -> dict[str, Any]:
    """The request `modelops-ci promotion-request loans@v1.0.0 --to production` opens, merged into main."""
    return add_promotion_pull(github, claimed(repo), "production", PR, author=author)


def _verify(repo: RegistryRepo, tag: str) -> tuple[bool, str, str]:
    judge = approvals.from_env(trust.promotion_rule(repo.root), repo.root)
    result = verify(repo.root, tag, approvals=judge)
    return result.ok, result.rule, result.reason


def test_an_approved_promotion_verifies(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    promotion_pr(repo, github)
    github.add_review(REPO, PR, "bob", "APPROVED")
    ok, rule, reason = _verify(repo, tag)
    assert ok, (rule, reason)


def test_self_approval_does_not_count(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    promotion_pr(repo, github, author="bob")
    github.add_review(REPO, PR, "bob", "APPROVED")
    assert _verify(repo, tag)[:2] == (False, "self-approval")


def test_approval_on_an_older_commit_does_not_count(production: tuple[RegistryRepo, str],
                                                   github: FakeGitHub) -> None:
    repo, tag = production
    add_promotion_pull(github, claimed(repo), "production", PR, merged=False)
    github.add_review(REPO, PR, "bob", "APPROVED")
    github.push(REPO, PR)  # a new head after the approval
    github.merge(REPO, PR)
    assert _verify(repo, tag)[:2] == (False, "stale-approval")


def test_outstanding_changes_requested_block(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    promotion_pr(repo, github)
    github.add_review(REPO, PR, "bob", "APPROVED")
    github.add_review(REPO, PR, "carol", "CHANGES_REQUESTED")
    assert _verify(repo, tag)[:2] == (False, "changes-requested")


def test_too_few_approvals(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    promotion_pr(repo, github)
    github.add_review(REPO, PR, "bob", "COMMENTED")
    assert _verify(repo, tag)[:2] == (False, "too-few-approvals")


def test_approver_not_allowed_by_the_policy(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    promotion_pr(repo, github)
    github.add_review(REPO, PR, "mallory", "APPROVED")
    assert _verify(repo, tag)[:2] == (False, "reviewer-not-allowed")


def _typo_fix(repo: RegistryRepo, github: FakeGitHub) -> None:
    github.add_pull(REPO, PR, head_ref="fix-typo", merged=True, files={"README.md": "modelops-ci, spelled right\n"})


def _still_open(repo: RegistryRepo, github: FakeGitHub) -> None:
    add_promotion_pull(github, claimed(repo), "production", PR, merged=False)


def _into_a_release_branch(repo: RegistryRepo, github: FakeGitHub) -> None:
    add_promotion_pull(github, claimed(repo), "production", PR, base_ref="release-1.0")


def _for_another_version(repo: RegistryRepo, github: FakeGitHub) -> None:
    add_promotion_pull(github, claimed(repo, version="v1.1.0"), "production", PR)


def _for_another_stage(repo: RegistryRepo, github: FakeGitHub) -> None:
    add_promotion_pull(github, claimed(repo, stage="staging"), "staging", PR)


def _deploying_another_version(repo: RegistryRepo, github: FakeGitHub) -> None:
    files = promotion_files(claimed(repo), "production", version="v1.1.0")
    add_promotion_pull(github, claimed(repo), "production", PR, files=files)


@pytest.mark.parametrize(("make_pr", "rule"), [
    (_typo_fix, "pr-wrong-branch"),
    (_still_open, "pr-not-merged"),
    (_into_a_release_branch, "pr-wrong-base"),
    (_for_another_version, "pr-wrong-branch"),
    (_for_another_stage, "pr-wrong-branch"),
    (_deploying_another_version, "pr-wrong-change"),
])
def test_an_approved_pr_that_is_not_this_promotions_merged_request_does_not_count(
        production: tuple[RegistryRepo, str], github: FakeGitHub,
        make_pr: Callable[[RegistryRepo, FakeGitHub], None], rule: str) -> None:
    repo, tag = production
    make_pr(repo, github)
    github.add_review(REPO, PR, "bob", "APPROVED")  # an allowed reviewer, on the head: enough before
    ok, refused, reason = _verify(repo, tag)
    assert (ok, refused) == (False, rule), reason
    assert "PR #7" in reason


def test_an_outsiders_changes_requested_does_not_block(production: tuple[RegistryRepo, str],
                                                       github: FakeGitHub) -> None:
    repo, tag = production
    promotion_pr(repo, github)
    github.add_review(REPO, PR, "bob", "APPROVED")
    github.add_review(REPO, PR, "drive-by", "CHANGES_REQUESTED", association="NONE")
    ok, rule, reason = _verify(repo, tag)
    assert ok, (rule, reason)


# -- what verify says when approvals were not checked ------------------------------------------------


def _closed_port() -> str:
    """A loopback URL nothing listens on: GitHub cannot be reached there (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


def _by_tag(stdout: str) -> dict[str, dict[str, Any]]:
    return {r["tag"]: r for r in json.loads(stdout)}


def test_without_github_verify_all_still_judges_every_other_tag(production: tuple[RegistryRepo, str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    repo, tag = production
    monkeypatch.setenv("GITHUB_API_URL", _closed_port())
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    text = run_cli("verify", "--all", "-C", repo.root)
    assert text.exit_code == 1, text.stderr
    assert "Traceback" not in text.stderr
    assert "loans@v1.0.0: verified" in text.stdout
    assert "loans#staging#1: verified" in text.stdout
    assert f"{tag}: REFUSED [approvals-unavailable] approvals could not be checked: " in text.stdout
    assert "cannot connect" in text.stdout
    assert f"{tag} [approvals-unavailable]" in text.stderr

    as_json = run_cli("verify", "--all", "--json", "-C", repo.root)
    results = _by_tag(as_json.stdout)
    assert as_json.exit_code == 1
    assert (results[tag]["ok"], results[tag]["rule"], results[tag]["approvals"]) == (False, "approvals-unavailable",
                                                                                      "unavailable")
    assert results["loans#staging#1"]["ok"] and results["loans#staging#1"]["approvals"] == "not-required"


def test_skipped_approvals_are_said_per_tag_in_text_and_json(production: tuple[RegistryRepo, str]) -> None:
    repo, tag = production
    text = run_cli("verify", "--all", "--skip-approvals", "-C", repo.root)
    assert text.exit_code == 0, text.stdout + text.stderr
    lines = {line.split(":")[0]: line for line in text.stdout.splitlines()}
    assert "approvals skipped: 1 approval(s) required on the promotion PR, not checked" in lines[tag]
    assert "no approvals required" in lines["loans#staging#1"]
    assert "approvals" not in lines["loans@v1.0.0"]  # a registration has none

    results = _by_tag(run_cli("verify", "--all", "--skip-approvals", "--json", "-C", repo.root).stdout)
    assert results[tag]["ok"] and results[tag]["approvals"] == "skipped"
    assert results["loans#staging#1"]["approvals"] == "not-required"
    assert results["loans@v1.0.0"]["approvals"] is None


# -- a fairness warning needs a recorded sign-off ---------------------------------------------------

SIGNOFF_POLICY = loans_policy(stages="staging, production", promotion=(
    "staging: {signers: [ci-bot]}\n"
    "production: {signers: [release-managers], reviewers: [bob, carol], require_signoff: [fairness]}\n"))


def _warned_in_staging(template: Path, tmp_path: Path) -> RegistryRepo:
    """loans at a commit whose fairness gate warned (a disparity the data cannot decide), registered
    and in staging, under a policy that wants that warning signed off before production."""
    repo = registry_repo(template, tmp_path / "repo")
    report = json.loads(git("show", f"{repo.commit}:reports/loans/gates.json", cwd=repo.root))
    report["gates"].append({**report["gates"][0], "gate": "fairness", "status": "warn",
                            "reason": "the disparity's CI straddles the threshold: inconclusive"})
    commit = commit_files(repo.root, {"reports/loans/gates.json": json.dumps(report), POLICY_FILE: SIGNOFF_POLICY})
    repo = replace(repo, commit=commit)
    register(repo)
    assign(repo, "staging", 1)
    return repo


@pytest.fixture
def warned(registry_template: Path, tmp_path: Path) -> tuple[RegistryRepo, str]:
    """The warned version promoted to production; the tag records carol's sign-off."""
    repo = _warned_in_staging(registry_template, tmp_path)
    return repo, assign(repo, "production", 2, "release-managers", pr=PR, signoffs={"fairness": ["carol"]})


def _signed_off_pr(repo: RegistryRepo, github: FakeGitHub, body: str = "Read the report.\n/signoff fairness\n",
                   login: str = "carol", state: str = "COMMENTED") -> None:
    promotion_pr(repo, github)
    github.add_review(REPO, PR, login, state, body=body)


def test_a_signed_off_fairness_warning_verifies_and_audit_shows_who(warned: tuple[RegistryRepo, str],
                                                                    github: FakeGitHub) -> None:
    repo, tag = warned
    _signed_off_pr(repo, github)
    ok, rule, reason = _verify(repo, tag)
    assert ok, (rule, reason)
    assert "fairness signed off by carol" in reason
    audited = run_cli("audit", "loans#production", "-C", repo.root)
    assert "  signoff    fairness: carol (recorded by the tag from the PR's reviews; unverified here" in audited.stdout
    (lineage,) = json.loads(run_cli("audit", "loans#production", "--json", "-C", repo.root).stdout)
    assert lineage["claimed_signoffs"] == {"fairness": ["carol"]}


def _no_review(repo: RegistryRepo, github: FakeGitHub) -> None:
    promotion_pr(repo, github)


def _by_the_author(repo: RegistryRepo, github: FakeGitHub) -> None:
    promotion_pr(repo, github, author="carol")
    github.add_review(REPO, PR, "carol", "COMMENTED", body="/signoff fairness")


def _by_someone_not_allowed(repo: RegistryRepo, github: FakeGitHub) -> None:
    _signed_off_pr(repo, github, login="mallory")


def _on_an_older_head(repo: RegistryRepo, github: FakeGitHub) -> None:
    add_promotion_pull(github, claimed(repo), "production", PR, merged=False)
    github.add_review(REPO, PR, "carol", "COMMENTED", body="/signoff fairness")
    github.push(REPO, PR)
    github.merge(REPO, PR)


def _dismissed(repo: RegistryRepo, github: FakeGitHub) -> None:
    promotion_pr(repo, github)
    review = github.add_review(REPO, PR, "carol", "APPROVED", body="/signoff fairness")
    github.dismiss(REPO, PR, int(review["id"]))


def _in_another_form(repo: RegistryRepo, github: FakeGitHub) -> None:
    _signed_off_pr(repo, github, body="LGTM, signoff fairness when you can")


def _by_bob_while_the_tag_names_carol(repo: RegistryRepo, github: FakeGitHub) -> None:
    _signed_off_pr(repo, github, login="bob")


@pytest.mark.parametrize("make_pr", [_no_review, _by_the_author, _by_someone_not_allowed, _on_an_older_head,
                                     _dismissed, _in_another_form, _by_bob_while_the_tag_names_carol])
def test_a_fairness_warning_without_a_valid_signoff_is_refused(
        warned: tuple[RegistryRepo, str], github: FakeGitHub,
        make_pr: Callable[[RegistryRepo, FakeGitHub], None]) -> None:
    repo, tag = warned
    make_pr(repo, github)
    ok, rule, reason = _verify(repo, tag)
    assert (ok, rule) == (False, "signoff"), reason
    assert "fairness" in reason


def test_the_tag_must_record_the_signoff(warned: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, _ = warned
    unrecorded = assign(repo, "production", 3, "release-managers", pr=PR)
    _signed_off_pr(repo, github)
    ok, rule, reason = _verify(repo, unrecorded)
    assert (ok, rule) == (False, "signoff") and "the tag records no sign-off" in reason


def test_a_gate_that_passed_needs_no_signoff(registry_template: Path, tmp_path: Path, github: FakeGitHub) -> None:
    repo = registry_repo(registry_template, tmp_path / "repo")
    commit_files(repo.root, {POLICY_FILE: SIGNOFF_POLICY}, "production wants fairness warnings signed off")
    register(repo)
    assign(repo, "staging", 1)
    tag = assign(repo, "production", 2, "release-managers")
    ok, rule, reason = _verify(repo, tag)
    assert ok, (rule, reason)
    assert not github.calls  # nothing to acknowledge, nothing asked of GitHub


def test_skipped_signoff_is_said(warned: tuple[RegistryRepo, str]) -> None:
    repo, tag = warned
    text = run_cli("verify", tag, "--skip-approvals", "-C", repo.root)
    assert text.exit_code == 0, text.stdout + text.stderr
    assert "approvals skipped: a fairness sign-off (the gate warned) required on the promotion PR" in text.stdout


def _promote_to_production(repo: RegistryRepo) -> Any:
    key = str(repo.keys["release-managers"].private)
    return run_exe("promote", "loans@v1.0.0", "--to", "production", "--pr", str(PR), "--signing-key", key,
                   cwd=repo.root)


def test_promote_reads_the_signoff_from_the_pr_and_records_it_in_the_tag(registry_template: Path, tmp_path: Path,
                                                                        github: FakeGitHub) -> None:
    repo = _warned_in_staging(registry_template, tmp_path)
    origin = with_origin(repo.root, tmp_path)
    _signed_off_pr(repo, github)

    done = _promote_to_production(repo)

    assert done.exit_code == 0, done.stdout + done.stderr
    message = git("cat-file", "tag", "loans#production#2", cwd=repo.root)
    assert evidence.parse(message).signoffs == {"fairness": ["carol"]}
    assert "refs/tags/loans#production#2" in git("ls-remote", "--tags", str(origin), cwd=repo.root)


def test_promote_without_a_signoff_on_the_pr_signs_and_pushes_nothing(registry_template: Path, tmp_path: Path,
                                                                     github: FakeGitHub) -> None:
    repo = _warned_in_staging(registry_template, tmp_path)
    origin = with_origin(repo.root, tmp_path)
    promotion_pr(repo, github)  # merged, but nobody wrote `/signoff fairness`

    done = _promote_to_production(repo)

    assert done.exit_code == 2, done.stdout + done.stderr  # promote refuses like any refused tag it made
    assert "loans#production#2 does not verify, so it was removed and not pushed: [signoff]" in done.stderr
    assert "loans#production" not in git("tag", "--list", cwd=repo.root)
    assert "loans#production" not in git("ls-remote", "--tags", str(origin), cwd=repo.root)
