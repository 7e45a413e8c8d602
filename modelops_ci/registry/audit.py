"""The lineage of a stage: stage -> tag -> version -> commit -> data hashes (dvc.lock) -> gate
report -> PR and approvers -> signer, as the tag claims it and as the commit holds it.

Audit reports what the tags and commits hold; the judgement is `verify`'s, run here offline
(approvals skipped: they need GitHub) and shown beside the lineage. So the approvers a tag names
(`promote --approver`) are shown as what they are, the promoter's claim (`claimed_approvers`,
`approvals_checked: false`), never as checked approvals. The signer is the principal
verify accepted, else what the signature itself tells: the key's fingerprint (checked against
the signed bytes) and its principal in allowed_signers on the trusted branch, marked unverified.

A batched family's lineage carries its `family` block (series count, failed, digest, outputs,
params digest); `with_series` adds one series' own lineage (registry/series.py).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.registry import evidence, series, signatures, tags
from modelops_ci.registry.signatures import TagObject
from modelops_ci.registry.verify import VerifyResult

UNVERIFIED = "unverified"
_FINGERPRINT = re.compile(r"key (SHA256:[A-Za-z0-9+/=]+)")
COMPARED = ("commit", "version", "data", "model", "metrics", "gates_digest", "verdict", "policy_digest")


@dataclass(frozen=True)
class Signer:
    """Who signed a tag, as far as audit can tell without verifying the promotion."""

    # "verified": verify accepted the signature and its principal for this stage;
    # "signed": the signature is good and allowed_signers names its key; "unknown-key": good, but no
    # principal has the key; "bad-signature"; "unsigned"; "unverified": no allowed_signers to ask, or GPG
    status: str
    fingerprint: str = ""
    principals: tuple[str, ...] = ()

    def __str__(self) -> str:
        key = f"key {self.fingerprint}" if self.fingerprint else "GPG key"
        who = ", ".join(self.principals)
        return {
            "verified": f"{who} ({key})",
            "signed": f"{who} ({key}; not verified: `modelops-ci verify`)",
            "unknown-key": f"{key}, which no principal in allowed_signers has",
            "bad-signature": "a signature that does not match the tag's content",
            "unsigned": "unsigned",
        }.get(self.status, f"unverified ({key})")


@dataclass(frozen=True)
class Lineage:
    """One stage of one name, traced to its data."""

    name: str
    stage: str
    tag: str
    tagger: str
    date: int
    version: str
    version_tag: str | None
    commit: str
    data: dict[str, str]
    model: dict[str, str]
    sources: dict[str, dict[str, str]]  # the raw sources, as the commit holds them (evidence.sources)
    verdict: str
    gates_digest: str
    policy_digest: str
    pr: int | None
    claimed_approvers: tuple[str, ...]  # what the tag says; audit asks no GitHub (approvals_checked)
    claimed_signoffs: dict[str, list[str]]  # gate kind -> who signed off its warning, as the tag records it
    signer: Signer
    evidence: str  # "matches", "differs", "missing"
    differences: tuple[str, ...] = field(default=())
    verification: dict[str, Any] | None = None  # verify's verdict without approvals: ok, rule, reason
    approvals_checked: bool = False  # audit never asks GitHub: `verify` does
    family: dict[str, Any] = field(default_factory=dict)  # a batched family's series block (evidence.family)
    series: series.SeriesLineage | None = None  # one series of the family, when asked for

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["claimed_approvers"] = list(self.claimed_approvers)
        found["differences"] = list(self.differences)
        found["signer"] = {**asdict(self.signer), "principals": list(self.signer.principals),
                           "summary": str(self.signer)}
        return found


def lineage(root: Path, artifact: tags.Artifact, stage: str, by_tag: dict[str, tags.TagRef],
            verdict: VerifyResult) -> Lineage:
    """`stage` of `artifact` traced: what its tag claims (`by_tag`: the name's tags with messages)
    beside what the commit holds, with verify's `verdict` on the tag."""
    held = artifact.stages[stage]
    ref = by_tag[held.tag]
    version = artifact.version(held.version)
    try:
        claimed: evidence.Evidence | None = evidence.parse(ref.message)
    except evidence.EvidenceError:
        claimed = None
    actual = _actual(root, artifact.name, held)
    state, differences = _compare(claimed, actual)
    source = actual or claimed
    return Lineage(
        name=artifact.name, stage=stage, tag=held.tag, tagger=ref.tagger, date=ref.date, version=held.version,
        version_tag=version.tag if version else None, commit=held.commit,
        data=dict(source.data) if source else {}, model=dict(source.model) if source else {},
        sources=dict(source.sources) if source else {},
        verdict=source.verdict if source else "", gates_digest=source.gates_digest if source else "",
        policy_digest=source.policy_digest if source else "",
        pr=claimed.pr if claimed else None, claimed_approvers=claimed.approvers if claimed else (),
        claimed_signoffs=dict(claimed.signoffs) if claimed else {},
        signer=_signer(root, held.tag, verdict), evidence=state, differences=differences,
        verification={"ok": verdict.ok, "rule": verdict.rule, "reason": verdict.reason},
        family=dict(source.family) if source else {},
    )


def with_series(root: Path, found: Lineage, name: str) -> Lineage:
    """`found` with series `name`'s lineage: its key, params, model, verdict and data source."""
    if not found.family:
        raise UserError(f"{found.name} is not a batched family (spec.batch): --series applies to families only")
    return replace(found, series=series.lineage(root, found.name, found.commit, found.family, name, found.sources))


def _signer(root: Path, tag: str, verdict: VerifyResult) -> Signer:
    seen = signer(root, tag)
    if verdict.signer:  # verify accepted the signature and its principal
        return Signer("verified", seen.fingerprint, (str(verdict.signer),))
    return seen


def _actual(root: Path, name: str, held: tags.Champion) -> evidence.Evidence | None:
    """What the commit holds (recomputed), or None when it holds no pipeline output to recompute."""
    try:
        return evidence.collect(root, name, held.commit, version=held.version)
    except UserError:
        return None


def _compare(claimed: evidence.Evidence | None, actual: evidence.Evidence | None) -> tuple[str, tuple[str, ...]]:
    if claimed is None:
        return "missing", ()
    if actual is None:
        return "differs", ("the commit holds no dvc.lock with a model to recompute the evidence from",)
    compared = (*COMPARED, "sources") if claimed.sources else COMPARED  # absent from tags made before it
    differences = tuple(key for key in compared if getattr(claimed, key) != getattr(actual, key))
    return ("differs" if differences else "matches"), differences


def signer(root: Path, tag: str) -> Signer:
    """The key that signed `tag` (checked against the signed bytes, not against any policy) and
    its principals in allowed_signers on the trusted branch. GPG signatures: "unverified"."""
    raw = git.run("cat-file", "tag", tag, cwd=root, check=False).stdout
    obj = TagObject.parse(raw.encode())
    if not obj.is_ssh:
        return Signer(UNVERIFIED if obj.is_openpgp else "unsigned")
    with tempfile.TemporaryDirectory(prefix="modelops-audit-") as folder:
        sig = Path(folder) / "tag.sig"
        sig.write_bytes(obj.signature)
        checked = signatures.ssh_keygen("check-novalidate", "-n", "git", "-s", str(sig), stdin=obj.payload)
        found = _FINGERPRINT.search((checked.stdout + checked.stderr).decode(errors="replace"))
        if checked.returncode != 0 or not found:
            return Signer("bad-signature")
        principals = _principals(root, sig, Path(folder))
    if principals is None:
        return Signer(UNVERIFIED, found.group(1))
    return Signer("signed" if principals else "unknown-key", found.group(1), principals)


def _principals(root: Path, sig: Path, folder: Path) -> tuple[str, ...] | None:
    """Principals allowed_signers on the trusted branch gives the signing key; None when there is
    no trusted branch or allowed_signers to ask."""
    from modelops_ci.registry import trust

    try:
        allowed = trust.load(root).allowed_signers(None, validity=False)
    except UserError:
        return None
    if not allowed:
        return None
    listing = folder / "allowed_signers"
    listing.write_text(allowed, encoding="utf-8")
    done = signatures.ssh_keygen("find-principals", "-s", str(sig), "-f", str(listing))
    return tuple(done.stdout.decode().split()) if done.returncode == 0 else ()
