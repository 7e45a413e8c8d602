"""The approvals rule of a promotion: enough allowed reviewers approved the PR's final head commit.

Read from GitHub's REST API like branch protection reads it:
- each reviewer's latest review counts; COMMENTED and PENDING reviews do not change a reviewer's
  state, and a dismissed review shows as DISMISSED, cancelling the approval it was;
- only an APPROVED review of the PR's head commit counts (an approval of an older commit is stale);
- the PR's author cannot approve their own change;
- any reviewer whose latest state is CHANGES_REQUESTED blocks the promotion;
- approvers must be allowed by the policy (`reviewers`: logins and `@org/team` slugs); without a
  list, anyone with write access to the repository as GitHub reports it (owner, member, collaborator).

A refusal is a result naming its rule; an error (GitHub unreachable, token rejected) is raised, so a
promotion is never decided on half the reviews.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from modelops_ci.github import GitHub, GitHubAuthError, GitHubError, GitHubNotFound, checked_slug, repository
from modelops_ci.registry.evidence import Evidence

RULE = "approvals"
SELF_APPROVAL = "self-approval"
STALE_APPROVAL = "stale-approval"
CHANGES_REQUESTED = "changes-requested"
TOO_FEW = "too-few-approvals"
NOT_ALLOWED = "reviewer-not-allowed"
NO_PR = "no-pull-request"
# Why an approval did not count, in the order a refusal names them.
DISCARD_RULES = (SELF_APPROVAL, STALE_APPROVAL, NOT_ALLOWED)
WRITE_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
_DECIDING_STATES = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})


@dataclass(frozen=True)
class ApprovalResult:
    """The rule's answer: `rule` is "approvals" when ok, else the id of the rule that refused."""

    ok: bool
    rule: str
    reason: str
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Review:
    login: str
    state: str
    commit_id: str
    association: str


class ApprovalsCheck(Protocol):
    """The verifier's injected callable: (pipeline, stage, evidence) -> (ok, rule, reason)."""

    def __call__(self, pipeline: str, stage: str, evidence: Evidence) -> tuple[bool, str, str]: ...


def check(client: GitHub, repo: str, pr_number: int, *, required: int,
          reviewers: Sequence[str | Sequence[str]] = ()) -> ApprovalResult:
    """Whether PR `pr_number` of `repo` (owner/name) has `required` approvals that count.

    `reviewers` is the policy's list of logins and `@org/team` slugs, or several such lists (one per
    policy governing the pipeline) that must each allow an approver; empty: repository writers.
    Raises GitHubError when GitHub cannot answer; every refusal is an ApprovalResult with its rule.
    """
    endpoint = f"/repos/{checked_slug(repo)}/pulls/{int(pr_number)}"
    author, head = _author_and_head(client.get(endpoint), endpoint)
    latest = _latest_states(client.get_paginated(f"{endpoint}/reviews"))
    blocking = sorted(r.login for r in latest if r.state == "CHANGES_REQUESTED")
    if blocking:
        return ApprovalResult(False, CHANGES_REQUESTED,
                              f"PR #{pr_number}: changes requested by {', '.join(blocking)} are outstanding")
    approvers, not_counted = _tally(latest, author, head, _Allowed(client, reviewers))
    summary = (f"{len(approvers)} of {required} required approval{'s' if required != 1 else ''} on PR "
               f"#{pr_number} at head {head[:12]}" + (f" ({', '.join(approvers)})" if approvers else ""))
    if len(approvers) >= required:
        return ApprovalResult(True, RULE, summary, approvers)
    rule = next((r for r in DISCARD_RULES if not_counted[r]), TOO_FEW)
    why = "; ".join(text for r in DISCARD_RULES for text in not_counted[r])
    return ApprovalResult(False, rule, summary + (f"; not counted: {why}" if why else ""), approvers)


def for_verifier(client: GitHub | Callable[[], GitHub], repo: str | Callable[[], str],
                 promotion_rule: Callable[[str, str], Any]) -> ApprovalsCheck:
    """The adapter `verify` injects: reads the stage's promotion rule through `promotion_rule(pipeline,
    stage)` — the trusted branch's policy: a mapping like the policy's `promotion.<stage>` or an object
    with `approvals` and `reviewers` (trust.StageRule), or None — and the PR from the evidence.

    `client` and `repo` may be factories, called only when a stage needs approvals, so verifying a
    stage that needs none never touches the network or GITHUB_* variables.
    """

    def approvals(pipeline: str, stage: str, evidence: Evidence) -> tuple[bool, str, str]:
        required, reviewers = _rule_parts(promotion_rule(pipeline, stage))
        if required <= 0:
            return True, RULE, f"the policy requires no approvals for {stage}"
        if evidence.pr is None:
            return False, NO_PR, (f"{stage} requires {required} approval{'s' if required != 1 else ''} but the "
                                  "tag's evidence names no PR: promote with --pr N")
        result = check(client() if callable(client) else client, repo() if callable(repo) else repo,
                       evidence.pr, required=required, reviewers=reviewers)
        return result.ok, result.rule, result.reason

    return approvals


def from_env(promotion_rule: Callable[[str, str], Any], root: Path | None = None,
             environ: Mapping[str, str] | None = None) -> ApprovalsCheck:
    """`for_verifier` with the client and repository from GITHUB_API_URL/GITHUB_TOKEN/GITHUB_REPOSITORY
    (or the `origin` remote of `root`), resolved on first use."""
    return for_verifier(lambda: GitHub.from_env(environ), lambda: repository(root, environ), promotion_rule)


def _author_and_head(pull: Any, endpoint: str) -> tuple[str, str]:
    """The PR author's login ("" for a deleted account) and the head commit."""
    head = pull.get("head") if isinstance(pull, dict) else None
    if not isinstance(head, dict) or not head.get("sha"):
        raise GitHubError(f"GitHub GET {endpoint}: the answer is not a pull request (no head.sha)",
                          method="GET", endpoint=endpoint)
    return str((pull.get("user") or {}).get("login") or ""), str(head["sha"])


def _rule_parts(rule: Any) -> tuple[int, list[str | Sequence[str]]]:
    """(approvals, reviewers) from a policy's `promotion.<stage>` mapping or a StageRule-like object."""
    if rule is None:
        return 0, []
    if isinstance(rule, Mapping):
        return int(rule.get("approvals") or 0), list(rule.get("reviewers") or ())
    return int(getattr(rule, "approvals", 0) or 0), list(getattr(rule, "reviewers", ()) or ())


def _latest_states(reviews: list[dict[str, Any]]) -> list[_Review]:
    """Each reviewer's deciding review: their last APPROVED / CHANGES_REQUESTED / DISMISSED one."""
    latest: dict[str, _Review] = {}
    deciding = [r for r in reviews if r.get("state") in _DECIDING_STATES and r.get("user")]
    for raw in sorted(deciding, key=lambda r: (str(r.get("submitted_at") or ""), int(r.get("id") or 0))):
        login = str(raw["user"]["login"])
        latest[login.lower()] = _Review(login, str(raw["state"]), str(raw.get("commit_id") or ""),
                                        str(raw.get("author_association") or "NONE"))
    return list(latest.values())


def _tally(latest: list[_Review], author: str, head: str, allowed: _Allowed
           ) -> tuple[tuple[str, ...], dict[str, list[str]]]:
    """The approvers that count (sorted), and why each other approval does not, by rule."""
    counted: list[str] = []
    not_counted: dict[str, list[str]] = {rule: [] for rule in DISCARD_RULES}
    for review in (r for r in latest if r.state == "APPROVED"):
        rule = _discard(review, author, head, allowed)
        if rule is None:
            counted.append(review.login)
        else:
            not_counted[rule].append(_describe(review, rule, head))
    return tuple(sorted(counted, key=str.lower)), not_counted


def _discard(review: _Review, author: str, head: str, allowed: _Allowed) -> str | None:
    """The rule an approval breaks, or None when it counts."""
    if author and review.login.lower() == author.lower():
        return SELF_APPROVAL
    if review.commit_id != head:
        return STALE_APPROVAL
    if not allowed(review):
        return NOT_ALLOWED
    return None


def _describe(review: _Review, why: str, head: str) -> str:
    if why == SELF_APPROVAL:
        return f"{review.login} is the PR's author ({why})"
    if why == STALE_APPROVAL:
        return f"{review.login} approved {review.commit_id[:12]}, not the head {head[:12]} ({why})"
    return f"{review.login} is not among the policy's reviewers ({why})"


class _Allowed:
    """Whether a reviewer is allowed by every reviewer list: a listed login, or an active member of a
    listed `@org/team` (GET /orgs/{org}/teams/{team}/memberships/{user}; 404 means not a member)."""

    def __init__(self, client: GitHub, reviewers: Sequence[str | Sequence[str]]) -> None:
        self.client = client
        flat = [r for r in reviewers if isinstance(r, str)]
        self.lists = ([flat] if flat else []) + [list(r) for r in reviewers if not isinstance(r, str) and r]
        self._memberships: dict[tuple[str, str, str], bool] = {}

    def __call__(self, review: _Review) -> bool:
        if not self.lists:
            return review.association in WRITE_ASSOCIATIONS
        return all(self._in(entries, review.login) for entries in self.lists)

    def _in(self, entries: list[str], login: str) -> bool:
        if login.lower() in {e.lower() for e in entries if not e.startswith("@")}:
            return True
        teams = [e[1:].split("/", 1) for e in entries if e.startswith("@") and "/" in e]
        return any(self._member(org, team, login) for org, team in teams)

    def _member(self, org: str, team: str, login: str) -> bool:
        key = (org, team, login.lower())
        if key not in self._memberships:
            self._memberships[key] = self._fetch_membership(org, team, login)
        return self._memberships[key]

    def _fetch_membership(self, org: str, team: str, login: str) -> bool:
        path = "/orgs/{}/teams/{}/memberships/{}".format(*(quote(part, safe="") for part in (org, team, login)))
        try:
            membership = self.client.get(path)
        except GitHubNotFound:
            return False
        except GitHubAuthError as exc:
            raise GitHubAuthError(f"{exc}; reading @{org}/{team} needs a token with the organization's "
                                  "members: read permission (a workflow's GITHUB_TOKEN has none)",
                                  method=exc.method, endpoint=exc.endpoint, status=exc.status) from None
        return isinstance(membership, dict) and membership.get("state") == "active"
