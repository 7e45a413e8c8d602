"""The evidence of a credit-risk promotion and the approvals rules of its stages, as the approvals
tests read them."""

from __future__ import annotations

from typing import Any

from modelops_ci.registry.evidence import Evidence

PR = 7


def evidence(pr: int | None = PR, **changes: Any) -> Evidence:
    fields: dict[str, Any] = {"pipeline": "credit-risk", "version": "v1.2.0", "commit": "c" * 40,
                              "stage": "production", "pr": pr, "model": {"models/credit-risk/model.skops": "d" * 32},
                              "gates_digest": "e" * 64, "verdict": "pass"}
    return Evidence(**(fields | changes))


POLICY = {"staging": {"approvals": 0, "signers": ["ci-bot"]},
          "production": {"approvals": 2, "reviewers": ["@acme/model-risk"], "signers": ["release-managers"]}}


def rule_for(pipeline: str, stage: str) -> dict[str, Any] | None:
    assert pipeline == "credit-risk"
    return POLICY.get(stage)
