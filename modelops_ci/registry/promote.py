"""Writing the registry: register a version (`name@vX.Y.Z`) and promote it to a stage
(`name#stage#N`), each a signed annotated tag carrying the evidence block, pushed atomically.

Racing promoters: N is one more than any N the name has used, local or remote. Each attempt
fetches the name's tags, signs `name#stage#N` and pushes that one ref; git refuses to create a
tag the remote already has, so of two promoters that chose the same N one wins and the other
deletes its local tag, takes the next N, signs again and retries.

Crash safety: `git tag` writes the tag object and then the ref in one call (the ref is renamed
into place), and a push either creates the remote ref or does not, so a promotion killed at any
point leaves a whole tag or none. Re-running one is idempotent: when the stage's latest event is
already a tag on the same commit with identical evidence (say, pushed just before a crash), that
tag is verified, pushed if needed and returned rather than a second one made.

Nothing leaves the clone unverified: before any push, the tag (made now or found) must pass every
rule of `verify`, the promotion PR's approvals included (read from GitHub when the stage needs
them), or it is removed. A stage that needs approvals is refused before anything is signed when no
PR is named. With `recompute_gates`, the gates are re-run at the commit (recompute.py) and the
evidence says so; a report they do not reproduce is refused before anything is signed.

Every remote name is checked to be one of the clone's remotes and reaches git after
`--end-of-options`, so no string given here is ever read as an option.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from modelops_ci import git
from modelops_ci.errors import CheckFailed, ModelopsError, UserError
from modelops_ci.layout import COMPILED_DIR, Layout
from modelops_ci.registry import evidence, signing, state, tags

if TYPE_CHECKING:
    from modelops_ci.registry.verify import VerifyResult

MAX_ATTEMPTS = 24
BUMPS = ("major", "minor", "patch")


class PromotionError(UserError):
    """A registry tag could not be written or pushed; the message says what to do."""


@dataclass(frozen=True)
class Written:
    """A registry tag made (or found, when an identical promotion already exists)."""

    tag: str
    commit: str
    created: bool
    pushed: bool
    attempts: int = 1


@dataclass(frozen=True)
class Remote:
    """Where registry tags are pushed; `None` as a name means keep them local (--no-push)."""

    name: str | None = "origin"

    @property
    def push(self) -> bool:
        return self.name is not None


def register(root: Path, name: str, key: signing.SigningKey, *, version: str | None = None,
             bump: str | None = None, rev: str = "HEAD", remote: Remote = Remote(),
             recompute_gates: bool = False) -> Written:
    """Register a version of pipeline `name` at `rev`: a signed `name@vX.Y.Z` with evidence.

    Refuses a version that exists, a second version on one commit (GTO could not tell which
    one a stage tag on that commit means), uncommitted pipeline outputs, and a commit whose
    gates.json verdict is not pass (or, with `recompute_gates`, whose gates re-run at the commit
    do not give that very report). Without `version`, bumps the highest one (`bump`, default patch).
    """
    if version and bump:
        raise UserError("pass either --version or --bump, not both")
    tags.version_tag(name, version or "v0.0.0")  # validates both before any git call
    commit = resolve_commit(root, rev)
    require_remote(root, remote)
    if remote.push:
        _fetch(root, name, remote)
    artifact = state.read(root, [name]).artifacts.get(name)  # versions that verify: anyone can make a tag
    known = artifact.versions if artifact else ()
    if version is None:
        highest = max((v.version for v in known), key=tags.semver_key, default=None)
        version = tags.bump(highest, bump or "patch")
    tag = tags.version_tag(name, version)
    _refuse_taken(root, name, version, commit, known)
    _refuse_dirty(root, name, commit)
    found = evidence.collect(root, _pipeline_at(root, name, commit), commit, version=version)
    _require_pass(found, commit)
    if recompute_gates:
        found = _recomputed(root, found)
    signing.create_tag(root, tag, commit, evidence.message(f"Register {name} {version}", found), key)
    _keep_if_verified(root, tag, remote)
    if not remote.push:
        return Written(tag, commit, created=True, pushed=False)
    if _push(root, tag, remote) != "pushed":
        _delete(root, tag)
        raise PromotionError(f"{tag} already exists on remote '{remote.name}': choose another version "
                             "(or --bump)")
    return Written(tag, commit, created=True, pushed=True)


def promote(root: Path, name: str, version: str, stage: str, key: signing.SigningKey, *,
            pr: int | None = None, approvers: Sequence[str] = (), remote: Remote = Remote(),
            max_attempts: int = MAX_ATTEMPTS, recompute_gates: bool = False) -> Written:
    """Assign `stage` to `name`'s `version`: a signed `name#stage#N` with evidence, pushed.

    The stage must be one of the policy's stages for `name`, and the stage before it must hold
    the same version (no production without staging); a stage that needs approvals needs `pr`.
    See the module docstring for verification, races and crashes.
    """
    tags.stage_tag(name, stage, 1)  # validates both names before any git call
    tags.version_tag(name, version)
    require_remote(root, remote)
    if remote.push:
        _fetch(root, name, remote)
    artifact = _artifact(root, name)
    registered = artifact.version(version)
    if registered is None or not registered.active:
        listed = ", ".join(v.version for v in artifact.versions if v.active) or "none"
        raise UserError(f"{name}@{version} is not registered (registered versions: {listed}): "
                        f"`modelops-ci register {name} --version {version}` first")
    commit = registered.commit
    check_stage_order(root, artifact, registered, stage)
    _require_pr_if_approved_stage(root, name, stage, pr)
    signed = _signoffs(root, name, stage, pr, commit) if remote.push else {}
    claimed = evidence.collect(root, _pipeline_at(root, name, commit), commit, version=version,
                               stage=stage, pr=pr, approvers=tuple(approvers), signoffs=signed)
    _require_pass(claimed, commit)
    if recompute_gates:
        claimed = _recomputed(root, claimed)
    message = evidence.message(f"Promote {name} {version} to {stage}", claimed)
    for attempt in range(1, max_attempts + 1):
        if attempt > 1 and remote.push:
            time.sleep(secrets.randbelow(40 * attempt) / 1000)  # spread the racers out
            _fetch(root, name, remote)
        written = _attempt(root, name, stage, commit, claimed, message, key, remote, attempt)
        if written is not None:
            return written
    raise PromotionError(f"gave up promoting {name}@{version} to {stage} after {max_attempts} attempts: "
                         f"other promotions kept taking the next N on '{remote.name}'; run it again")


def _attempt(root: Path, name: str, stage: str, commit: str, claimed: evidence.Evidence, message: str,
             key: signing.SigningKey, remote: Remote, attempt: int) -> Written | None:
    """One try: reuse an identical promotion that verifies, or sign the next N; then push.
    None: N was taken."""
    refs = tags.read(root, names=[name], messages=True)
    same = _same_promotion(refs, stage, commit, claimed)
    if same is not None and not _reusable(root, same, remote):
        same = None
    tag = same or tags.stage_tag(name, stage, tags.next_counter(_tag_names(root, name), name))
    if same is None:
        try:
            signing.create_tag(root, tag, commit, message, key)
        except signing.SigningError:
            if _local_oid(root, tag):  # another process in this clone took the name first
                return None
            raise
        _keep_if_verified(root, tag, remote)
    if not remote.push:
        return Written(tag, commit, created=same is None, pushed=False, attempts=attempt)
    outcome = _push(root, tag, remote)
    if outcome != "taken":
        return Written(tag, commit, created=same is None, pushed=True, attempts=attempt)
    _delete(root, tag)
    return None


def _same_promotion(refs: list[tags.TagRef], stage: str, commit: str, claimed: evidence.Evidence) -> str | None:
    """The stage's latest event, if it is an assignment of `commit` with exactly this evidence."""
    events = [r for r in refs if r.parsed.stage == stage]
    if not events:
        return None
    latest = max(events, key=lambda r: r.order)
    if latest.parsed.cancel or latest.commit != commit:
        return None
    try:
        same = evidence.parse(latest.message) == claimed
    except evidence.EvidenceError:
        return None
    return latest.tag if same else None


def _reusable(root: Path, tag: str, remote: Remote) -> bool:
    """Whether a found identical promotion verifies as a new one must. One that does not (a leftover
    signed by another key, say) is never pushed; it is removed unless the remote has it."""
    if _verification(root, tag, remote).ok:
        return True
    if not remote.push or not _remote_oid(root, tag, remote):
        _delete(root, tag)
    return False


def _recomputed(root: Path, found: evidence.Evidence) -> evidence.Evidence:
    """`found`, once the gates re-run at its commit give its very report (else GatesDiffer)."""
    from modelops_ci.registry.recompute import recompute

    recompute(root, found.pipeline, found.commit)
    return replace(found, recomputed=True)


# -- checks -----------------------------------------------------------------------------------


def require_remote(root: Path, remote: Remote) -> None:
    """A remote to push to is one this clone has: a string git would read as an option or a URL
    (`--upload-pack=...`, `ext::...`) is refused before any git call that contacts a remote."""
    if not remote.push:
        return
    known = git.run("remote", cwd=root).stdout.split()
    if remote.name not in known:
        raise UserError(f"--remote '{remote.name}' is not a remote of {root} (remotes: {', '.join(known) or 'none'}):"
                        " pass the name of one (`git remote -v` lists them), or --no-push to work locally")


def _require_pr_if_approved_stage(root: Path, name: str, stage: str, pr: int | None) -> None:
    """A stage whose trusted policy requires approvals is promoted only with its PR: a tag without one
    could never verify, so it is refused before anything is signed."""
    from modelops_ci.registry.trust import promotion_rule

    rule = promotion_rule(root)(name, stage) or {}
    required = int(rule.get("approvals") or 0)
    if required and pr is None:
        raise UserError(f"{stage} requires {required} approval(s) on the promotion pull request, and no --pr "
                        f"was given: open one with `modelops-ci promotion-request {name}@VERSION --to {stage}` "
                        "and promote with --pr N once it is approved; nothing was signed")


def _signoffs(root: Path, name: str, stage: str, pr: int | None, commit: str) -> dict[str, list[str]]:
    """Who signed off, on the PR, each gate warning at `commit` the stage's trusted policy wants
    acknowledged (`require_signoff`), to record in the evidence; verify checks the PR again. Read
    before signing, so a GitHub that cannot answer leaves nothing signed."""
    from modelops_ci.registry.trust import promotion_rule

    rule = promotion_rule(root)(name, stage) or {}
    warned = evidence.warned_gates(git.show_file(root, commit, Layout(name).gates))
    kinds = sorted(warned.intersection(rule.get("require_signoff") or ()))
    if not kinds:
        return {}
    if pr is None:
        raise UserError(f"the {', '.join(kinds)} gate warned at {commit[:12]}, and {stage} requires a sign-off on "
                        f"the promotion pull request: promote with --pr N once a reviewer has signed it off "
                        "(`/signoff KIND` in a review of its head); nothing was signed")
    from modelops_ci.github.client import GitHub, repository
    from modelops_ci.registry.approvals import signoffs

    found = signoffs(GitHub.from_env(), repository(root), pr, kinds, reviewers=rule.get("reviewers") or ())
    return {kind: logins for kind, logins in found.items() if logins}


def resolve_commit(root: Path, rev: str) -> str:
    done = git.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", cwd=root,
                   check=False)
    if done.returncode != 0:
        raise UserError(f"'{rev}' is not a commit of {root}: pass --commit with a branch, tag or commit id")
    return done.stdout.strip()


def _artifact(root: Path, name: str) -> tags.Artifact:
    """`name`'s state as its verified tags give it: a stage is promoted from what verify accepts."""
    verified = state.read(root, [name])
    artifact = verified.artifacts.get(name)
    if artifact is None:
        note = verified.refusal_note(name)
        why = f" (tags that do not verify: {note})" if note else ""
        raise UserError(f"unknown name '{name}': no verified registry tags for it{why}; "
                        f"`modelops-ci register {name}` first")
    return artifact


def _refuse_taken(root: Path, name: str, version: str, commit: str, known: tuple[tags.Version, ...]) -> None:
    if any(v.version == version for v in known) or _tag_names(root, name, version):
        raise UserError(f"{name}@{version} already exists: choose another version (or --bump)")
    here = [v.version for v in known if v.commit == commit and v.active]
    if here:
        raise UserError(f"commit {commit[:12]} already holds {name}@{here[0]}: one version per commit "
                        "(a stage tag on it must name one version); promote that version instead")


def _pipeline_at(root: Path, name: str, commit: str) -> str:
    """`name` itself, once it is a pipeline compiled at `commit` (else a message listing those that are)."""
    listing = git.run("ls-tree", "-d", "--name-only", f"{commit}:{COMPILED_DIR}", cwd=root, check=False)
    pipelines = listing.stdout.split() if listing.returncode == 0 else []
    if name not in pipelines:
        raise UserError(f"unknown pipeline '{name}': not compiled at {commit[:12]} "
                        f"(pipelines there: {', '.join(pipelines) or 'none'})")
    return name


def _refuse_dirty(root: Path, name: str, commit: str) -> None:
    """A version at HEAD must be what HEAD holds: the lock and the gate results committed."""
    if commit != resolve_commit(root, "HEAD"):
        return
    files = Layout(name)
    status = git.run("status", "--porcelain", "--", files.lock, files.params, files.gates, files.metrics,
                     cwd=root).stdout
    changed = [line[3:] for line in status.splitlines()]
    if changed:
        raise UserError(f"pipeline {name} has uncommitted changes ({', '.join(changed)}): commit them "
                        "(`git add` + `git commit`), then register")


def _require_pass(found: evidence.Evidence, commit: str) -> None:
    if found.verdict != "pass":
        said = f"says '{found.verdict}'" if found.verdict else "is missing"
        raise CheckFailed(f"{Layout(found.pipeline).gates} at {commit[:12]} {said}: only a commit whose gates "
                          "passed can be registered or promoted (run `modelops-ci gate`, commit the results)")


def policy_stages(root: Path, name: str, commit: str) -> tuple[str, ...]:
    """The stages the policy gives `name`, as compiled at HEAD (else at `commit`)."""
    for rev in ("HEAD", commit):
        raw = git.show_file(root, rev, Layout(name).params)
        if raw is not None:
            params = yaml.safe_load(raw) or {}
            return tuple(str(s) for s in (params.get("governance") or {}).get("stages") or ())
    return ()


def check_stage_order(root: Path, artifact: tags.Artifact, version: tags.Version, stage: str,
                      *, verb: str = "promote it to") -> None:
    """`stage` is one of the policy's stages (UserError) and its predecessor holds `version`
    (CheckFailed): what verify would refuse, said before anything is made."""
    stages = policy_stages(root, artifact.name, version.commit)
    if stage not in stages:
        raise UserError(f"stage '{stage}' is not in the policy for {artifact.name} (stages: "
                        f"{', '.join(stages) or 'none: no policy selects it'}); see policies/*.yaml")
    index = stages.index(stage)
    if index == 0:
        return
    before = stages[index - 1]
    holder = artifact.stages.get(before)
    if holder is None or holder.commit != version.commit:
        raise CheckFailed(f"{artifact.name}@{version.version} is not in '{before}' "
                          f"({'it holds ' + holder.version if holder else 'nothing is'}): stages go in order "
                          f"{' -> '.join(stages)}; {verb} '{before}' first")


# -- git --------------------------------------------------------------------------------------


def _tag_names(root: Path, name: str, version: str | None = None) -> list[str]:
    """Every tag name (lightweight ones too, which occupy the ref) of `name`, or of one version."""
    prefix = f"refs/tags/{name.replace(':', '=')}"
    patterns = [f"{prefix}@{version}", f"{prefix}@{version}!*"] if version else [f"{prefix}@*", f"{prefix}#*"]
    return git.run("for-each-ref", "--format=%(refname:strip=2)", *patterns, cwd=root).stdout.split()


def _fetch(root: Path, name: str, remote: Remote) -> None:
    """Bring the remote's tags of `name` here; the remote's version of a tag wins (+), so a tag left
    by a crashed promotion that lost its N to another promoter is replaced, not kept."""
    prefix = f"refs/tags/{name.replace(':', '=')}"
    specs = [f"+{prefix}{sep}*:{prefix}{sep}*" for sep in "@#"]
    done = git.run("fetch", "--quiet", "--no-tags", "--end-of-options", str(remote.name), *specs, cwd=root,
                   check=False)
    if done.returncode != 0:
        raise PromotionError(f"cannot fetch tags from remote '{remote.name}' ({done.stderr.strip()}): "
                             "pass --remote NAME, or --no-push to work locally")


def _push(root: Path, tag: str, remote: Remote) -> str:
    """Push one tag atomically: "pushed", "present" (the remote has this very tag) or "taken"."""
    ref = f"refs/tags/{tag}"
    done = git.run("push", "--atomic", "--porcelain", "--end-of-options", str(remote.name), f"{ref}:{ref}",
                   cwd=root, check=False)
    if done.returncode == 0:
        return "present" if f"=\t{ref}:{ref}" in done.stdout else "pushed"
    remote_oid = _remote_oid(root, tag, remote)
    if remote_oid and remote_oid == _local_oid(root, tag):
        return "present"
    if remote_oid:
        return "taken"
    _delete(root, tag)
    raise PromotionError(f"could not push {tag} to '{remote.name}': "
                         f"{(done.stderr or done.stdout).strip()}; nothing was promoted, run it again")


def _keep_if_verified(root: Path, tag: str, remote: Remote) -> None:
    """The tag just made verifies here, or it is removed before anyone can fetch it: a key that is
    not allowed for the stage (a wrong CI secret), or a PR short of its approvals, publishes nothing."""
    try:
        result = _verification(root, tag, remote)
    except ModelopsError:  # no trusted ref, GitHub unreachable: a tag nobody could check cannot stand
        _delete(root, tag)
        raise
    if not result.ok:
        _delete(root, tag)
        raise PromotionError(f"{tag} does not verify, so it was removed and not pushed: "
                             f"[{result.rule}] {result.reason}")


def _verification(root: Path, tag: str, remote: Remote) -> VerifyResult:
    """`tag` under every rule of verify. A tag about to be pushed has its PR's approvals read from
    GitHub (only when its stage requires some); one kept local skips them knowingly, as the
    pre-push hook does, and meets them in CI's verify job when it is pushed."""
    from modelops_ci.registry import approvals, trust
    from modelops_ci.registry.verify import SKIP, verify

    if not remote.push:
        return verify(root, tag, approvals=SKIP)
    return verify(root, tag, approvals=approvals.from_env(trust.promotion_rule(root), root))


def _remote_oid(root: Path, tag: str, remote: Remote) -> str:
    """The object `remote` has for `tag`, or "" when it has none (or cannot be asked)."""
    there = git.run("ls-remote", "--end-of-options", str(remote.name), f"refs/tags/{tag}", cwd=root, check=False)
    return there.stdout.split("\t")[0] if there.returncode == 0 else ""


def _local_oid(root: Path, tag: str) -> str:
    return git.run("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}", cwd=root, check=False).stdout.strip()


def _delete(root: Path, tag: str) -> None:
    oid = _local_oid(root, tag)
    if oid:  # only if it is still the tag we made
        git.run("update-ref", "-d", f"refs/tags/{tag}", oid, cwd=root, check=False)
