"""The registry's state as the verified tags alone make it: the one reader every decision uses.

Anyone can create a tag in a clone, so a tag that `verify` refuses (offline rules: structure,
signature, signer, evidence, gates, counter, registration, stage order) changes nothing here: it
is listed in `refused` for whoever shows the registry, and the stages are replayed (GTO's
semantics, see tags.state) from the tags that verify. The champion of the compare gate, what
`monitor` watches, the MLflow aliases, `audit` and the deployment readers to come all read this.
Approvals need GitHub and are checked where a promotion is made and pushed, not by readers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from modelops_ci.registry import tags
from modelops_ci.registry import verify as verifier
from modelops_ci.registry.trust import TrustError


@dataclass(frozen=True)
class VerifiedRegistry:
    """Every name's state from its verified tags, and the tags that do not verify, with why."""

    artifacts: dict[str, tags.Artifact]
    refs: dict[str, tags.TagRef]  # the verified tags
    refused: tuple[verifier.VerifyResult, ...] = ()
    trust_ref: str = ""
    untrusted: str = ""  # why nothing could be verified (no trusted ref), else ""
    results: dict[str, verifier.VerifyResult] = field(default_factory=dict)

    def champion(self, name: str, stage: str) -> tags.Champion | None:
        """The verified holder of `name`'s `stage`, or None."""
        artifact = self.artifacts.get(name)
        return artifact.stages.get(stage) if artifact else None

    def refused_of(self, name: str, stage: str | None = None) -> list[verifier.VerifyResult]:
        """The tags of `name` (of `stage`, if given) that do not verify (shown, never counted)."""
        found = []
        for result in self.refused:
            parsed = tags.parse(result.tag)
            if parsed is not None and parsed.name == name and stage in (None, parsed.stage):
                found.append(result)
        return found

    def refusal_note(self, name: str, stage: str | None = None, limit: int = 3) -> str:
        """`tag [rule]; ...` for those tags, for a message that says why nothing holds a stage ('' if none)."""
        refused = self.refused_of(name, stage)
        shown = "; ".join(f"{r.tag} [{r.rule}]" for r in refused[:limit])
        more = f" and {len(refused) - limit} more" if len(refused) > limit else ""
        return f"{shown}{more}"

    def names(self) -> list[str]:
        """Every name with a tag, verified or not (sorted)."""
        refused = {p.name for r in self.refused if (p := tags.parse(r.tag)) is not None}
        return sorted(set(self.artifacts) | refused)


def read(root: Path, names: Iterable[str] = (), *, trust_ref: str | None = None) -> VerifiedRegistry:
    """The verified registry of the repository at `root` (of `names` only, if given).

    No trusted ref (a new repository) is not an error: no tag can verify, so the state is empty
    and `untrusted` says why.
    """
    wanted = list(names)
    try:
        with verifier.session(root, names=wanted, trust_ref=trust_ref, approvals=verifier.SKIP) as session:
            results = session.check_all()
            malformed = session.malformed_results()
            return _registry(session.refs, results, malformed, session.trust.ref)
    except TrustError as exc:
        return _untrusted(root, wanted, str(exc))


def champion(root: Path, name: str, stage: str, *, trust_ref: str | None = None
             ) -> tuple[tags.Champion | None, VerifiedRegistry]:
    """The verified holder of `name`'s `stage` (None when no verified tag gives it one), and the
    registry it was read from, so a caller can say which tags of the name were refused."""
    registry = read(root, [name], trust_ref=trust_ref)
    return registry.champion(name, stage), registry


def _registry(refs: dict[str, tags.TagRef], results: dict[str, verifier.VerifyResult],
              malformed: list[verifier.VerifyResult], trust_ref: str) -> VerifiedRegistry:
    verified = {tag: ref for tag, ref in refs.items() if results[tag].ok}
    refused = tuple([*(r for r in results.values() if not r.ok), *malformed])
    return VerifiedRegistry(tags.state(verified.values()), verified, refused, trust_ref, results=results)


def _untrusted(root: Path, names: list[str], why: str) -> VerifiedRegistry:
    scan = tags.scan(root, names=names)
    refused = tuple(verifier.VerifyResult(r.tag, False, "trust", why, commit=r.commit) for r in scan.refs)
    return VerifiedRegistry({}, {}, refused, untrusted=why)
