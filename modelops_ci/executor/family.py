"""A batched family (spec.batch): its series compile to one folder with one stage, `batch`, that runs
every series in one process (steps/batch.py); see DESIGN §9.

params.yaml holds what the series share once, and under `series:` only what each series sets
differently (its filter, its labels): at 1,000 series the file stays small enough for the stage's
start-up and for git. `family_params.series_params` puts one series' params back together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from modelops_ci.errors import UserError
from modelops_ci.family_params import split_common
from modelops_ci.gates import GATES
from modelops_ci.layout import Layout
from modelops_ci.steps import COLLECT, STEPS
from modelops_ci.steps.reads import Reads, values_under
from modelops_ci.transform.policies import Governed

BATCH_STAGE = "batch"


def family_params(family: str, members: list[Governed], params_of: Any) -> dict[str, Any]:
    """The family's compiled params: the shared settings, then each series' own."""
    each = {g.pipeline.name: params_of(g) for g in members}
    for params in each.values():
        params.pop("pipeline", None)
        params["governance"]["family"] = _rules(members)
    _refuse_mixed_governance(family, each)
    common, own = split_common(list(each.values()))
    return {"pipeline": family, "family": family, "batch": True, **common,
            "series": dict(zip(each, own, strict=True))}


def _refuse_mixed_governance(family: str, each: dict[str, dict[str, Any]]) -> None:
    """A family is released as one version: every series must be governed alike."""
    import json

    groups: dict[str, list[str]] = {}
    for name, params in each.items():
        groups.setdefault(json.dumps(params["governance"], sort_keys=True), []).append(name)
    if len(groups) == 1:
        return
    usual = max(groups.values(), key=len)
    odd = sorted(name for names in groups.values() if names is not usual for name in names)
    policies = ", ".join(each[odd[0]]["governance"]["policies"]) or "none"
    raise UserError(f"family {family}: series {', '.join(odd[:5])}{' and more' if len(odd) > 5 else ''} "
                    f"are governed by other policies ({policies}) than the rest "
                    f"({', '.join(each[usual[0]]['governance']['policies']) or 'none'}): a batched family is "
                    "released as one version, so select all its series with the same policies (or set "
                    "spec.batch: false)")


def _rules(members: list[Governed]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for governed in members:
        rules += [rule for rule in governed.family_rules if rule not in rules]
    return rules


def batch_stage(family: str, members: list[Governed], params: dict[str, Any], root: Path) -> dict[str, Any]:
    """The one DVC stage of a family. Its outputs persist between runs: the stage keeps the outputs
    of each series whose key (data, spec, code) did not change, and rewrites only the others."""
    files = Layout(family)
    from modelops_ci.family_params import series_params

    series = [series_params(params, g.pipeline.name) for g in members]
    deps = [files.params, files.series_table, *sorted(_inputs(family, series, root))]
    uncached = {"cache": False}
    return {
        "cmd": f"modelops-ci step {BATCH_STAGE} {family}",
        "wdir": "../..",
        "deps": deps,
        "outs": [{files.series_models: {"persist": True}},
                 {files.series_reports: {"persist": True}},
                 {files.gates: uncached}],
        "metrics": [{files.metrics: uncached}],
    }


def _inputs(family: str, series: Iterable[dict[str, Any]], root: Path) -> set[str]:
    """The repository files any series reads (data files, contracts, plug-in modules), without the
    family's own outputs (a series' train/test tables live in memory inside the stage)."""
    own = tuple(f"{kind}/{family}/" for kind in ("data", "models", "reports"))
    seen: dict[str, None] = {}
    for params in _distinct(series):
        layout = Layout(str(params["pipeline"]), family)
        reads = [entry.reads for entry in STEPS.values()] + [GATES[kind].reads for kind in params.get("gates") or {}]
        for read in [*reads, COLLECT]:
            outside = Reads(params=read.params, files=read.files, code=read.code)
            seen.update(dict.fromkeys(outside.deps(params, layout, root)))
    return {path for path in seen if not path.startswith(own)}


def _distinct(series: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The series that name distinct files or code (usually one): the rest read the same."""
    import json

    reads = [entry.reads for entry in STEPS.values()] + [kind.reads for kind in GATES.values()]
    keys = sorted({f.key for r in reads for f in r.files} | {k for r in reads for k in r.code} | {"gates"})
    seen = set()
    for params in series:
        marker = json.dumps([list(values_under(params, key)) for key in keys], sort_keys=True, default=str)
        if marker not in seen:
            seen.add(marker)
            yield params
