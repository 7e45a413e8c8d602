"""Remembered verdicts of the rules that depend on one tag alone, so reading verified state stays fast.

A tag's own rules (structure, signature, signer, evidence, gates) depend only on the tag object
(its id covers the message, the signature and the commit, whose content is immutable), on the
trust roots (allowed signers, GPG keys and policies at the trusted ref, and the pipeline's labels
there) and on this code. The key is all of them, so a change of any one re-verifies. The rules
that relate tags to each other (counters, registration, stage order) and the approvals are never
remembered: they are recomputed from the remembered verdicts every time, which costs no process.

Time is the one input a key cannot hold: an accepted verdict lapses at the earliest future
`valid-before` in the trusted allowed_signers, and verdicts that rest on the clock (an expired
key) or on a keyring whose expiry lives inside the keys (GPG) are not remembered at all.

The file lives in the repository's git directory, which only the local user can write: whoever can
write it can also rewrite the hooks and the tool itself, so it adds no one to the trusted.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelops_ci import git
from modelops_ci.fsutil import write_atomic

FILE = "modelops/verified-tags.json"
FORMAT = 1
# Refusals that a later fetch or clock can change (missing objects in a shallow clone, an expired
# key) are checked again; the others are as final as the tag object they judge.
STABLE_REFUSALS = frozenset({"annotated", "tag-name", "target", "grammar", "signed", "signature", "trust",
                             "policy", "signer-unknown", "signer-stage", "evidence"})
_CODE = ("verify.py", "trust.py", "evidence.py", "tags.py", "verdict_cache.py")


@dataclass(frozen=True)
class Verdict:
    """What a tag's own rules decided, and what the rules between tags need to know of it."""

    ok: bool
    rule: str
    reason: str
    signer: str
    commit: str
    version: str
    stages: tuple[str, ...]  # the governing policies' stages, for the stage-order rule
    until: float | None = None  # unix time after which an accepted verdict must be checked again

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["stages"] = list(self.stages)
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Verdict:
        return cls(**{**payload, "stages": tuple(payload["stages"])})


class VerdictCache:
    """The remembered verdicts of one repository, read once and written back once."""

    def __init__(self, path: Path | None, entries: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self._entries = entries
        self._changed = False

    @classmethod
    def open(cls, root: Path) -> VerdictCache:
        """The cache of the repository at `root` (empty, and never written, outside a git directory)."""
        folder = root / ".git"
        if not folder.is_dir():  # a worktree's .git is a file, a submodule's too: ask git
            done = git.run("rev-parse", "--git-common-dir", cwd=root, check=False)
            if done.returncode != 0:
                return cls(None, {})
            folder = root / done.stdout.strip()
        path = (folder / FILE).resolve()
        return cls(path, _read(path))

    def get(self, key: str, now: float) -> Verdict | None:
        raw = self._entries.get(key)
        if raw is None:
            return None
        try:
            verdict = Verdict.from_json(raw)
        except (TypeError, KeyError):
            return None
        if verdict.until is not None and now >= verdict.until:
            return None
        return verdict

    def knows(self, key: str) -> bool:
        """Whether a verdict is remembered under `key` (it may still have lapsed: see `get`)."""
        return key in self._entries

    def put(self, key: str, verdict: Verdict) -> None:
        if verdict.ok or verdict.rule in STABLE_REFUSALS:
            self._entries[key] = verdict.to_json()
            self._changed = True

    def save(self) -> None:
        """Write the verdicts back if any is new; a cache that cannot be written is only slower."""
        if self.path is None or not self._changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps({"format": FORMAT, "verdicts": self._entries}))
        except OSError:
            return
        self._changed = False


@functools.cache
def code_digest() -> str:
    """sha256 of the modules whose rules a remembered verdict applied: new rules, new verdicts."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _CODE:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.hexdigest()


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
        return {}
    verdicts = loaded.get("verdicts")
    return verdicts if isinstance(verdicts, dict) else {}
