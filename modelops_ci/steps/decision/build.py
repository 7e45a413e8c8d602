"""build (task: optimize): each scenario's problem from the formulation, and the decision model's card.

The card (models/<p>/formulation.json) is the model the registry versions: the formulation (the
callable or the file) with the digest of its code or file, its params, the solver with its version and
options, and the digest of the scenario set it was judged on. A scenario the formulation cannot build
is kept with its reason (optimize/store.py): the others still build and solve.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.optimize import formulation, solvers, store
from modelops_ci.steps.context import StepContext, sha256_file
from modelops_ci.steps.decision.ingest import scenario_names
from modelops_ci.steps.estimators import CannotLoad, load
from modelops_ci.steps.frames import read_parquet

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SOLVER = "highs"


def run(ctx: StepContext) -> dict[str, Any]:
    model = ctx.params["model"]
    solver = str(model.get("solver", DEFAULT_SOLVER))
    solver_version = solvers.version(solver)  # not installed: exit 2 naming the package, before any work
    frame = read_parquet(ctx.path(ctx.layout.dataset))
    inputs = read_inputs(ctx.path(ctx.layout.inputs))
    built = build_all(ctx, frame, inputs)
    store.save(ctx.path(ctx.layout.problems), built)
    ctx.write_json(ctx.layout.formulation, {**card(ctx, solver_version, len(built)), **columns_of(ctx, frame)})
    errors = sum(1 for b in built if b.error)
    return {"scenarios": len(built), "not_built": errors}


def read_inputs(folder: Path) -> dict[str, pd.DataFrame]:
    import pandas as pd

    return {path.stem: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}


def build_all(ctx: StepContext, frame: pd.DataFrame, inputs: dict[str, pd.DataFrame]) -> list[store.Built]:
    column = ctx.data.get("scenario")
    params = dict(ctx.params["model"].get("params") or {})
    make = _maker(ctx)
    built = []
    for name in scenario_names(frame, column):
        rows = frame[frame[column].astype(str) == name] if column else frame
        built.append(build_one(make, formulation.Scenario(name, rows.reset_index(drop=True), inputs, params)))
    return built


def build_one(make: Any, scenario: formulation.Scenario) -> store.Built:
    """One scenario's problem, or the plain reason the formulation gave for none."""
    try:
        return store.Built(scenario.name, make(scenario))
    except formulation.ScenarioDataError as exc:
        return store.Built(scenario.name, None, str(exc))
    except Exception as exc:  # the formulation is the user's code: its failure is this scenario's error
        return store.Built(scenario.name, None, f"the formulation raised {type(exc).__name__}: {exc}")


def _maker(ctx: StepContext) -> Any:
    """scenario -> Problem, from the spec's callable or file."""
    model = ctx.params["model"]
    if "file" in model:
        from modelops_ci.optimize.problem import read

        base = read(_inside(ctx, str(model["file"])))
        return lambda scenario: formulation.with_bounds(base, scenario.rows)
    dotted = str(model["formulation"])
    try:
        build = load(dotted, ctx.root)
    except CannotLoad as exc:
        raise ctx.fail("spec.model.formulation", exc.message, exc.hint) from None
    if not callable(build):
        raise ctx.fail("spec.model.formulation", f"'{dotted}' is not callable",
                       "point at a function build(scenario) returning a HiGHS model")
    return lambda scenario: formulation.from_plugin(build, scenario)


def _inside(ctx: StepContext, relative: str) -> Path:
    path = (ctx.root / relative).resolve()
    if not path.is_relative_to(ctx.root) or not path.is_file():
        raise ctx.fail("spec.model.file", f"'{relative}' is not a file in the repository",
                       "add the MPS or LP file under models/ or data/")
    return path


def card(ctx: StepContext, solver_version: str, scenarios: int) -> dict[str, Any]:
    model = ctx.params["model"]
    name, _, version = solver_version.partition(" ")
    kind = "file" if "file" in model else "formulation"
    return {
        "task": "optimize",
        "formulation": {kind: str(model[kind]), "sha256": code_digest(ctx, model)},
        "params": dict(model.get("params") or {}),
        "solver": {"name": name, "version": version},
        "options": dict(model.get("options") or {}),
        "scenarios": {"count": scenarios, "sha256": scenarios_digest(ctx)},
        "problems_sha256": sha256_file(ctx.path(ctx.layout.problems)),
    }


def columns_of(ctx: StepContext, frame: pd.DataFrame) -> dict[str, list[str]]:
    """A scenario's columns as the server checks a posted scenario's rows (serve/signature.py): the
    scenario table's, but the column that names the scenarios."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    named = ctx.data.get("scenario")
    kept = [str(c) for c in frame.columns if c != named]
    numeric = [c for c in kept if is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c])]
    return {"numeric": numeric, "categorical": [c for c in kept if c not in numeric]}


def code_digest(ctx: StepContext, model: dict[str, Any]) -> str:
    """sha256 of the formulation: the file, or the source of the callable's module (its package's
    `__init__.py` files too, when the module is in the repository)."""
    if "file" in model:
        return sha256_file(_inside(ctx, str(model["file"])))
    return module_digest(str(model["formulation"]), ctx.root)


def module_digest(dotted: str, root: Path) -> str:
    """sha256 over the source files importing `dotted`'s module runs (the card's, and what `serve`
    checks the checkout's code against)."""
    digest = hashlib.sha256()
    for path in module_files(dotted, root):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def module_files(dotted: str, root: Path) -> list[Path]:
    import importlib.util

    from modelops_ci.steps.estimators import DottedPath, repo_module_files

    found = [root / relative for relative in repo_module_files(dotted, root)]
    if found:
        return found
    spec = importlib.util.find_spec(DottedPath.parse(dotted).module)
    return [Path(spec.origin)] if spec and spec.origin and Path(spec.origin).is_file() else []


def scenarios_digest(ctx: StepContext) -> str:
    """sha256 over the scenario table and the shared tables as ingest wrote them."""
    digest = hashlib.sha256()
    files = [ctx.path(ctx.layout.dataset), *sorted(ctx.path(ctx.layout.inputs).glob("*.parquet"))]
    for path in files:
        digest.update(path.name.encode() + b"\0" + sha256_file(path).encode())
    return digest.hexdigest()
