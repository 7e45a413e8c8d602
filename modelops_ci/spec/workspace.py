"""A ModelOps repository on disk: find its specs and policies, load, resolve and govern them.

This is the shared front half of `validate` and `compile`; it reports every problem of every
file rather than stopping at the first.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelops_ci.errors import Problem, SpecError, UserError
from modelops_ci.spec.deployment import DEPLOYMENTS_DIR, Deployment
from modelops_ci.spec.deployment import parse as parse_deployment
from modelops_ci.spec.model import Document, Pipeline, Policy
from modelops_ci.spec.resolve import Resolver, read_document
from modelops_ci.transform.policies import Governed, govern, read_policy

PIPELINES_DIR = "pipelines"
POLICIES_DIR = "policies"
_HOME = {"Pipeline": PIPELINES_DIR, "PipelineTemplate": PIPELINES_DIR, "Policy": POLICIES_DIR,
         "Deployment": DEPLOYMENTS_DIR}


@dataclass
class Workspace:
    """Everything read from a repository, good and bad."""

    root: Path
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    governed: list[Governed] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)  # warnings found while reading (exit 0)

    @property
    def ok(self) -> bool:
        return not self.problems

    def units(self) -> dict[str, int]:
        """What compiles, by name: each enabled pipeline (1), each batched family (its series count)."""
        units: dict[str, int] = {}
        for pipeline in self.pipelines:
            if pipeline.enabled:
                name = pipeline.family if pipeline.batch else pipeline.name
                units[name] = units.get(name, 0) + 1
        return dict(sorted(units.items()))

    def describe(self) -> str:
        """`6 pipeline(s) (employment: 148 series)`: the units, and the series of each family."""
        units = self.units()
        families = sorted({p.family for p in self.pipelines if p.batch and p.family in units})
        text = f"{len(units)} pipeline(s)"
        if families:
            text += " (" + ", ".join(f"{name}: {units[name]} series" for name in families) + ")"
        return text

    def raise_problems(self) -> None:
        if self.problems:
            raise SpecError(self.problems)


def discover(root: Path) -> list[Path]:
    """Every YAML file under pipelines/, policies/ and deployments/, in a stable order."""
    found: list[Path] = []
    for folder in (PIPELINES_DIR, POLICIES_DIR, DEPLOYMENTS_DIR):
        base = root / folder
        if base.is_dir():
            found += [p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(found)


def read(root: Path, paths: Iterable[Path] = (), env: Mapping[str, str] | None = None) -> Workspace:
    """Load, resolve and govern `paths` (default: all), collecting every problem."""
    root = root.resolve()
    if not root.is_dir():
        raise UserError(f"{root}: not a directory")
    chosen = [p.resolve() for p in paths] or discover(root)
    space = Workspace(root)
    resolver = Resolver(root, os.environ if env is None else env)
    documents = [doc for path in chosen if (doc := _read(space, path)) is not None]
    policy_docs = [d for d in documents if d.kind == "Policy"]
    if paths:  # checking some files: the repo's policies still govern them
        policy_docs += [d for d in _quiet_policies(root, set(chosen))]
    changed: list[Policy] = []
    for doc in policy_docs:
        policy, problems = read_policy(doc)
        space.policies.append(policy)
        if doc.path in chosen:
            space.problems += problems
            changed.append(policy)
    for doc in documents:
        if doc.kind == "Pipeline":
            _resolve(space, resolver, doc)
        elif doc.kind == "Deployment":
            deployment, problems = parse_deployment(doc.data, doc.display)
            space.deployments.append(deployment)
            space.problems += problems
    _govern(space)
    if paths and changed:  # a changed policy may break pipelines that did not change
        space.problems += _governance_of_others(space, resolver, set(chosen), changed)
    _check_names(space)
    space.problems = sorted(set(space.problems))
    return space


def _display(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _read(space: Workspace, path: Path) -> Document | None:
    display = _display(space.root, path)
    space.files.append(display)
    try:
        doc = read_document(path, display)
    except SpecError as exc:
        space.problems += exc.problems
        return None
    home = _HOME[doc.kind]
    top = display.split("/", 1)[0]
    if top in _HOME.values() and top != home:
        mark = doc.data.value_mark("kind")
        space.problems.append(Problem(display, mark.line, mark.col, "kind",
                                      f"a {doc.kind} does not belong under {top}/",
                                      f"move it to {home}/, or fix its kind"))
        return None
    return doc


def _quiet_policies(root: Path, chosen: set[Path]) -> list[Document]:
    docs = []
    for path in discover(root):
        if path in chosen or not path.is_relative_to(root / POLICIES_DIR):
            continue
        try:
            doc = read_document(path, _display(root, path))
        except SpecError:
            continue  # reported when that file itself is validated
        if doc.kind == "Policy":
            docs.append(doc)
    return docs


def _governance_of_others(space: Workspace, resolver: Resolver, chosen: set[Path],
                          changed: list[Policy]) -> list[Problem]:
    """What the repo's other pipelines that `changed` selects now fall short of."""
    found: list[Problem] = []
    for path in discover(space.root):
        if path in chosen or not path.is_relative_to(space.root / PIPELINES_DIR):
            continue
        try:
            doc = read_document(path, _display(space.root, path))
            pipelines = resolver.pipelines(doc) if doc.kind == "Pipeline" else []
        except SpecError:
            continue  # reported when that file itself is validated
        for pipeline in pipelines:
            if any(policy.selects(pipeline) for policy in changed):
                found += govern(pipeline, space.policies)[1]
    return found


def _resolve(space: Workspace, resolver: Resolver, doc: Document) -> None:
    try:
        space.pipelines += resolver.pipelines(doc)
    except SpecError as exc:
        space.problems += exc.problems


def _govern(space: Workspace) -> None:
    for pipeline in space.pipelines:
        governed, problems = govern(pipeline, space.policies)
        space.governed.append(governed)
        space.problems += problems


def _check_names(space: Workspace) -> None:
    seen: dict[str, Pipeline] = {}
    for pipeline in space.pipelines:
        other = seen.setdefault(pipeline.name, pipeline)
        if other is not pipeline:
            space.problems.append(Problem(pipeline.source, 1, 1, "metadata.name",
                                          f"pipeline name '{pipeline.name}' is also made by {other.source}",
                                          "pipeline names must be unique in the repository"))
    policy_names: dict[str, Policy] = {}
    for policy in space.policies:
        other_policy = policy_names.setdefault(policy.name, policy)
        if other_policy is not policy:
            space.problems.append(Problem(policy.source, 1, 1, "metadata.name",
                                          f"policy name '{policy.name}' is also used by "
                                          f"{other_policy.source}",
                                          "policy names must be unique"))
