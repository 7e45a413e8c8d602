"""The approvals rule of a promotion: enough allowed reviewers approved the PR's final head commit,
and that PR is the promotion's own (DESIGN 7a: an approval counts only for the promotion it belongs to).

The PR must be the one `modelops-ci promotion-request NAME@VERSION --to STAGE` opens, merged:
- merged (`merged`, `merged_at`), into the repository's default branch (`base.ref`);
- from the request's branch `promote/NAME-VERSION-to-STAGE` in the repository itself (`head`);
- changing only deployments/STAGE.yaml (GitHub's list of the PR's files), which at the head commit
  names NAME's VERSION (champion or challenger) pinned to the tagged commit (`commits`).
Otherwise an approved typo fix, a still-open PR or one for another version would let any promotion
through.

Its reviews are read like branch protection reads them:
- each reviewer's latest review counts; COMMENTED and PENDING reviews do not change a reviewer's
  state, and a dismissed review shows as DISMISSED, cancelling the approval it was;
- only an APPROVED review of the PR's head commit counts (an approval of an older commit is stale);
- the PR's author cannot approve their own change;
- a reviewer whose latest state is CHANGES_REQUESTED blocks the promotion if they have write access
  (owner, member, collaborator) or a policy names them: anyone else's veto is ignored, as
  GitHub's own required reviews ignore it;
- approvers must be allowed by the policy (`reviewers`: logins and `@org/team` slugs); without a
  list, anyone with write access to the repository as GitHub reports it (owner, member, collaborator).

A sign-off acknowledges a gate's warning (policy `promotion.<stage>.require_signoff: [fairness]`),
needed only when that gate warned at the tagged commit: a gate that passed leaves nothing to
acknowledge, and asking for a sign-off on every promotion would train reviewers to type it
unread. It is a submitted review (APPROVED or COMMENTED; a dismissed one no longer counts) of the
PR's final head commit whose body holds the line `/signoff KIND`, by a reviewer the policy allows
(as for approvals), not the PR's author. Issue comments do not count: they name no commit, so
they cannot show which head the reviewer saw. The tag must record who signed off (evidence
`signoffs`, written by `promote` from the PR), and every name it records must hold on the PR.

A refusal is a result naming its rule; an error (GitHub unreachable, token rejected) is raised by
`check`, so a promotion is never decided on half the reviews.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import yaml

from modelops_ci.github.client import (
    GitHub,
    GitHubAuthError,
    GitHubConfigError,
    GitHubError,
    GitHubNotFound,
    GitHubUnavailable,
    checked_slug,
    file_text,
    repository,
)
from modelops_ci.registry.evidence import Evidence
from modelops_ci.registry.promotion_names import Request
from modelops_ci.registry.verify import UNAVAILABLE

RULE = "approvals"
SELF_APPROVAL = "self-approval"
STALE_APPROVAL = "stale-approval"
CHANGES_REQUESTED = "changes-requested"
TOO_FEW = "too-few-approvals"
NOT_ALLOWED = "reviewer-not-allowed"
NO_PR = "no-pull-request"
NOT_MERGED = "pr-not-merged"
WRONG_BASE = "pr-wrong-base"
WRONG_BRANCH = "pr-wrong-branch"
WRONG_CHANGE = "pr-wrong-change"
SIGNOFF = "signoff"
_SIGNOFF_LINE = re.compile(r"^[ \t]*/signoff[ \t]+(?P<kind>[A-Za-z_]+)[ \t]*\r?$", re.MULTILINE)
_SIGNOFF_STATES = frozenset({"APPROVED", "COMMENTED"})
_CHANGED = frozenset({"added", "modified"})
# Why an approval did not count, in the order a refusal names them.
DISCARD_RULES = (SELF_APPROVAL, STALE_APPROVAL, NOT_ALLOWED)
# Every rule id the checker can return (UNAVAILABLE too); README's rule table lists each.
RULE_IDS = (RULE, NO_PR, NOT_MERGED, WRONG_BASE, WRONG_BRANCH, WRONG_CHANGE, CHANGES_REQUESTED, *DISCARD_RULES,
            TOO_FEW, SIGNOFF, UNAVAILABLE)
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
class Promotion:
    """What the approvals must be for: `name` at `version` (tagged on `commit`) to `stage`."""

    name: str
    version: str
    stage: str
    commit: str

    def request(self, base: str) -> Request:
        """The promotion request for this promotion against `base`: its branch and deployments file."""
        return Request(self.name, self.version, self.stage, base)

    @property
    def command(self) -> str:
        return f"modelops-ci promotion-request {self.name}@{self.version} --to {self.stage}"


@dataclass(frozen=True)
class _Review:
    login: str
    state: str
    commit_id: str
    association: str


class ApprovalsCheck(Protocol):
    """The verifier's injected callable: (pipeline, stage, evidence, gate kinds that warned at the
    commit) -> (ok, rule, reason)."""

    def __call__(self, pipeline: str, stage: str, evidence: Evidence,
                 warned: frozenset[str] = frozenset()) -> tuple[bool, str, str]: ...


def check(client: GitHub, repo: str, pr_number: int, promotion: Promotion, *, required: int,
          reviewers: Sequence[str | Sequence[str]] = ()) -> ApprovalResult:
    """Whether PR `pr_number` of `repo` (owner/name) is `promotion`'s merged request and has
    `required` approvals that count.

    `reviewers` is the policy's list of logins and `@org/team` slugs, or several such lists (one per
    policy governing the pipeline) that must each allow an approver; empty: repository writers.
    Raises GitHubError when GitHub cannot answer; every refusal is an ApprovalResult with its rule.
    """
    slug = checked_slug(repo)
    endpoint = f"/repos/{slug}/pulls/{int(pr_number)}"
    pull = client.get(endpoint)
    author, head = _author_and_head(pull, endpoint)
    unbound = _binding(client, slug, int(pr_number), pull, promotion)
    if unbound is not None:
        return unbound
    allowed = _Allowed(client, reviewers)
    latest = _latest_states(client.get_paginated(f"{endpoint}/reviews"))
    blocking = sorted(r.login for r in latest if r.state == "CHANGES_REQUESTED" and _may_block(r, allowed))
    if blocking:
        return ApprovalResult(False, CHANGES_REQUESTED,
                              f"PR #{pr_number}: changes requested by {', '.join(blocking)} are outstanding")
    approvers, not_counted = _tally(latest, author, head, allowed)
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

    When GitHub cannot answer (unreachable, token refused, the PR not found) the promotion is refused
    by UNAVAILABLE ("approvals could not be checked: why") rather than raised, so `verify --all` still
    judges every other tag; once GitHub is found unreachable or the token refused, it is not asked
    again for the other tags. A configuration error (no repository, a bad GITHUB_API_URL) is raised.
    """
    unreachable: list[str] = []

    def approvals(pipeline: str, stage: str, evidence: Evidence,
                  warned: frozenset[str] = frozenset()) -> tuple[bool, str, str]:
        rule = promotion_rule(pipeline, stage)
        required, reviewers = _rule_parts(rule)
        kinds = sorted(warned.intersection(_signoff_kinds(rule)))
        if required <= 0 and not kinds:
            return True, RULE, f"the policy requires no approvals for {stage}"
        if evidence.pr is None:
            needs = f"{required} approval{'s' if required != 1 else ''}" if required else f"a {kinds[0]} sign-off"
            return False, NO_PR, f"{stage} requires {needs} but the tag's evidence names no PR: promote with --pr N"
        if unreachable:
            return False, UNAVAILABLE, unreachable[0]
        promotion = Promotion(pipeline, evidence.version, stage, evidence.commit)
        try:
            github, slug = client() if callable(client) else client, repo() if callable(repo) else repo
            result = check(github, slug, evidence.pr, promotion, required=required, reviewers=reviewers)
            if result.ok and kinds:
                result = _signed_off(signoffs(github, slug, evidence.pr, kinds, reviewers=reviewers),
                                     evidence, result)
        except GitHubConfigError:
            raise
        except GitHubError as exc:
            why = f"approvals could not be checked: {exc}"
            if isinstance(exc, GitHubUnavailable | GitHubAuthError):
                unreachable.append(why)
            return False, UNAVAILABLE, why
        return result.ok, result.rule, result.reason

    return approvals


def signoffs(client: GitHub, repo: str, pr_number: int, kinds: Sequence[str], *,
             reviewers: Sequence[str | Sequence[str]] = ()) -> dict[str, list[str]]:
    """Who signed off each of `kinds` on PR `pr_number` (see the module docstring): logins, sorted.

    Raises GitHubError when GitHub cannot answer.
    """
    slug = checked_slug(repo)
    endpoint = f"/repos/{slug}/pulls/{int(pr_number)}"
    author, head = _author_and_head(client.get(endpoint), endpoint)
    allowed = _Allowed(client, reviewers)
    found: dict[str, set[str]] = {kind: set() for kind in kinds}
    for raw in client.get_paginated(f"{endpoint}/reviews"):
        review = _signoff_review(raw, head)
        if review is None or review.login.lower() == author.lower() or not allowed(review):
            continue
        for line in _SIGNOFF_LINE.finditer(str(raw.get("body") or "")):
            found.get(line["kind"].lower(), set()).add(review.login)
    return {kind: sorted(logins, key=str.lower) for kind, logins in found.items()}


def _signoff_review(raw: Any, head: str) -> _Review | None:
    """A submitted, undismissed review of `head`, or None."""
    if not isinstance(raw, dict) or raw.get("state") not in _SIGNOFF_STATES or not raw.get("user"):
        return None
    if str(raw.get("commit_id") or "") != head:
        return None
    return _Review(str(raw["user"]["login"]), str(raw["state"]), head, str(raw.get("author_association") or "NONE"))


def _signed_off(found: Mapping[str, list[str]], evidence: Evidence, approved: ApprovalResult) -> ApprovalResult:
    """`approved`, unless a needed sign-off is missing on the PR or in the tag, or the tag records one
    the PR does not hold."""
    for kind, logins in found.items():
        recorded = list(evidence.signoffs.get(kind) or [])
        head_note = f"a review of PR #{evidence.pr}'s head commit with the line `/signoff {kind}`"
        if not logins:
            return ApprovalResult(False, SIGNOFF, (
                f"the {kind} gate warned at {evidence.commit[:12]}, and no reviewer the policy allows (other than "
                f"the PR's author) has signed it off: {head_note} is needed, then promote again"))
        if not recorded:
            return ApprovalResult(False, SIGNOFF, (
                f"the {kind} gate warned and {', '.join(logins)} signed it off, but the tag records no sign-off: "
                "promote again (promote records who signed off from the PR)"))
        unheld = [login for login in recorded if login.lower() not in {x.lower() for x in logins}]
        if unheld:
            return ApprovalResult(False, SIGNOFF, (
                f"the tag records the {kind} sign-off of {', '.join(unheld)}, which PR #{evidence.pr} does not "
                f"hold ({head_note} by an allowed reviewer; found: {', '.join(logins)})"))
    said = "; ".join(f"{kind} signed off by {', '.join(logins)}" for kind, logins in found.items())
    return ApprovalResult(True, approved.rule, f"{approved.reason}; {said}", approved.approvers)


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


def _binding(client: GitHub, slug: str, number: int, pull: dict[str, Any],
             promotion: Promotion) -> ApprovalResult | None:
    """The refusal when PR `number` is not `promotion`'s request merged into the default branch, else None."""
    if not (pull.get("merged") is True and pull.get("merged_at")):
        state = "still open" if pull.get("state") == "open" else "closed without being merged"
        return ApprovalResult(False, NOT_MERGED, (
            f"PR #{number} is {state}: approvals count only for a promotion PR merged into the default branch; "
            "merge it once approved, and promote after the merge"))
    default = _default_branch(client, slug)
    base = str((pull.get("base") or {}).get("ref") or "")
    if base != default:
        return ApprovalResult(False, WRONG_BASE, (
            f"PR #{number} was merged into '{base}', not the default branch '{default}': only a promotion merged "
            f"into {default} counts; request it there (`{promotion.command} --base {default}`)"))
    request = promotion.request(default)
    return (_wrong_branch(slug, number, pull, request, promotion)
            or _wrong_change(client, slug, number, pull, request, promotion))


def _default_branch(client: GitHub, slug: str) -> str:
    endpoint = f"/repos/{slug}"
    found = client.get(endpoint)
    branch = found.get("default_branch") if isinstance(found, dict) else None
    if not isinstance(branch, str) or not branch:
        raise GitHubError(f"GitHub GET {endpoint}: the answer is not a repository (no default_branch)",
                          method="GET", endpoint=endpoint)
    return branch


def _wrong_branch(slug: str, number: int, pull: dict[str, Any], request: Request,
                  promotion: Promotion) -> ApprovalResult | None:
    """The refusal when the PR does not come from the request's branch in this repository."""
    head = pull["head"]
    source = str((head.get("repo") or {}).get("full_name") or "a deleted repository")
    if head.get("ref") == request.branch and source.lower() == slug.lower():
        return None
    return ApprovalResult(False, WRONG_BRANCH, (
        f"PR #{number} comes from branch '{head.get('ref')}' of {source}, not '{request.branch}' of "
        f"{slug}, which `{promotion.command}` makes: promote with --pr set to that request's PR"))


def _wrong_change(client: GitHub, slug: str, number: int, pull: dict[str, Any], request: Request,
                  promotion: Promotion) -> ApprovalResult | None:
    """The refusal when the PR changes more or other than its deployments file, or that file at the
    head commit does not deploy exactly this version from the tagged commit."""
    files = client.get_paginated(f"/repos/{slug}/pulls/{number}/files")
    changed = sorted(f"{f.get('filename')} ({f.get('status')})" for f in files if isinstance(f, dict))
    expected = [f"{request.deployment} ({status})" for status in sorted(_CHANGED)]
    if len(changed) != 1 or changed[0] not in expected:
        return ApprovalResult(False, WRONG_CHANGE, (
            f"PR #{number} changes {', '.join(changed) or 'nothing'}: a promotion PR changes only "
            f"{request.deployment}; promote with --pr set to the PR `{promotion.command}` opened"))
    head = str(pull["head"]["sha"])
    problem = _deployment_problem(file_text(client, slug, request.deployment, head), promotion)
    if problem is None:
        return None
    return ApprovalResult(False, WRONG_CHANGE, (
        f"PR #{number}: {request.deployment} at its head {head[:12]} {problem}: the approvals were for another "
        f"deployment; request this one with `{promotion.command}`"))


def _deployment_problem(text: str, promotion: Promotion) -> str | None:
    """What is wrong with a deployments file for `promotion` (as promotion_request writes it), or None."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return "is not YAML"
    spec = document.get("spec") if isinstance(document, dict) else None
    models = spec.get("models") if isinstance(spec, dict) else None
    entry = models.get(promotion.name) if isinstance(models, dict) else None
    if not isinstance(entry, dict) or document.get("kind") != "Deployment":
        return f"is not a Deployment naming {promotion.name}"
    named = [entry.get(role) for role in ("champion", "challenger") if entry.get(role)]
    if promotion.version not in named:
        return f"deploys {promotion.name} {' and '.join(map(str, named)) or 'nothing'}, not {promotion.version}"
    pins = entry.get("commits")
    pinned = pins.get(promotion.version) if isinstance(pins, dict) else None
    if pinned != promotion.commit:
        return f"deploys {promotion.version} from commit {str(pinned)[:12]}, not the tagged {promotion.commit[:12]}"
    return None


def _signoff_kinds(rule: Any) -> list[str]:
    """The gate kinds whose warning needs a sign-off, from a `promotion.<stage>` mapping or a StageRule."""
    if rule is None:
        return []
    if isinstance(rule, Mapping):
        return [str(kind) for kind in rule.get("require_signoff") or ()]
    return [str(kind) for kind in getattr(rule, "signoff", ()) or ()]


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


def _may_block(review: _Review, allowed: _Allowed) -> bool:
    """Whether a reviewer's CHANGES_REQUESTED counts: write access, or named by a policy."""
    return review.association in WRITE_ASSOCIATIONS or allowed.names(review)


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

    def names(self, review: _Review) -> bool:
        """Whether any one list allows the reviewer (a reviewer of one governing policy)."""
        return any(self._in(entries, review.login) for entries in self.lists)

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
