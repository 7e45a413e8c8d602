"""The approvals rule of a promotion, decided without GitHub: the verifier's adapter asks no server
when the stage needs no approvals."""

from __future__ import annotations

import pytest

from modelops_ci.github.client import GitHub
from modelops_ci.registry import approvals
from tests.helpers.approvals import evidence, rule_for


def test_verifier_adapter_needs_no_network_when_the_stage_needs_no_approvals(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_API_URL", "GITHUB_TOKEN", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)

    def no_client() -> GitHub:
        raise AssertionError("GitHub was called")

    check_approvals = approvals.for_verifier(no_client, "acme/models", rule_for)
    assert check_approvals("credit-risk", "staging", evidence(pr=None))[0]
    assert check_approvals("credit-risk", "dev", evidence(pr=None))[0]  # no rule for the stage
    ok, rule, reason = check_approvals("credit-risk", "production", evidence(pr=None))
    assert (ok, rule) == (False, "no-pull-request") and "--pr N" in reason
