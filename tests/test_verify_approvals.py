"""The approvals rule of `verify`, end to end: trusted policy -> GitHub's reviews (a local server
answering with GitHub's payloads) -> the rule a refused promotion breaks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops_ci.registry import approvals, trust
from modelops_ci.registry.verify import verify
from tests.github_server import REPO, FakeGitHub, serving
from tests.registry_fixtures import RegistryRepo, assign, commit_files, register, registry_repo, shared_template

PR = 7
POLICY = """\
apiVersion: modelops/v1
kind: Policy
metadata: {name: test}
spec:
  selector: {names: [loans]}
  gates:
    performance: {metrics: {roc_auc: {min: 0.5}}}
  stages: [staging, production]
  promotion:
    staging: {signers: [ci-bot]}
    production: {signers: [release-managers], approvals: 1, reviewers: [bob, carol]}
"""


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_template(tmp_path_factory)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    yield from serving(monkeypatch)


@pytest.fixture
def production(_template: Path, tmp_path: Path) -> tuple[RegistryRepo, str]:
    repo = registry_repo(_template, tmp_path / "repo")
    register(repo)
    assign(repo, "staging", 1)
    tag = assign(repo, "production", 2, "release-managers", pr=PR, approvers=["bob"])
    # the trusted branch moves on: its policy names who may approve production
    commit_files(repo.root, {"policies/test.yaml": POLICY}, "production reviewers")
    return repo, tag


def _verify(repo: RegistryRepo, tag: str) -> tuple[bool, str, str]:
    judge = approvals.from_env(trust.promotion_rule(repo.root), repo.root)
    result = verify(repo.root, tag, approvals=judge)
    return result.ok, result.rule, result.reason


def test_an_approved_promotion_verifies(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    github.add_pull(REPO, PR, author="alice")
    github.add_review(REPO, PR, "bob", "APPROVED")
    ok, rule, reason = _verify(repo, tag)
    assert ok, (rule, reason)


def test_self_approval_does_not_count(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    github.add_pull(REPO, PR, author="bob")
    github.add_review(REPO, PR, "bob", "APPROVED")
    assert _verify(repo, tag)[:2] == (False, "self-approval")


def test_approval_on_an_older_commit_does_not_count(production: tuple[RegistryRepo, str],
                                                   github: FakeGitHub) -> None:
    repo, tag = production
    github.add_pull(REPO, PR, author="alice")
    github.add_review(REPO, PR, "bob", "APPROVED")
    github.push(REPO, PR)  # a new head after the approval
    assert _verify(repo, tag)[:2] == (False, "stale-approval")


def test_outstanding_changes_requested_block(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    github.add_pull(REPO, PR, author="alice")
    github.add_review(REPO, PR, "bob", "APPROVED")
    github.add_review(REPO, PR, "carol", "CHANGES_REQUESTED")
    assert _verify(repo, tag)[:2] == (False, "changes-requested")


def test_too_few_approvals(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    github.add_pull(REPO, PR, author="alice")
    github.add_review(REPO, PR, "bob", "COMMENTED")
    assert _verify(repo, tag)[:2] == (False, "too-few-approvals")


def test_approver_not_allowed_by_the_policy(production: tuple[RegistryRepo, str], github: FakeGitHub) -> None:
    repo, tag = production
    github.add_pull(REPO, PR, author="alice")
    github.add_review(REPO, PR, "mallory", "APPROVED")
    assert _verify(repo, tag)[:2] == (False, "reviewer-not-allowed")
