"""What verification trusts: allowed signers and policies as the trusted ref holds them.

A promotion must not be able to vouch for itself, so nothing that decides whether a tag is
accepted is read from the commit being promoted (issue #5): `policies/allowed_signers` (the
keys, in ssh-keygen's ALLOWED SIGNERS format), `policies/gpg/<principal>.asc` (GPG public keys)
and the policies are read from the trusted ref: `--trust-ref`, else the remote's default branch
(`refs/remotes/origin/HEAD`), else the local main or master.

Principals are the names in an allowed_signers line's first field (`ci-bot`,
`release-managers`, ...); a policy's `promotion.<stage>.signers` lists the principals that may
sign that stage's tags. A stage whose policy lists no signers may be signed by any principal
in allowed_signers. Registration (`name@vX.Y.Z`) may be signed by anyone allowed for some stage.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.layout import COMPILED_DIR, Layout

ALLOWED_SIGNERS = "policies/allowed_signers"
GPG_KEYS = "policies/gpg/"  # <principal>.asc: armored public keys of that principal
POLICIES = "policies/"
DEFAULT_REFS = ("refs/heads/main", "refs/heads/master")
_VALIDITY = ("valid-after=", "valid-before=")
# principals [options] keytype base64 [comment]; options may quote commas and spaces
_SIGNER_LINE = re.compile(r'^(?P<principals>"[^"]*"|\S+)\s+(?:(?P<options>(?:[^\s"]|"[^"]*")+)\s+)?'
                          r"(?P<key>(?:ssh-|ecdsa-|sk-)\S+\s+\S+.*)$")
_OPTION = re.compile(r'(?:[^,"]|"[^"]*")+')


class TrustError(UserError):
    """The trusted ref, or what it holds, cannot be read."""


@dataclass(frozen=True)
class SignerLine:
    """One line of allowed_signers: who (principals), under which options, which key."""

    principals: tuple[str, ...]
    options: tuple[str, ...]
    key: str

    def render(self, *, validity: bool = True) -> str:
        """The line for ssh-keygen; without valid-after/valid-before when `validity` is false."""
        options = [o for o in self.options if validity or not o.lower().startswith(_VALIDITY)]
        fields = [",".join(self.principals), ",".join(options), self.key]
        return " ".join(f for f in fields if f)


@dataclass(frozen=True)
class PolicyRules:
    """The parts of a trusted policy that verification needs."""

    name: str
    source: str
    names: tuple[str, ...]
    labels: dict[str, str]
    stages: tuple[str, ...]
    promotion: dict[str, dict[str, Any]]
    gates: dict[str, Any]
    family: dict[str, Any] = field(default_factory=dict)  # how many of a batched family's series may fail

    def selects(self, pipeline: str, labels: Mapping[str, str]) -> bool:
        """As `Policy.selects`: every selector condition holds (name glob, labels)."""
        if self.names and not any(fnmatch.fnmatchcase(pipeline, glob) for glob in self.names):
            return False
        return all(labels.get(key) == value for key, value in self.labels.items())

    @property
    def required_gates(self) -> tuple[str, ...]:
        """Gate kinds this policy requires to pass (advisory ones only warn)."""
        return tuple(kind for kind, settings in self.gates.items()
                     if not (isinstance(settings, dict) and settings.get("advisory") is True))


@dataclass(frozen=True)
class StageRule:
    """What entering `stage` takes under every policy governing a pipeline.

    `signers` is None when no policy restricts them (any principal in allowed_signers); with
    several policies a principal must be allowed by each one that lists signers. `approvals` is
    the largest count required; an approver must be allowed by every list in `reviewers`.
    """

    stage: str
    signers: frozenset[str] | None
    approvals: int = 0
    reviewers: tuple[tuple[str, ...], ...] = ()
    policies: tuple[str, ...] = ()
    signoff: tuple[str, ...] = ()  # gate kinds whose warning needs a sign-off (any governing policy's)


@dataclass(frozen=True)
class Trust:
    """Allowed signers and policies at the trusted ref."""

    ref: str
    commit: str
    signers: tuple[SignerLine, ...] | None  # None: no policies/allowed_signers at the ref
    policies: tuple[PolicyRules, ...]
    gpg_keys: dict[str, bytes] = field(default_factory=dict)
    digest: str = ""  # sha256 over every file read here: what a remembered verdict was judged by
    params_ids: dict[str, str] = field(default_factory=dict)  # pipeline -> its params.yaml blob (labels)

    def governing(self, pipeline: str, labels: Iterable[Mapping[str, str]]) -> tuple[PolicyRules, ...]:
        """Policies selecting `pipeline` under any of the label sets given.

        Verification passes the labels at the promoted commit and at the trusted ref, so relabelling
        a pipeline in the change being promoted cannot move it out of a policy's reach.
        """
        label_sets = list(labels)
        return tuple(p for p in self.policies if any(p.selects(pipeline, ls) for ls in label_sets))

    def stage_rule(self, policies: tuple[PolicyRules, ...], stage: str) -> StageRule:
        """The combined rule of `policies` for entering `stage`."""
        rules = [p.promotion.get(stage) or {} for p in policies]
        lists = [frozenset(str(s) for s in r["signers"]) for r in rules if r.get("signers") is not None]
        signers = frozenset.intersection(*lists) if lists else None
        return StageRule(
            stage, signers, approvals=max((int(r.get("approvals") or 0) for r in rules), default=0),
            reviewers=tuple(tuple(str(x) for x in r["reviewers"]) for r in rules if r.get("reviewers")),
            policies=tuple(p.name for p in policies),
            signoff=tuple(sorted({str(kind) for r in rules for kind in r.get("require_signoff") or ()})))

    def registration_signers(self, policies: tuple[PolicyRules, ...]) -> frozenset[str] | None:
        """Principals that may register a version: anyone allowed to sign one of its stages."""
        stages = {s for p in policies for s in p.stages}
        allowed: set[str] = set()
        for stage in stages:
            rule = self.stage_rule(policies, stage)
            if rule.signers is None:
                return None
            allowed |= rule.signers
        return frozenset(allowed)

    def allowed_signers(self, principals: frozenset[str] | None, *, validity: bool = True) -> str:
        """allowed_signers text narrowed to lines naming one of `principals` (None: every line)."""
        lines = [s.render(validity=validity) for s in self.signers or ()
                 if principals is None or principals.intersection(s.principals)]
        return "".join(line + "\n" for line in lines)

    def principals(self) -> frozenset[str]:
        return frozenset(p for s in self.signers or () for p in s.principals)


def resolve_ref(root: Path, given: str | None = None) -> tuple[str, str]:
    """(ref, commit) to trust: `given`, else origin's default branch, else local main/master."""
    if given is not None and (not given or given.startswith("-")):
        raise TrustError(f"trust ref '{given}' is not a ref name: pass a branch, e.g. --trust-ref origin/main")
    candidates = [given] if given else [*_origin_head(root), *DEFAULT_REFS]
    for ref in candidates:
        done = git.run("rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}", cwd=root,
                       check=False)
        if done.returncode == 0:
            return ref, done.stdout.strip()
    if given:
        raise TrustError(f"trust ref '{given}' is not a commit in {root}: fetch it, or pass a branch "
                         "that exists (e.g. --trust-ref origin/main)")
    raise TrustError(f"{root}: no trusted ref to read allowed signers and policies from "
                     "(no origin/HEAD, main or master): pass --trust-ref, e.g. --trust-ref origin/main")


def load(root: Path, trust_ref: str | None = None) -> Trust:
    """Allowed signers, GPG keys and policies as `trust_ref` (see `resolve_ref`) holds them."""
    ref, commit = resolve_ref(root, trust_ref)
    listing = _blob_ids(root, commit, [POLICIES, f"{COMPILED_DIR}/"])
    paths = [p for p in listing if p.startswith(POLICIES)
             and (p == ALLOWED_SIGNERS or p.startswith(GPG_KEYS) or p.endswith((".yaml", ".yml")))]
    blobs = git.cat_files(root, [f"{commit}:{p}" for p in paths])
    content = {p: blobs[f"{commit}:{p}"] or b"" for p in paths}
    signers = parse_allowed_signers(content[ALLOWED_SIGNERS].decode()) if ALLOWED_SIGNERS in content else None
    gpg_keys = {Path(p).stem: raw for p, raw in content.items() if p.startswith(GPG_KEYS)}
    policies = tuple(rules for p, raw in content.items() if p.endswith((".yaml", ".yml"))
                     for rules in [_policy(ref, p, raw)] if rules is not None)
    return Trust(ref, commit, signers, policies, gpg_keys, _digest(content), _params_ids(listing))


def _digest(content: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(content):
        digest.update(path.encode() + b"\0" + hashlib.sha256(content[path]).digest())
    return digest.hexdigest()


def _blob_ids(root: Path, commit: str, folders: list[str]) -> dict[str, str]:
    """path -> blob id of every file under `folders` at `commit`, in one `git ls-tree`."""
    listing = git.run("ls-tree", "-r", "-z", "--full-tree", commit, "--", *folders, cwd=root).stdout
    found: dict[str, str] = {}
    for entry in listing.split("\0"):
        meta, _, path = entry.partition("\t")
        if path:
            found[path] = meta.split()[2]
    return found


def _params_ids(listing: dict[str, str]) -> dict[str, str]:
    """pipeline -> the blob id of its compiled params.yaml (its labels live there)."""
    prefix, suffix = f"{COMPILED_DIR}/", "/params.yaml"
    return {path[len(prefix):-len(suffix)]: blob for path, blob in listing.items()
            if path.startswith(prefix) and path.endswith(suffix)}


def promotion_rule(root: Path, trust_ref: str | None = None) -> Callable[[str, str], dict[str, Any] | None]:
    """`rule(pipeline, stage)`: what entering `stage` takes under the trusted policies, as a dict
    (`approvals`, `reviewers`, `signers`, `require_signoff`), or None when no policy there lists that stage.

    For approval checks (approvals.for_verifier). The pipeline's labels are read at the trusted
    ref; reviewers of several governing policies are intersected.
    """
    loaded = load(root, trust_ref)

    def rule(pipeline: str, stage: str) -> dict[str, Any] | None:
        params = git.cat_files(root, [f"{loaded.commit}:{params_path(pipeline)}"])
        labels = pipeline_labels(next(iter(params.values())))
        policies = loaded.governing(pipeline, [labels or {}])
        if not policies or stage not in policies[0].stages:
            return None
        found = loaded.stage_rule(policies, stage)
        reviewers = set.intersection(*(set(r) for r in found.reviewers)) if found.reviewers else set()
        return {"approvals": found.approvals, "reviewers": sorted(reviewers),
                "signers": sorted(found.signers) if found.signers is not None else None,
                "require_signoff": list(found.signoff)}

    return rule


def parse_allowed_signers(text: str) -> tuple[SignerLine, ...]:
    """The lines of an allowed_signers file (comments and blank lines skipped)."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SIGNER_LINE.match(line)
        if not match:
            raise TrustError(f"{ALLOWED_SIGNERS}:{number}: not 'principals [options] keytype key': fix "
                             "the line on the trusted branch (see ALLOWED SIGNERS in `man ssh-keygen`)")
        principals = tuple(p for p in match["principals"].strip('"').split(",") if p)
        options = tuple(_OPTION.findall(match["options"] or ""))
        lines.append(SignerLine(principals, options, match["key"]))
    return tuple(lines)


def signer_time(option: str) -> float | None:
    """The unix time of a `valid-before=`/`valid-after=` option (YYYYMMDD[HHMM[SS]][Z], as
    ssh-keygen reads it), or None when it cannot be read. A time without Z is the verifier's local
    time, so it is read a day early: earlier is the safe side for a verdict that lapses then."""
    value = option.partition("=")[2].strip('"')
    utc = value.upper().endswith("Z")
    digits = value[:-1] if utc else value
    layouts = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not re.fullmatch(r"[0-9]+", digits) or len(digits) not in layouts:
        return None
    moment = datetime.strptime(digits, layouts[len(digits)]).replace(tzinfo=UTC).timestamp()
    return moment if utc else moment - 86_400


def pipeline_labels(blob: bytes | None) -> dict[str, str] | None:
    """A pipeline's labels from its compiled params.yaml (None when it has none there)."""
    if not blob:
        return None
    loaded = yaml.safe_load(blob)
    labels = loaded.get("labels") if isinstance(loaded, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def params_path(pipeline: str) -> str:
    return Layout(pipeline).params


def _origin_head(root: Path) -> list[str]:
    done = git.run("symbolic-ref", "-q", "refs/remotes/origin/HEAD", cwd=root, check=False)
    return [done.stdout.strip()] if done.returncode == 0 and done.stdout.strip() else []


def _policy(ref: str, path: str, raw: bytes) -> PolicyRules | None:
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise TrustError(f"{path} at {ref} is not valid YAML ({exc}): fix it on the trusted branch") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Policy":
        return None
    spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
    selector: dict[str, Any] = spec.get("selector") or {}
    try:
        return PolicyRules(
            name=str((doc.get("metadata") or {}).get("name", path)), source=path,
            names=tuple(str(n) for n in selector.get("names") or ()),
            labels={str(k): str(v) for k, v in (selector.get("labels") or {}).items()},
            stages=tuple(str(s) for s in spec.get("stages") or ()),
            promotion={str(k): dict(v or {}) for k, v in (spec.get("promotion") or {}).items()},
            gates=dict(spec.get("gates") or {}), family=dict(spec.get("family") or {}))
    except (AttributeError, TypeError, ValueError) as exc:
        raise TrustError(f"{path} at {ref} is not a valid policy ({exc}): run `modelops-ci validate` "
                         "on the trusted branch") from None
