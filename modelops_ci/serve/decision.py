"""A decision model as the server holds it: the verified version's formulation, params, solver options
and shared input tables, ready to solve one scenario a caller posts.

What is served is what the tag verified: the card is read at the tag's commit and must have the md5
its dvc.lock records; the shared inputs are read from DVC by the md5s of that commit's lock (bytes
that hash otherwise are refused); and the formulation's code in this checkout must have the card's
digest, or the version is not served (the code is imported from the checkout, never from a blob).
A posted scenario is solved like a pipeline's: built, solved within the spec's time limit, its
objective and violations recomputed from the problem and the decision (optimize/evaluate.py).

Only HiGHS solves in the server: OR-Tools and highspy crash when imported in one process, and the
server may hold HiGHS models; a version whose spec names OR-Tools is refused with that reason.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError
from modelops_ci.layout import Layout
from modelops_ci.optimize.solve import Options

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.registry.evidence import Evidence
    from modelops_ci.serve.signature import Row, Signature

SERVED_SOLVER = "highs"
NONZERO = 1e-9  # a decision's values below this are left out of the answer (they are zero within tolerance)


@dataclass(frozen=True)
class DecisionModel:
    """One version's formulation, ready to solve a scenario."""

    build: Callable[[Any], Any]
    params: dict[str, Any]
    inputs: dict[str, pd.DataFrame]
    options: Options
    signature: Signature

    def solve(self, name: str, rows: Sequence[Row]) -> dict[str, Any]:
        """The scenario's result: status, objective, bound, gap, seconds, recomputed violation, and the
        decision's nonzero values by variable (a scenario the formulation refuses: `error`)."""
        from modelops_ci.optimize import formulation
        from modelops_ci.optimize.evaluate import evaluate
        from modelops_ci.optimize.solvers import solve
        from modelops_ci.serve.signature import frame

        scenario = formulation.Scenario(name, frame(rows, self.signature), self.inputs, self.params)
        try:
            problem = formulation.from_plugin(self.build, scenario)
        except Exception as exc:  # the formulation's refusal of this scenario's data is the caller's answer
            return {"scenario": name, "status": "error", "error": _reason(exc)}
        solution = solve(SERVED_SOLVER, problem, self.options)
        result = evaluate(name, problem, solution).to_json()
        names = problem.col_names if any(problem.col_names) else tuple(f"x{j}" for j in range(problem.shape[1]))
        values = solution.x if solution.x is not None else ()
        result["decision"] = {n: float(v) for n, v in zip(names, values, strict=False) if abs(v) > NONZERO}
        return result


def load(root: Path, pipeline: str, commit: str, claimed: Evidence) -> tuple[DecisionModel, dict[str, Any]]:
    """The decision model `claimed` (a verified tag's evidence) names, as its commit holds it, and its card."""
    from modelops_ci import git
    from modelops_ci.registry.deployed import params_at
    from modelops_ci.registry.dvc_cache import md5_of
    from modelops_ci.serve.signature import Signature
    from modelops_ci.steps.decision.solve import options_of

    layout = Layout(pipeline)
    raw = git.show_file(root, commit, layout.formulation) or b""
    if not raw or md5_of(raw) != claimed.model.get(layout.formulation):
        raise UserError(f"{layout.formulation} at {commit[:12]} is not the card its dvc.lock records: "
                        "re-run the pipeline and commit it")
    card = json.loads(raw)
    if card["solver"]["name"] != SERVED_SOLVER:
        raise UserError(f"its solver is {card['solver']['name']}: the server solves with {SERVED_SOLVER} only "
                        "(OR-Tools and highspy cannot share a process)")
    build = _formulation(root, card)
    params = params_at(root, commit, layout)
    model = params.get("model") or {}
    return DecisionModel(build, dict(model.get("params") or {}), _inputs(root, commit, layout, claimed),
                         options_of(model), Signature.of(card)), card


def _formulation(root: Path, card: dict[str, Any]) -> Callable[[Any], Any]:
    from modelops_ci.steps.decision.build import module_digest
    from modelops_ci.steps.estimators import CannotLoad
    from modelops_ci.steps.estimators import load as load_callable

    dotted = card["formulation"].get("formulation")
    if not dotted:
        raise UserError("a model-file formulation is not served yet: serve a formulation callable")
    if module_digest(str(dotted), root) != card["formulation"]["sha256"]:
        raise UserError(f"the code of {dotted} in this checkout is not the code this version was verified with "
                        "(its sha256 differs from the card's): check out the version's commit to serve it")
    try:
        found: Callable[[Any], Any] = load_callable(str(dotted), root)
    except CannotLoad as exc:
        raise UserError(f"{dotted}: {exc.message}") from None
    return found


def _inputs(root: Path, commit: str, layout: Layout, claimed: Evidence) -> dict[str, pd.DataFrame]:
    """The shared tables, each read from DVC by the md5 the commit's lock records for it."""
    import pandas as pd

    from modelops_ci.registry.dvc_cache import folder_listing, read_output

    md5 = claimed.data.get(layout.inputs, "")
    if not md5:
        return {}
    listing = folder_listing(root, md5)
    if listing is None:
        raise UserError(f"{layout.inputs} of {commit[:12]} is not in the local DVC cache: `dvc pull` it "
                        "(or fetch it from the remote) before serving")
    tables = {}
    for relative, file_md5 in sorted(listing.items()):
        raw = read_output(root, f"{layout.inputs}/{relative}", commit, file_md5)
        tables[Path(relative).stem] = pd.read_parquet(io.BytesIO(raw))
    return tables


def _reason(exc: Exception) -> str:
    from modelops_ci.optimize.formulation import ScenarioDataError

    return str(exc) if isinstance(exc, ScenarioDataError) else f"the formulation raised {type(exc).__name__}: {exc}"
