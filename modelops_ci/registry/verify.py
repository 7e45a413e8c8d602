"""Verify registry tags: a tag is accepted only if every rule holds, and a refusal names its rule.

The rules (ids in `RULES`), checked in this order:

1. `annotated`, `tag-name`, `target`, `grammar`: the ref is an annotated tag object whose own
   `tag` header is the ref's name (a ref re-pointed at another signed tag object fails), which
   points at a commit; a stage tag carries its counter N.
2. `signed`, `signature`, `trust`, `policy`, `signer-unknown`, `signer-expired`, `signer-stage`:
   the tag is signed, the signature is valid for its content and its principal may sign this
   stage, by `policies/allowed_signers` and the policy as the trusted ref holds them (trust.py).
   SSH signatures are checked here with `ssh-keygen -Y verify` against allowed_signers narrowed
   to the stage's principals, at the current time: git itself passes the tagger date as the
   verify time, which the signer writes, so an expired key could backdate its tag. GPG
   signatures are checked with gpg against the keys under `policies/gpg/` at the trusted ref,
   accepted only on exit status 0 with VALIDSIG and no expired/revoked key status (gpg judges
   key expiry at the current time). Decisions rest on exit status (and gpg's machine-readable
   status lines), never on the human text: git prints "Good signature" for keys it then rejects.
3. `evidence`, `digest`, `gates`: the tag message's evidence block names this pipeline, version
   and stage and the tagged commit, equals what `evidence.collect` recomputes at that commit, and
   the committed gates.json says pass, with every gate the trusted policy requires among those
   passed (a commit whose own policy dropped a gate does not escape it), run with thresholds no
   weaker than the trusted policy's (as the dvc.lock entry that produced that gates.json records
   them: a commit whose own policy loosened a threshold does not escape it either). A batched
   family's report counts its series: those that failed, or lack a gate the trusted policy
   requires, must be no more than the trusted policy's `family` rule allows, and the gate settings
   are those of the compiled params.yaml whose md5 the lock records for the batch stage.
4. `registered`, `stage-order` (stage tags): `name@<version>` is a verified tag on the same
   commit, not deregistered before; and unless the stage is the policy's first, the previous
   stage held that commit just before this tag's N (replaying only tags that verify).
5. `approvals` (stage tags): the injected checker accepts the promotion PR. Without a checker a
   stage whose policy requires approvals is refused, unless the caller passes `approvals=SKIP`
   (the pre-push hook and offline checks, which cannot reach GitHub, say so explicitly).

Unassignment, deregistration and retirement tags (`!`, `@deprecated`) are checked for 1 and 2.

`series-model` (`check_series`, run by the `verify` command on a family's tags that pass the rest):
each series' model, as DVC's cache holds it, has the sha256 the evidence names. It reads local
data (`dvc pull`), so it is not remembered, and a model not pulled is said, not refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.family_params import SERIES, allowed_failures, series_params
from modelops_ci.family_params import load as load_family
from modelops_ci.layout import Layout
from modelops_ci.registry import evidence as ev
from modelops_ci.registry import series, signatures
from modelops_ci.registry import tags as grammar
from modelops_ci.registry import trust as trusted
from modelops_ci.registry.signatures import TagObject
from modelops_ci.registry.verdict_cache import Verdict, VerdictCache, code_digest

SKIP: Literal["skip"] = "skip"
UNAVAILABLE = "approvals-unavailable"  # the approvals checker could not ask GitHub: refused, never accepted
ApprovalsCheck = Callable[[str, str, ev.Evidence, frozenset[str]], tuple[bool, str, str]]
Approvals = ApprovalsCheck | Literal["skip"] | None

RULES: dict[str, str] = {
    "annotated": "the tag is an annotated tag object, not a lightweight ref",
    "tag-name": "the tag name inside the signed object equals the ref name",
    "target": "the tag points at a commit, the one its evidence names",
    "grammar": "a stage tag carries its counter (name#stage#N): order must not rest on a date",
    "signed": "the tag carries a signature",
    "signature": "the signature is valid for the tag's content (SSH, or GPG; not x509)",
    "trust": "the trusted ref holds policies/allowed_signers (SSH) or policies/gpg/ keys (GPG)",
    "policy": "a policy at the trusted ref governs the pipeline and lists the stage",
    "signer-unknown": "the signing key is in the trusted allowed_signers (or policies/gpg/)",
    "signer-expired": "the signing key is valid now, not only at the date the tag claims",
    "signer-stage": "the signer's principal may sign this stage under the trusted policy",
    "evidence": "the tag message holds an evidence block naming this pipeline, version and stage",
    "digest": "the evidence equals what the commit holds (dvc.lock digests, metrics, gates, policies)",
    "gates": "every gate the trusted policy requires passed at the commit, under its thresholds or stricter",
    "counter": "N is the name's own: no other event of the name has it, none made earlier has a larger one",
    "retired": "the name was not retired (name@deprecated#N) before this event",
    "registered": "the version is registered by a verified name@vX.Y.Z tag on the same commit",
    "stage-order": "the previous stage held the same version when this stage was assigned",
    "approvals": "the promotion PR has the approvals the policy requires",
    UNAVAILABLE: "GitHub answered when the promotion PR's approvals were checked (unreachable, token refused)",
    "signoff": "a gate the policy's require_signoff names warned at the commit, and the promotion PR holds (and the "
               "tag records) an allowed reviewer's `/signoff KIND` review of its final head commit",
    "series-model": "each series' model of a batched family, as the DVC cache holds it, has the evidence's sha256",
}

_GPG_BAD = {"BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG"}


@dataclass(frozen=True)
class VerifyResult:
    """One tag's verdict: ok, or the id of the rule it broke (see `RULES`) and why.

    `approvals` says what became of a stage tag's approvals rule: "checked" (GitHub was asked and
    the PR passed), "not-required", "skipped" (the caller chose not to ask: said, never implied),
    "refused", "unavailable" (GitHub could not be asked); None for other tags, or when an earlier
    rule refused the tag.
    """

    tag: str
    ok: bool
    rule: str = ""
    reason: str = ""
    signer: str = ""
    commit: str = ""
    version: str = ""
    approvals: str | None = None
    models: str | None = None  # a family's series models: "checked", "not-pulled"; None: not a family

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.tag}: verified ({self.reason})"
        return f"{self.tag}: REFUSED [{self.rule}] {self.reason}"


def verify(root: Path, tag: str, *, trust_ref: str | None = None,
           approvals: Approvals = None, newest: bool = False) -> VerifyResult:
    """Check one registry tag against every rule; the result names the first rule broken.

    `trust_ref` is where allowed signers and policies are read (default: origin's default
    branch, else main/master). `approvals(pipeline, stage, evidence) -> (ok, rule, reason)`
    judges the promotion PR; pass `SKIP` to skip that rule knowingly. `newest` (the push-time
    check of a tag just pushed) also requires its N to exceed every other verified event's of the
    name. Raises a UserError when the tag does not exist or the trusted ref cannot be read.
    """
    parsed = grammar.parse(tag)
    if parsed is None:
        why = grammar.malformed_reason(tag) or "name@vX.Y.Z or name#stage#N"
        raise grammar.RegistryError(f"'{shown(tag)}' is not a registry tag: {why}")
    with session(root, names=[parsed.name], trust_ref=trust_ref, approvals=approvals) as verifier:
        if tag not in verifier.refs:
            raise grammar.RegistryError(f"no tag '{tag}' in {root}: `git fetch --tags`, or check the name "
                                        "(`modelops-ci registry show`)")
        result = verifier.check_after_predecessors(tag)
        return verifier.newest(result) if newest and result.ok else result


def verify_all(root: Path, *, trust_ref: str | None = None, approvals: Approvals = None,
               name: str | None = None) -> list[VerifyResult]:
    """Check every registry tag (of `name`, if given), lightweight and malformed ones included."""
    with session(root, names=[name] if name else [], trust_ref=trust_ref, approvals=approvals) as verifier:
        return [*verifier.check_all().values(), *verifier.malformed_results()]


def shown(tag: str, limit: int = 80) -> str:
    """A tag name short enough to print (a malformed one may be thousands of characters)."""
    return tag if len(tag) <= limit else f"{tag[:limit]}…"


class _Refused(Exception):
    def __init__(self, rule: str, reason: str, approvals: str | None = None) -> None:
        super().__init__(reason)
        self.rule, self.reason, self.approvals = rule, reason, approvals


@dataclass
class _Facts:
    """What is known of a tag so far, reported with its verdict."""

    commit: str = ""
    signer: str = ""
    version: str = ""
    stages: tuple[str, ...] = ()
    remembered: bool = True  # false for verdicts that rest on what a key cannot hold (GPG keyrings)


@dataclass
class Verifier:
    """Checks tags of one repository against one trust, remembering every verdict and read, so a
    tag's registration and predecessors are verified once however many tags refer to them.

    A tag's own rules are remembered across runs too (verdict_cache); the rules between tags
    (counter, retired, registered, stage-order) and the approvals are judged afresh every time.
    """

    root: Path
    trust: trusted.Trust
    approvals: Approvals
    refs: dict[str, grammar.TagRef]
    malformed: tuple[tuple[str, str], ...]
    scratch: Path
    cache: VerdictCache
    clock: float = field(default_factory=time.time)
    _results: dict[str, VerifyResult] = field(default_factory=dict)
    _own: dict[str, Verdict] = field(default_factory=dict)
    _counters: dict[str, dict[str, str]] = field(default_factory=dict)
    _blobs: dict[str, bytes | None] = field(default_factory=dict)
    _collected: dict[tuple[str, str], ev.Evidence | ev.EvidenceError] = field(default_factory=dict)
    _gpg: tuple[Path, dict[str, frozenset[str]]] | None = None
    _trust_keys: dict[str, str] = field(default_factory=dict)
    _by_name: dict[str, list[grammar.TagRef]] | None = None
    _withdrawals: dict[str, list[grammar.TagRef]] = field(default_factory=dict)
    _files: int = 0

    @property
    def now(self) -> str:
        """The verification time in ssh-keygen's format: now, never the tagger date."""
        return datetime.fromtimestamp(self.clock, UTC).strftime("%Y%m%d%H%M%SZ")

    def of(self, name: str) -> list[grammar.TagRef]:
        """The tags of `name` (the rules between tags compare names, never all tags)."""
        if self._by_name is None:
            self._by_name = {}
            for ref in self.refs.values():
                self._by_name.setdefault(ref.parsed.name, []).append(ref)
        return self._by_name.get(name, [])

    def withdrawals(self, name: str) -> list[grammar.TagRef]:
        """The tags of `name` that take something back: deregistrations, unassignments, retirements."""
        if name not in self._withdrawals:
            self._withdrawals[name] = [r for r in self.of(name) if r.parsed.cancel or r.parsed.deprecated]
        return self._withdrawals[name]

    def check(self, tag: str) -> VerifyResult:
        if tag not in self._results:
            self._results[tag] = self._judge(self.refs[tag])
        return self._results[tag]

    def check_all(self) -> dict[str, VerifyResult]:
        """Every tag's verdict, each name's events judged oldest N first: a verdict rests on its
        predecessors', so judging them first keeps the recursion one step deep however long the history."""
        for ref in sorted(self.refs.values(), key=lambda r: (r.parsed.name, *r.order)):
            self.check(ref.tag)
        return {tag: self._results[tag] for tag in self.refs}

    def check_after_predecessors(self, tag: str) -> VerifyResult:
        """`tag`'s verdict, its name's earlier events judged first (oldest N first, see check_all)."""
        target = self.refs[tag]
        for ref in sorted(self.of(target.parsed.name), key=lambda r: r.order):
            if ref.order < target.order:
                self.check(ref.tag)
        return self.check(tag)

    def newest(self, result: VerifyResult) -> VerifyResult:
        """`result`, refused by the counter rule unless its tag's N exceeds every other N of its name
        carried by a tag whose own rules hold (an unsigned tag cannot block a promotion)."""
        target = self.refs[result.tag]
        if target.parsed.counter is None:
            return result
        higher = [r.tag for r in self.of(target.parsed.name) if r is not target and r.parsed.counter is not None
                  and r.parsed.counter >= target.parsed.counter and self.own(r).ok]
        if not higher:
            return result
        return replace(result, ok=False, rule="counter",
                       reason=f"pushed after {', '.join(sorted(higher)[:3])}, whose N is not lower: a new "
                              "event's N must exceed every existing one's; promote again (it takes the next N)")

    def malformed_results(self) -> list[VerifyResult]:
        return [VerifyResult(shown(tag), False, "grammar", f"not a valid registry tag: {why}")
                for tag, why in self.malformed]

    def _judge(self, ref: grammar.TagRef) -> VerifyResult:
        own = self.own(ref)
        facts = {"signer": own.signer, "commit": own.commit, "version": own.version}
        if not own.ok:
            return VerifyResult(ref.tag, False, own.rule, own.reason, **facts)
        try:
            approvals, note = self._relations(ref, own)
        except _Refused as refused:
            return VerifyResult(ref.tag, False, refused.rule, refused.reason, **facts, approvals=refused.approvals)
        reason = f"{own.reason}; {note}" if note else own.reason
        return VerifyResult(ref.tag, True, "", reason, **facts, approvals=approvals)

    # --- a tag's own rules, remembered ------------------------------------------------------------

    def own(self, ref: grammar.TagRef) -> Verdict:
        """The verdict of the rules that depend on this tag alone (and the trust), read or made."""
        if ref.tag not in self._own:
            key = self._cache_key(ref)
            verdict = self.cache.get(key, self.clock) if key else None
            if verdict is None:
                verdict, remembered = self._own_rules(ref)
                if key and remembered:
                    self.cache.put(key, verdict)
            self._own[ref.tag] = verdict
        return self._own[ref.tag]

    def warm(self) -> None:
        """Read in two git calls every tag object whose verdict is not remembered (a cold run), then
        what its rules read of its commit and the trusted ref."""
        cold = [ref for ref in self.refs.values() if ref.kind == "tag" and not self.cache.knows(self._cache_key(ref))]
        self._blobs.update(git.cat_files(self.root, [r.oid for r in cold if r.oid not in self._blobs]))
        wanted = {blob for ref in cold
                  for blob in self._needed(ref.parsed.name, TagObject.parse(self._blobs[ref.oid] or b"").object)}
        self._blobs.update(git.cat_files(self.root, sorted(wanted - set(self._blobs))))

    def _cache_key(self, ref: grammar.TagRef) -> str:
        if ref.kind != "tag":
            return ""
        return f"{ref.oid}:{self._trust_key(ref.parsed.name)}"

    def _trust_key(self, name: str) -> str:
        """What the trust contributes to `name`'s verdicts: its files, its ref and name's labels there."""
        if name not in self._trust_keys:
            parts = (code_digest(), self.trust.digest, self.trust.ref, self.trust.params_ids.get(name, ""))
            self._trust_keys[name] = hashlib.sha256("\0".join(parts).encode()).hexdigest()
        return self._trust_keys[name]

    def _own_rules(self, ref: grammar.TagRef) -> tuple[Verdict, bool]:
        facts = _Facts()
        try:
            reason = self._rules(ref, facts)
        except _Refused as refused:
            return Verdict(False, refused.rule, refused.reason, facts.signer, facts.commit, facts.version,
                           facts.stages), facts.remembered
        verdict = Verdict(True, "", reason, facts.signer, facts.commit, facts.version, facts.stages,
                          until=signers_valid_until(self.trust, self.clock))
        return verdict, facts.remembered

    def _rules(self, ref: grammar.TagRef, facts: _Facts) -> str:
        obj = self._structure(ref)
        facts.commit = obj.object
        self._prefetch(ref.parsed.name, obj.object)
        policies = self._governing(ref.parsed.name, obj.object)
        facts.stages = policies[0].stages
        stage = ref.parsed.stage
        principals = (self._stage_rule(policies, stage).signers if stage
                      else self.trust.registration_signers(policies))
        facts.remembered = not obj.is_openpgp
        facts.signer = self._signature(obj, principals, stage)
        if ref.parsed.cancel or ref.parsed.deprecated:
            return f"signed by {facts.signer}"
        claimed = self._evidence(ref, obj)
        facts.version = claimed.version
        self._gates(ref.parsed.name, obj.object, policies)
        if stage is None:
            return f"{claimed.version} at {obj.object[:12]}, signed by {facts.signer}"
        return f"{claimed.version} at {obj.object[:12]} to {stage}, signed by {facts.signer}"

    # --- the rules between tags, judged every time ----------------------------------------------

    def _relations(self, ref: grammar.TagRef, own: Verdict) -> tuple[str | None, str]:
        """The rules between tags; for a stage tag, what became of its approvals and a note saying so."""
        self._counter(ref)
        if ref.parsed.cancel or ref.parsed.deprecated:
            return None, ""
        self._not_retired(ref)
        if ref.parsed.stage is None:
            return None, ""
        self._registered(ref, own.commit, own.version)
        self._order(ref, own)
        return self._approvals(ref, own)

    def _counter(self, ref: grammar.TagRef) -> None:
        name = ref.parsed.name
        if name not in self._counters:
            events = [r for r in self.of(name) if r.parsed.counter is not None and self.own(r).ok]
            self._counters[name] = counter_problems(events)
        problem = self._counters[name].get(ref.tag)
        if problem:
            raise _Refused("counter", problem)

    def _not_retired(self, ref: grammar.TagRef) -> None:
        for other in self.withdrawals(ref.parsed.name):
            if other.parsed.deprecated and _later(ref, other) and self.check(other.tag).ok:
                raise _Refused("retired", f"{ref.parsed.name} was retired by {other.tag} before this event: a "
                                          "retired name takes no new versions or stages")

    def _structure(self, ref: grammar.TagRef) -> TagObject:
        if ref.kind != "tag":
            raise _Refused("annotated", f"'{ref.tag}' is a lightweight tag (a bare ref to a {ref.kind}): "
                                        "registry tags must be annotated and signed; delete it and promote again")
        obj = TagObject.parse(self._blob(ref.oid) or b"")
        if obj.tag != ref.tag:
            raise _Refused("tag-name", f"the ref '{ref.tag}' points at the signed tag object of '{obj.tag}' "
                                       "(a re-pointed ref): the signature vouches for that name only")
        if obj.type != "commit":
            raise _Refused("target", f"'{ref.tag}' points at a {obj.type or 'missing object'}, not a commit")
        if ref.parsed.stage and ref.parsed.counter is None and not ref.parsed.cancel:
            raise _Refused("grammar", f"'{ref.tag}' has no counter: stage tags are name#stage#N, so their "
                                      "order does not rest on the date the signer wrote")
        return obj

    def _governing(self, name: str, commit: str) -> tuple[trusted.PolicyRules, ...]:
        params = trusted.params_path(name)
        labels = [trusted.pipeline_labels(self._blob(f"{rev}:{params}")) for rev in (commit, self.trust.commit)]
        policies = self.trust.governing(name, [ls for ls in labels if ls is not None] or [{}])
        if not policies:
            raise _Refused("policy", f"no policy at the trusted ref {self.trust.ref} governs '{name}': without "
                                     "one nobody may sign its tags; add a policy selecting it there first")
        if len({p.stages for p in policies}) > 1:
            raise _Refused("policy", f"policies {', '.join(p.name for p in policies)} at {self.trust.ref} list "
                                     f"different stages for '{name}': make them agree")
        return policies

    def _stage_rule(self, policies: tuple[trusted.PolicyRules, ...], stage: str) -> trusted.StageRule:
        if stage not in policies[0].stages:
            raise _Refused("policy", f"'{stage}' is not a stage of policy {policies[0].name} at "
                                     f"{self.trust.ref} (stages: {', '.join(policies[0].stages)})")
        return self.trust.stage_rule(policies, stage)

    def _signature(self, obj: TagObject, principals: frozenset[str] | None, stage: str | None) -> str:
        if not obj.signature:
            raise _Refused("signed", f"'{obj.tag}' is annotated but unsigned: registry tags are made with "
                                     "`modelops-ci promote` / `register`, which sign them")
        if obj.is_ssh:
            return self._ssh(obj, principals, stage)
        if obj.is_openpgp:
            return self._openpgp(obj, principals, stage)
        raise _Refused("signature", "x509 (gpgsm) signatures are not accepted: sign with SSH or GPG")

    def _evidence(self, ref: grammar.TagRef, obj: TagObject) -> ev.Evidence:
        try:
            claimed = ev.parse(obj.message)
        except ev.EvidenceError as exc:
            raise _Refused("evidence", f"{exc}: registry tags are made with `modelops-ci promote` / "
                                       "`register`, which write it") from None
        parsed = ref.parsed
        wanted = {"pipeline": parsed.name, "stage": parsed.stage,
                  **({"version": parsed.version} if parsed.version else {})}
        for key, value in wanted.items():
            if getattr(claimed, key) != value:
                raise _Refused("evidence", f"the evidence names {key} {getattr(claimed, key)!r}, the tag "
                                           f"'{ref.tag}' says {value!r}")
        if claimed.commit != obj.object:
            raise _Refused("target", f"the evidence is for commit {claimed.commit[:12]}, the tag points at "
                                     f"{obj.object[:12]}")
        actual = self._collect(parsed.name, obj.object)
        actual = replace(actual, version=claimed.version, stage=claimed.stage, pr=claimed.pr,
                         approvers=claimed.approvers, signoffs=claimed.signoffs)  # the signer's record
        actual = replace(actual, recomputed=claimed.recomputed)  # the signer's record, not in the commit
        if not claimed.sources:  # a tag made before the field existed: compared when present
            actual = replace(actual, sources={})
        if not claimed.family:
            actual = replace(actual, family={})
        if not claimed.decision:
            actual = replace(actual, decision={})
        differ = [f.name for f in fields(ev.Evidence) if getattr(actual, f.name) != getattr(claimed, f.name)]
        if differ:
            raise _Refused("digest", f"the evidence differs from commit {obj.object[:12]} in "
                                     f"{', '.join(differ)}: the tag does not describe what the commit holds")
        return claimed

    def _gates(self, name: str, commit: str, policies: tuple[trusted.PolicyRules, ...]) -> None:
        path = Layout(name).gates
        raw = self._blob(f"{commit}:{path}")
        required = sorted({kind for p in policies for kind in p.required_gates})
        if not raw:
            if required:
                raise _Refused("gates", f"no {path} at {commit[:12]}, and the trusted policy requires "
                                        f"{', '.join(required)}: run the gates and commit the report")
            return
        try:
            report = json.loads(raw)
        except ValueError:
            raise _Refused("gates", f"{path} at {commit[:12]} is not JSON: re-run the gates") from None
        if not isinstance(report, dict) or report.get("verdict") != "pass":
            report = report if isinstance(report, dict) else {}
            raise _Refused("gates", f"{path} at {commit[:12]}: verdict {report.get('verdict')!r} "
                                    f"({report.get('reason', 'no reason given')})")
        if isinstance(report.get("series"), list):
            self._family_gates(name, commit, report, policies, required)
            if required:
                self._thresholds(name, commit, raw, policies)
            return
        by_kind = {g.get("gate"): g for g in report.get("gates") or [] if isinstance(g, dict)}
        for kind in required:
            status = (by_kind.get(kind) or {}).get("status", "missing")
            if status not in ("pass", "warn"):
                raise _Refused("gates", f"the {kind} gate, required by the policy at {self.trust.ref}, is "
                                        f"{status} in {path} at {commit[:12]}")
        if required:
            self._thresholds(name, commit, raw, policies)

    def _family_gates(self, name: str, commit: str, report: dict[str, Any],
                      policies: tuple[trusted.PolicyRules, ...], required: list[str]) -> None:
        """A family passes when its series that failed, or lack a required gate's pass, are no more
        than every trusted policy's `family` rule allows (default: none), whatever its own policy said."""
        rows = [row for row in report["series"] if isinstance(row, dict)]
        failed = sorted(str(row.get("series")) for row in rows if not _series_passed(row, required))
        rules = [p.family for p in policies if p.family] or [{"max_failed": 0}]
        allowed = min(allowed_failures(rule, len(rows)) for rule in rules)
        if len(failed) > allowed:
            shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
            raise _Refused("gates", f"{len(failed)} of {len(rows)} series of {name} at {commit[:12]} failed or "
                                    f"lack a gate the policy at {self.trust.ref} requires "
                                    f"({', '.join(required) or 'none'}), at most {allowed} may: {shown}")

    def _thresholds(self, name: str, commit: str, report: bytes,
                    policies: tuple[trusted.PolicyRules, ...]) -> None:
        """The gates ran with settings at least as strict as the trusted policy's, so a commit that
        loosened a threshold in its own policy (and kept every gate) does not pass on it.

        The settings are those DVC recorded in the lock for the gates stage that wrote this very
        report (its md5 is checked): params.yaml alone could have been edited after the run.
        """
        from modelops_ci.transform import policies as policy_floor  # 12 ms only gated tags need

        layout = Layout(name)
        for policy, settings in itertools.product(policies, self._gate_settings(layout, commit, report)):
            floor = {kind: policy.gates[kind] for kind in policy.required_gates}
            for found in policy_floor.weakenings(settings, floor):
                raise _Refused("gates", f"the gates at {commit[:12]} ran with {found.path_text} = "
                                        f"{found.shown}, where policy '{policy.name}' at {self.trust.ref} "
                                        f"requires {found.requirement}: run the gates under that policy")

    def _gate_settings(self, layout: Layout, commit: str, report: bytes) -> list[dict[str, Any]]:
        """The gate settings the report was made with: one block, or each distinct one of a family's series."""
        lock = self._blob(f"{commit}:{layout.lock}") or b""
        try:
            recorded = ev.output_digests(ev.parse_lock(lock)).get(layout.gates)
            stage = _lock_stage(lock, "gates")
            batch = (ev.parse_lock(lock).get("stages") or {}).get(series.BATCH_STAGE) or {}  # md5s as text
        except yaml.YAMLError:
            recorded, stage, batch = None, {}, {}
        if recorded != hashlib.md5(report, usedforsecurity=False).hexdigest():
            raise _Refused("gates", f"{layout.gates} at {commit[:12]} is not the report {layout.lock} "
                                    "records for the gates stage: re-run the gates and commit both")
        if batch and not stage:
            return self._family_settings(layout, commit, batch)
        params = (stage.get("params") or {}).get(layout.params) or {}
        settings = params.get("gates") if isinstance(params, dict) else None
        if not isinstance(settings, dict):
            raise _Refused("gates", f"{layout.lock} at {commit[:12]} records no gate settings for the "
                                    "gates stage: re-run the gates and commit the lock")
        return [settings]

    def _family_settings(self, layout: Layout, commit: str, stage: dict[str, Any]) -> list[dict[str, Any]]:
        """Each distinct `gates` block of a family's series, from the params.yaml and series.yaml the
        batch stage ran with (their md5 as the lock records them): a series may not run weaker gates
        than the rest."""
        recorded = {str(d.get("path")): str(d.get("md5")) for d in stage.get("deps") or [] if isinstance(d, dict)}
        blobs = {}
        for path in (layout.params, layout.series_table):
            blobs[path] = self._blob(f"{commit}:{path}") or b""
            if recorded.get(path) != hashlib.md5(blobs[path], usedforsecurity=False).hexdigest():
                raise _Refused("gates", f"{path} at {commit[:12]} is not the file {layout.lock} records "
                                        "for the batch stage: re-run the family and commit both")
        params = load_family(blobs[layout.params], blobs[layout.series_table])
        distinct = {json.dumps(series_params(params, name).get("gates") or {}, sort_keys=True)
                    for name in params.get(SERIES) or {}}
        return [json.loads(text) for text in sorted(distinct)]

    def _registered(self, ref: grammar.TagRef, commit: str, version: str) -> None:
        try:
            version_tag = grammar.version_tag(ref.parsed.name, version)
        except UserError:
            raise _Refused("registered", f"the evidence names version {version!r}, not vX.Y.Z") from None
        if version_tag not in self.refs:
            raise _Refused("registered", f"{version} of {ref.parsed.name} is not registered (no tag "
                                         f"{version_tag}): `modelops-ci register` it first")
        registration = self.check(version_tag)
        if not registration.ok:
            raise _Refused("registered", f"{version_tag} does not verify ([{registration.rule}] "
                                         f"{registration.reason})")
        if registration.commit != commit:
            raise _Refused("registered", f"{version_tag} is commit {registration.commit[:12]}, "
                                         f"this tag points at {commit[:12]}")
        for other in self.withdrawals(ref.parsed.name):
            p = other.parsed
            deregistered = p.version == version and p.cancel and _before(p.counter, ref.parsed.counter)
            if deregistered and self.check(other.tag).ok:
                raise _Refused("registered", f"{version} was deregistered by {other.tag}")

    def _order(self, ref: grammar.TagRef, own: Verdict) -> None:
        stages, stage = own.stages, str(ref.parsed.stage)
        commit, version = own.commit, own.version
        if stages.index(stage) == 0:
            return
        previous = stages[stages.index(stage) - 1]
        holder, skipped = self._holder(ref.parsed, previous)
        if holder is not None and holder.commit == commit and holder.version == version:
            return
        held = f"it held {holder.version or holder.commit[:12]}" if holder else "nothing held it"
        note = f"; {skipped.tag} does not verify ([{skipped.rule}] {skipped.reason})" if skipped else ""
        raise _Refused("stage-order", f"{stage} needs {previous} first: when {ref.tag} was made {held}"
                                      f"{note}; promote {version} to {previous} first")

    def _holder(self, tag: grammar.RegistryTag, stage: str) -> tuple[VerifyResult | None, VerifyResult | None]:
        """Who held `stage` just before `tag`'s N, replaying only verified tags, latest first."""
        events = sorted((r for r in self.of(tag.name) if r.parsed.counter is not None
                         and (r.parsed.stage == stage or r.parsed.deprecated)
                         and _before(r.parsed.counter, tag.counter)),
                        key=lambda r: r.parsed.counter or 0, reverse=True)
        cancelled: set[str] = set()
        skipped = None
        for event in events:
            result = self.check(event.tag)
            if not result.ok:
                skipped = skipped or result
                continue
            if event.parsed.deprecated:
                return None, skipped
            if event.parsed.cancel:
                cancelled.add(result.commit)
                continue
            return (None if result.commit in cancelled else result), skipped
        return None, skipped

    def _approvals(self, ref: grammar.TagRef, own: Verdict) -> tuple[str, str]:
        """(status, note): see VerifyResult.approvals. A skipped check is said, with what it skipped."""
        name, stage = ref.parsed.name, str(ref.parsed.stage)
        rule = self.trust.stage_rule(self._governing(name, own.commit), stage)
        warned = ev.warned_gates(self._blob(f"{own.commit}:{Layout(name).gates}"))
        signoff = sorted(warned.intersection(rule.signoff))
        needed = bool(rule.approvals or signoff)
        if self.approvals == SKIP or (self.approvals is None and not needed):
            if not needed:
                return "not-required", "no approvals required"
            return "skipped", (f"approvals skipped: {_needs(rule.approvals, signoff)} required on the promotion PR, "
                               "not checked")
        if self.approvals is None:
            raise _Refused("approvals" if rule.approvals else "signoff",
                           f"{stage} requires {_needs(rule.approvals, signoff)} on the promotion PR, and no "
                           "approvals check was given: verify with GitHub access", approvals="unavailable")
        claimed = ev.parse(TagObject.parse(self._blob(ref.oid) or b"").message)  # checked by `own`
        ok, refused, reason = self.approvals(name, stage, claimed, warned)  # judges every stage it is given
        if not ok:
            status = "unavailable" if refused == UNAVAILABLE else "refused"
            raise _Refused(refused or "approvals", reason, approvals=status)
        if not needed:
            return "not-required", "no approvals required"
        return "checked", f"approvals: {reason}"

    # --- SSH ----------------------------------------------------------------------------------

    def _ssh(self, obj: TagObject, principals: frozenset[str] | None, stage: str | None) -> str:
        if self.trust.signers is None:
            raise _Refused("trust", f"no {trusted.ALLOWED_SIGNERS} at the trusted ref {self.trust.ref}: "
                                    "nobody may sign; commit one there")
        signature = self._write(obj.signature)
        allowed = self._write(self.trust.allowed_signers(principals).encode())
        found = self._keygen("find-principals", "-s", signature, "-f", allowed)
        candidates = found.stdout.decode().replace(",", "\n").split() if found.returncode == 0 else []
        refusal = ""
        for principal in candidates:
            if principals is None or principal in principals:
                done = self._keygen("verify", "-f", allowed, "-I", principal, "-n", "git", "-s", signature,
                                    stdin=obj.payload)
                if done.returncode == 0:
                    return principal
                refusal = done.stderr.decode().strip() or f"exit status {done.returncode}"
                break
        raise self._ssh_diagnosis(obj, signature, principals, stage, refusal)

    def _ssh_diagnosis(self, obj: TagObject, signature: str, principals: frozenset[str] | None,
                       stage: str | None, refusal: str) -> _Refused:
        """Why no allowed principal verified the signature (the refusal is already decided)."""
        sound = self._keygen("check-novalidate", "-n", "git", "-s", signature, stdin=obj.payload)
        if sound.returncode != 0:
            return _Refused("signature", f"the signature of '{obj.tag}' does not match its content: the tag "
                                         "was changed after signing, or signed for another use than git")
        if refusal:
            return _Refused("signature", f"ssh-keygen refused the signature: {refusal}")
        key = next((w for w in sound.stdout.decode().split() if w.startswith("SHA256:")), "the key")
        valid = self._keygen("find-principals", "-s", signature, "-f",
                             self._write(self.trust.allowed_signers(None).encode()))
        if valid.returncode == 0:
            who = ", ".join(valid.stdout.decode().split())
            return _Refused("signer-stage", f"signed by {who}, who may not sign {_what(stage)}: the policy "
                                            f"at {self.trust.ref} allows {_names(principals)}")
        anytime = self._keygen("find-principals", "-s", signature, "-f",
                               self._write(self.trust.allowed_signers(None, validity=False).encode()))
        if anytime.returncode == 0:
            who = ", ".join(anytime.stdout.decode().split())
            return _Refused("signer-expired", f"the key of {who} ({key}) is not valid now (valid-after/"
                                              f"valid-before in {trusted.ALLOWED_SIGNERS} at {self.trust.ref}), "
                                              "whatever date the tag claims")
        return _Refused("signer-unknown", f"signed by {key}, which is not in {trusted.ALLOWED_SIGNERS} at the "
                                          f"trusted ref {self.trust.ref}")

    def _keygen(self, action: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        at = self.now if action in ("find-principals", "verify") else None  # now, never the tagger date
        return signatures.ssh_keygen(action, *args, stdin=stdin, verify_time=at)

    # --- GPG ----------------------------------------------------------------------------------

    def _openpgp(self, obj: TagObject, principals: frozenset[str] | None, stage: str | None) -> str:
        if not self.trust.gpg_keys:
            raise _Refused("trust", f"a GPG signature, and no {trusted.GPG_KEYS}<principal>.asc at the trusted "
                                    f"ref {self.trust.ref}: commit the signers' public keys there")
        home, owners = self._gpg_home()
        done = signatures.gpg(home, "--trust-model", "always", "--status-fd", "1", "--verify",
                              self._write(obj.signature), self._write(obj.payload))
        status = signatures.gpg_status(done.stdout)
        if done.returncode == 0 and "GOODSIG" in status and "VALIDSIG" in status and not _GPG_BAD & set(status):
            valid = status["VALIDSIG"]
            owner = owners.get(valid[9] if len(valid) > 9 else valid[0], frozenset())
            allowed = sorted(owner if principals is None else owner & principals)
            if allowed:
                return allowed[0]
            raise _Refused("signer-stage", f"signed by {', '.join(sorted(owner))}, who may not sign "
                                           f"{_what(stage)}: the policy at {self.trust.ref} allows "
                                           f"{_names(principals)}")
        if {"EXPKEYSIG", "REVKEYSIG", "EXPSIG"} & set(status):
            raise _Refused("signer-expired", "the GPG key (or signature) has expired or been revoked")
        if "BADSIG" in status or "ERRSIG" not in status:
            raise _Refused("signature", f"the GPG signature of '{obj.tag}' does not match its content")
        raise _Refused("signer-unknown", f"signed by GPG key {status['ERRSIG'][0]}, which is not under "
                                         f"{trusted.GPG_KEYS} at the trusted ref {self.trust.ref}")

    def _gpg_home(self) -> tuple[Path, dict[str, frozenset[str]]]:
        """A keyring of the trusted GPG keys, and which principals each primary fingerprint is."""
        if self._gpg is None:
            home = self.scratch / "gnupg"
            home.mkdir(mode=0o700)
            owners: dict[str, set[str]] = {}
            for principal, keys in self.trust.gpg_keys.items():
                path = self._write(keys)
                shown = signatures.gpg(home, "--with-colons", "--import-options", "show-only", "--import", path)
                for fingerprint in signatures.primary_fingerprints(shown.stdout.decode()):
                    owners.setdefault(fingerprint, set()).add(principal)
                signatures.gpg(home, "--import", path)
            self._gpg = home, {k: frozenset(v) for k, v in owners.items()}
        return self._gpg

    # --- reading --------------------------------------------------------------------------------

    def _prefetch(self, name: str, commit: str) -> None:
        """Read what the rules will need of this commit and the trusted ref in one git call."""
        wanted = self._needed(name, commit)
        self._blobs.update(git.cat_files(self.root, [w for w in wanted if w not in self._blobs]))

    def _needed(self, name: str, commit: str) -> list[str]:
        if not commit:
            return []
        return [f"{commit}:{trusted.params_path(name)}", f"{self.trust.commit}:{trusted.params_path(name)}",
                f"{commit}:{Layout(name).gates}", f"{commit}:{Layout(name).lock}"]

    def _blob(self, name: str) -> bytes | None:
        if name not in self._blobs:
            self._blobs.update(git.cat_files(self.root, [name]))
        return self._blobs[name]

    def _collect(self, name: str, commit: str) -> ev.Evidence:
        key = (name, commit)
        if key not in self._collected:
            try:
                self._collected[key] = ev.collect(self.root, name, commit, version="")
            except ev.EvidenceError as exc:
                self._collected[key] = exc
            except (ValueError, AttributeError, yaml.YAMLError) as exc:  # a committed file not as it should be
                self._collected[key] = ev.EvidenceError(f"unreadable report or lock file ({exc})")
        found = self._collected[key]
        if isinstance(found, ev.EvidenceError):
            raise _Refused("digest", f"cannot recompute the evidence at {commit[:12]}: {found}")
        return found

    def _write(self, content: bytes) -> str:
        self._files += 1
        path = self.scratch / f"{self._files}"
        path.write_bytes(content)
        return str(path)


@contextmanager
def session(root: Path, *, names: list[str] | None = None, trust_ref: str | None = None,
            approvals: Approvals = None) -> Iterator[Verifier]:
    """A verifier of the registry tags of `names` (default: all) against the trusted ref, with a
    private scratch folder; the verdicts it made are remembered when it closes."""
    scan = grammar.scan(root, names=names or ())
    trust = trusted.load(root, trust_ref)
    cache = VerdictCache.open(root)
    with tempfile.TemporaryDirectory(prefix="modelops-verify-") as folder:
        verifier = Verifier(root, trust, approvals, {r.tag: r for r in scan.refs}, scan.malformed, Path(folder),
                            cache)
        verifier.warm()
        yield verifier
    cache.save()


def counter_problems(events: list[grammar.TagRef]) -> dict[str, str]:
    """Why each event of one name breaks the counter rule: its N is shared, or lower than the N of
    an event made before it (by the signed tagger date). `events` are the name's events with N
    whose own rules hold, so an unsigned tag can neither take an N nor push others out."""
    problems: dict[str, str] = {}
    by_counter: dict[int, list[grammar.TagRef]] = {}
    for event in events:
        by_counter.setdefault(int(event.parsed.counter or 0), []).append(event)
    for counter, same in by_counter.items():
        for event in same if len(same) > 1 else ():
            others = ", ".join(o.tag for o in same if o is not event)
            problems[event.tag] = (f"N={counter} is also used by {others}: each event of a name has its own N, "
                                   "so which came first cannot be told; remove the later one and promote again")
    highest: grammar.TagRef | None = None
    for _, group in itertools.groupby(sorted(events, key=lambda e: e.date), key=lambda e: e.date):
        made = list(group)
        for event in made:
            if highest is not None and int(event.parsed.counter or 0) < int(highest.parsed.counter or 0):
                problems.setdefault(event.tag, f"made after {highest.tag} yet numbered {event.parsed.counter}: "
                                               "each new event's N must exceed every earlier one's (promote "
                                               "takes the next N)")
        highest = max([*made, *([highest] if highest else [])], key=lambda e: int(e.parsed.counter or 0))
    return problems


def signers_valid_until(trust: trusted.Trust, now: float) -> float | None:
    """The earliest future `valid-before` in the trusted allowed_signers (None: no key lapses): an
    accepted verdict is not remembered past it. A time that cannot be read lapses at once."""
    ends = [trusted.signer_time(option) for line in trust.signers or () for option in line.options
            if option.lower().startswith("valid-before=")]
    future = [end if end is not None else now for end in ends if end is None or end > now]
    return min(future, default=None)


def check_series(root: Path, result: VerifyResult, only: str | None = None) -> VerifyResult:
    """`result` (a tag that passed every other rule) with its family's series models re-checked
    against its evidence (`only`: one series); unchanged for a tag that is not a family's."""
    if not result.ok:
        return result
    raw = git.run("cat-file", "tag", f"refs/tags/{result.tag}", cwd=root, check=False).stdout
    try:
        claimed = ev.parse(TagObject.parse(raw.encode()).message)
    except ev.EvidenceError:
        return result
    if not claimed.family:
        if only:
            raise UserError(f"{result.tag} is not a batched family's tag: --series applies to families only")
        return result
    try:
        checked = series.check_models(root, claimed.pipeline, claimed.commit, claimed.family, only=only)
    except series.SeriesFileError as exc:
        return replace(result, ok=False, rule="series-model", reason=str(exc), models="refused")
    return replace(result, reason=f"{result.reason}; {checked.reason}", models=checked.status)


def _series_passed(row: dict[str, Any], required: list[str]) -> bool:
    statuses = {str(g.get("gate")): g.get("status") for g in row.get("gates") or [] if isinstance(g, dict)}
    return row.get("verdict") == "pass" and all(statuses.get(kind) in ("pass", "warn") for kind in required)


def _later(event: grammar.TagRef, other: grammar.TagRef) -> bool:
    """Whether `event` came after `other`: by N when both have one, else by the signed tagger date."""
    if event.parsed.counter is not None and other.parsed.counter is not None:
        return event.parsed.counter > other.parsed.counter
    return event.date > other.date


def _lock_stage(lock: bytes, name: str) -> dict[str, Any]:
    """A stage's entry in a compiled dvc.lock with typed values (the gates' thresholds are numbers)."""
    loaded = yaml.safe_load(lock) if lock else None
    stages = loaded.get("stages") if isinstance(loaded, dict) else None
    stage = stages.get(name) if isinstance(stages, dict) else None
    return stage if isinstance(stage, dict) else {}


def _before(counter: int | None, limit: int | None) -> bool:
    """Whether an event numbered `counter` came before one numbered `limit` (unnumbered: always)."""
    return counter is None or limit is None or counter < limit


def _needs(approvals: int, signoff: list[str]) -> str:
    """What a promotion PR must hold, in words: "1 approval(s), a fairness sign-off (the gate warned)"."""
    parts = [f"{approvals} approval(s)"] if approvals else []
    parts += [f"a {kind} sign-off (the gate warned)" for kind in signoff]
    return ", ".join(parts)


def _what(stage: str | None) -> str:
    return f"the {stage} stage" if stage else "registrations"


def _names(principals: frozenset[str] | None) -> str:
    return ", ".join(sorted(principals)) if principals else "nobody"
