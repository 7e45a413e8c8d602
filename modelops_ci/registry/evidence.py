"""The evidence block a registry tag carries, and how it is read back.

A tag message is a human title, a blank line, then one machine-readable block:

    ---modelops-evidence v1---
    {canonical JSON, keys sorted}
    ---end modelops-evidence---

Everything in the block can be recomputed from a clone at the tagged commit (`collect`), so
`verify` compares what the tag claims with what the commit holds. `recomputed` says the signer
re-ran the gates at the commit (registry/recompute.py) rather than believing the committed report.

`sources` carries the lineage past the derived files to the raw source: a file's md5 as DVC records
it among the ingest stage's deps, a packaged dataset's package, version and file digest as ingest
records them in profile.json. Tags made before a field existed leave it out and still verify: a
field added later is compared only when the tag carries it.

A decision model (task: optimize) adds `decision`: its card's formulation with the digest of its
code or file, the solver and its version, and the scenario set's digest (models/<p>/formulation.json,
which git keeps). A batched family (one version for many series) adds `family` (registry/series.py): every series'
model sha256 and verdict, as a canonical list listed in the tag up to `series.INLINE_SERIES` series
and always committed to by its digest, the family's output folders and its params digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.layout import Layout

BEGIN = "---modelops-evidence v1---"
END = "---end modelops-evidence---"
_BLOCK = re.compile(re.escape(BEGIN) + r"\n(?P<body>.*?)\n" + re.escape(END), re.DOTALL)
POLICY_FILES = ("policies/",)
# left out when empty: absent from tags made before them
LATER_FIELDS = ("recomputed", "sources", "signoffs", "family", "decision")


class EvidenceError(UserError):
    """The evidence cannot be collected or read."""


@dataclass(frozen=True)
class Evidence:
    """What a tag claims about the model it names."""

    pipeline: str
    version: str
    commit: str
    stage: str | None = None  # None for a version (registration) tag
    data: dict[str, str] = field(default_factory=dict)  # path -> DVC md5, from dvc.lock
    model: dict[str, str] = field(default_factory=dict)  # path -> DVC md5, from dvc.lock
    sources: dict[str, dict[str, str]] = field(default_factory=dict)  # raw source -> what identifies it
    metrics: dict[str, Any] = field(default_factory=dict)
    gates_digest: str = ""  # sha256 of reports/<p>/gates.json at the commit
    verdict: str = ""  # that file's verdict
    policy_digest: str = ""  # sha256 over policies/* at the commit
    pr: int | None = None
    approvers: tuple[str, ...] = ()
    signoffs: dict[str, list[str]] = field(default_factory=dict)  # gate kind -> who signed off its warning
    recomputed: bool = False  # the signing job re-ran the gates at the commit and got this report
    family: dict[str, Any] = field(default_factory=dict)  # a batched family's series (registry/series.py)
    decision: dict[str, Any] = field(default_factory=dict)  # a decision model's formulation, solver, scenario set

    def to_json(self) -> str:
        payload = asdict(self)
        payload["approvers"] = list(self.approvers)
        for optional in LATER_FIELDS:
            if not payload[optional]:
                del payload[optional]  # tags made before the field existed read back the same
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def message(title: str, evidence: Evidence) -> str:
    """The full tag message: title, blank line, evidence block."""
    return f"{title}\n\n{BEGIN}\n{evidence.to_json()}\n{END}\n"


def parse(text: str) -> Evidence:
    """The evidence in a tag message; EvidenceError when there is none or it is malformed."""
    found = _BLOCK.search(text)
    if not found:
        raise EvidenceError("the tag message has no modelops evidence block")
    try:
        payload = json.loads(found.group("body"))
        payload["approvers"] = tuple(payload.get("approvers") or ())
        return Evidence(**payload)
    except (ValueError, TypeError) as exc:
        raise EvidenceError(f"the evidence block is malformed ({exc})") from None


def collect(root: Path, pipeline: str, commit: str, *, version: str, stage: str | None = None,
            pr: int | None = None, approvers: tuple[str, ...] = (),
            signoffs: dict[str, list[str]] | None = None) -> Evidence:
    """The evidence for `pipeline` as committed at `commit` (read from git, not the work tree)."""
    files = Layout(pipeline)
    lock = _yaml_at(root, commit, files.lock)
    outs = output_digests(lock)
    data = {p: h for p, h in outs.items() if p.startswith("data/")}
    model = {p: h for p, h in outs.items() if p.startswith("models/")}
    if not model:
        raise EvidenceError(f"{files.lock} at {commit[:12]} records no model: run and commit the pipeline first")
    gates = git.show_file(root, commit, files.gates) or b""
    metrics = json.loads(git.show_file(root, commit, files.metrics) or b"{}")
    sources = {**file_sources(lock), **packaged_sources(git.show_file(root, commit, files.profile))}
    family = _family(root, pipeline, commit, lock, gates)
    if family:
        from modelops_ci.registry import series

        sources = family_sources(lock, series.compiled_at(root, commit, pipeline)[1])
    return Evidence(
        pipeline=pipeline, version=version, commit=commit, stage=stage, data=data, model=model, sources=sources,
        metrics=metrics, gates_digest=hashlib.sha256(gates).hexdigest() if gates else "",
        verdict=str(json.loads(gates).get("verdict", "")) if gates else "",
        policy_digest=policy_digest(root, commit), pr=pr, approvers=tuple(approvers), signoffs=dict(signoffs or {}),
        family=family, decision=decision_claim(git.show_file(root, commit, files.formulation)),
    )


def _family(root: Path, pipeline: str, commit: str, lock: dict[str, Any], gates: bytes) -> dict[str, Any]:
    """The family block when `pipeline` is a batched family at `commit` (its lock has the batch stage)."""
    from modelops_ci.registry import series

    if series.BATCH_STAGE not in (lock.get("stages") or {}):
        return {}
    compiled, _ = series.compiled_at(root, commit, pipeline)
    return series.claim(pipeline, lock, gates, compiled)


def decision_claim(card: bytes | None) -> dict[str, Any]:
    """What a decision model's card (models/<p>/formulation.json, kept in git) says it is: the
    formulation with its code or file digest, the solver and its version, the scenario set's digest."""
    loaded = json.loads(card) if card else {}
    if not isinstance(loaded, dict):
        raise EvidenceError("the decision model's card is not a JSON object: re-run its build stage")
    return {key: loaded[key] for key in ("formulation", "solver", "scenarios") if key in loaded}


def warned_gates(report: bytes | None) -> frozenset[str]:
    """The gate kinds a committed gates.json shows as `warn` (what a sign-off acknowledges)."""
    try:
        loaded = json.loads(report) if report else {}
    except ValueError:
        return frozenset()
    gates = loaded.get("gates") if isinstance(loaded, dict) else None
    return frozenset(str(g.get("gate")) for g in gates or [] if isinstance(g, dict) and g.get("status") == "warn")


def policy_digest(root: Path, commit: str) -> str:
    """sha256 over every file under policies/ at `commit` (path and content, in path order)."""
    listing = git.run("ls-tree", "-r", "--full-tree", commit, "--", *POLICY_FILES, cwd=root).stdout
    digest = hashlib.sha256()
    for line in sorted(listing.splitlines()):
        meta, _, path = line.partition("\t")
        digest.update(path.encode() + b"\0" + meta.split()[2].encode() + b"\n")  # blob id covers content
    return digest.hexdigest()


def output_digests(lock: dict[str, Any]) -> dict[str, str]:
    """Each output path a parsed dvc.lock records, with its md5."""
    found: dict[str, str] = {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if "md5" in out:
                found[str(out["path"])] = str(out["md5"])
    return dict(sorted(found.items()))


def file_sources(lock: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each source file the ingest stage read (its `data.source` paths, as the lock records its
    params), with the md5 DVC recorded for it among the stage's deps."""
    ingest = (lock.get("stages") or {}).get("ingest") or {}
    digests = {str(d.get("path")): str(d["md5"]) for d in ingest.get("deps") or [] if "md5" in d}
    return {path: {"md5": digests[path]} for path in _source_paths(ingest) if path in digests}


def family_sources(lock: dict[str, Any], params: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each source file a batched family's series read (`data.source` in its compiled params, shared or
    a series' own), with the md5 DVC recorded for it among the batch stage's deps."""
    from modelops_ci.registry import series

    batch = (lock.get("stages") or {}).get(series.BATCH_STAGE) or {}
    digests = {str(d.get("path")): str(d["md5"]) for d in batch.get("deps") or [] if "md5" in d}
    paths = series.source_paths(params)
    return {path: {"md5": digests[path]} for path in paths if path in digests}


def _source_paths(ingest: dict[str, Any]) -> list[str]:
    """The `path` of each `data.source` entry in a lock stage's params (keyed `data` or `data.source`)."""
    found: list[str] = []
    for params in (ingest.get("params") or {}).values():
        source = params.get("data.source") or (params.get("data") or {}).get("source") or []
        items = source if isinstance(source, list) else [source]
        found += [str(item["path"]) for item in items if isinstance(item, dict) and "path" in item]
    return found


def packaged_sources(profile: bytes | None) -> dict[str, dict[str, str]]:
    """The packaged datasets ingest recorded in profile.json (steps/sources.py), by `rdataset NAME`."""
    loaded = json.loads(profile) if profile else {}
    records = loaded.get("sources") if isinstance(loaded, dict) else None
    return {f"rdataset {r['rdataset']}": {k: str(v) for k, v in r.items() if k != "rdataset"}
            for r in records or [] if isinstance(r, dict) and "rdataset" in r}


def _yaml_at(root: Path, commit: str, relative: str) -> dict[str, Any]:
    raw = git.show_file(root, commit, relative)
    if not raw:
        raise EvidenceError(f"{relative} is not in commit {commit[:12]}: run the pipeline and commit dvc.lock")
    return parse_lock(raw)


def parse_lock(raw: bytes) -> dict[str, Any]:
    """A dvc.lock with every scalar as the text DVC wrote: an md5 of digits must not become a number.

    Raises yaml.YAMLError on text that is not YAML.
    """
    loaded = yaml.load(raw, Loader=yaml.BaseLoader) or {}  # noqa: S506 - BaseLoader builds only str/list/dict
    return loaded if isinstance(loaded, dict) else {}
