"""`modelops-ci verify`: registry tags checked against every rule, trust read from the trusted ref."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import CheckFailed, UserError

if TYPE_CHECKING:
    from modelops_ci.registry.verify import VerifyResult


def verify(repo: Path, tags: Sequence[str] = (), *, every: bool = False, trust_ref: str | None = None,
           skip_approvals: bool = False, newest: bool = False, series: str | None = None) -> list[VerifyResult]:
    """Verify `tags` (or with `every`, every registry tag); approvals are asked of GitHub unless skipped.
    A batched family's tags also have every series' model (or only `series`') re-checked from DVC's cache."""
    from modelops_ci.registry import verify as verifier

    root = repo.resolve()
    if not tags and not every:
        raise UserError("name the tag(s) to verify, or pass --all")
    if series is not None and (every or len(tags) != 1):
        raise UserError("--series re-checks one series of one family's tag: name exactly one tag")
    judge = verifier.SKIP if skip_approvals else _github_approvals(root, trust_ref)
    if every:
        results = verifier.verify_all(root, trust_ref=trust_ref, approvals=judge)
    else:
        results = [verifier.verify(root, tag, trust_ref=trust_ref, approvals=judge, newest=newest) for tag in tags]
    return [verifier.check_series(root, result, only=series) for result in results]


def _github_approvals(root: Path, trust_ref: str | None) -> Any:
    # Imported only when asked: the GitHub client costs 40 ms the offline pre-push check need not pay.
    from modelops_ci.registry import approvals, trust

    return approvals.from_env(trust.promotion_rule(root, trust_ref), root)


def lines(results: Sequence[VerifyResult], *, json_output: bool = False) -> list[str]:
    """What `verify` prints: a line per tag, or the results as JSON."""
    if json_output:
        return [json.dumps([r.to_json() for r in results], indent=2)]
    return [str(result) for result in results]


def enforce(results: Sequence[VerifyResult]) -> None:
    """Exit 1 (CheckFailed) naming the rule each refused tag breaks."""
    refused = [r for r in results if not r.ok]
    if refused:
        raise CheckFailed(f"{len(refused)} of {len(results)} tag(s) refused: "
                          + "; ".join(f"{r.tag} [{r.rule}]" for r in refused))
