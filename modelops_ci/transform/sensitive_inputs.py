"""Sensitive attributes used as model inputs: what `gates.fairness.sensitive_as_input` governs.

In credit, scoring on a protected attribute is itself the violation, whatever the disparities
show; so a policy may `forbid` it (a spec problem, exit 2), `warn` (the default, so that repos
written before the setting keep working) or `allow` it. A derived attribute (`derive: age_band,
from: Age`) is judged by its source column: Age as an input is age as an input.

The inputs are the declared features (`features.numeric`/`categorical`) when there are any, else
every column the train step infers, which is all but the target, the time column, `features.drop`
and the derived columns (steps/frames.py `feature_columns`): a sensitive column not dropped is then
an input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelops_ci.errors import Problem
from modelops_ci.spec.model import Pipeline, Policy
from modelops_ci.spec.nodes import Mark, MDict, locate

SETTING = "sensitive_as_input"
DEFAULT = "warn"
STRICTNESS = ("allow", "warn", "forbid")  # weakest first; the schema's x-stricter says the same


@dataclass(frozen=True)
class SensitiveInput:
    """One sensitive attribute found among the model's inputs, and where the spec makes it so."""

    mark: Mark
    yaml_path: str
    what: str  # e.g. "the sensitive attribute 'Marital'"
    fix: str


def setting(gates: MDict) -> str:
    """The effective `gates.fairness.sensitive_as_input` (the strictest of policies and pipeline)."""
    fairness = gates.get("fairness")
    value = fairness.get(SETTING) if isinstance(fairness, MDict) else None
    return str(value) if value is not None else DEFAULT


def sensitive_inputs(data: MDict) -> Iterator[SensitiveInput]:
    """Each sensitive attribute (or a derived one's source column) the model would take as input."""
    if "target" not in data:
        return  # a decision pipeline's data (task: optimize) has no model inputs
    features: MDict = data.get("features") or MDict(data.mark)
    declared = [kind for kind in ("numeric", "categorical") if features.get(kind)]
    excluded = {str(c) for c in [*(features.get("drop") or ()), data["target"]["column"], data.get("time")] if c}
    sensitive = data.get("sensitive") or []
    for index, entry in enumerate(sensitive):
        columns, what = _columns_of(entry)
        if declared:
            yield from _declared(features, declared, columns, what)
        else:
            for column in (c for c in columns[:1] if c not in excluded):
                where = locate(sensitive, [index, "from"] if isinstance(entry, dict) else [index])
                yield SensitiveInput(where, f"spec.data.sensitive.{index}",
                                     f"{what} is a model input (the features are inferred from the data, "
                                     "and it is not dropped)",
                                     f"add '{column}' to spec.data.features.drop, or declare the features")


def _columns_of(entry: Any) -> tuple[list[str], str]:
    """The columns that carry the attribute (a derived one's source first), and the words for it."""
    if isinstance(entry, dict):
        source, derived = str(entry["from"]), str(entry["derive"])
        return [source, derived], f"'{source}', the source of the sensitive attribute '{derived}',"
    return [str(entry)], f"the sensitive attribute '{entry}'"


def _declared(features: MDict, kinds: list[str], columns: list[str], what: str) -> Iterator[SensitiveInput]:
    for kind in kinds:
        listed = [str(c) for c in features[kind]]
        for column in (c for c in columns if c in listed):
            where = locate(features, [kind, listed.index(column)])
            yield SensitiveInput(where, f"spec.data.features.{kind}", f"{what} is a model input",
                                 f"remove '{column}' from spec.data.features.{kind}")


def forbidden(pipeline: Pipeline, gates: MDict, policies: tuple[Policy, ...]) -> Iterator[Problem]:
    """Problems (exit 2) when the pipeline's policies or its own gates forbid sensitive inputs."""
    if setting(gates) != "forbid":
        return
    owner = next((f"policy '{p.name}'" for p in policies if setting(p.gates) == "forbid"), "this pipeline")
    for found in sensitive_inputs(pipeline.spec["data"]):
        yield _problem(found, f"{found.what}, which {owner} forbids (gates.fairness.{SETTING}: forbid)",
                       found.fix)


def warned(pipeline: Pipeline, gates: MDict) -> Iterator[Problem]:
    """Warnings (exit 0) when sensitive inputs are neither forbidden nor allowed (the default)."""
    if setting(gates) != "warn":
        return
    for found in sensitive_inputs(pipeline.spec["data"]):
        yield _problem(found, f"{found.what} (gates.fairness.{SETTING}: warn)",
                       f"{found.fix}; or set gates.fairness.{SETTING}: allow in the policy if using it is "
                       "lawful and intended")


def _problem(found: SensitiveInput, message: str, hint: str) -> Problem:
    mark = found.mark
    return Problem(mark.path, mark.line, mark.col, found.yaml_path, message, hint)
