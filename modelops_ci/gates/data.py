"""Data contract: the dataset still looks like the data the pipeline was built for, checked
before anything is trained.

A contract is a YAML file in git (`contracts/<pipeline>.yaml`, or the gate's `contract` setting),
inferred once from a dataset by `modelops-ci contract infer PIPELINE`, then reviewed and edited
like code. Per column it says:

- `type`: boolean, integer, number, string or datetime. An integer column satisfies `number`, and
  floats that are all whole numbers satisfy `integer` (a CSV reader turns an integer column with
  one missing value into floats);
- `max_null_rate`: the observed share of nulls plus a slack: +1 point and +50% of the observed
  rate (0% -> 1%, 10% -> 16%), so a few more gaps pass and a broken join does not;
- `min`/`max` (numeric columns): the observed range widened on each side by 10% of its width
  (a new sample of the same population falls a little outside the old extremes by chance; a unit
  change or a sign flip does not), never below 0 for a column that was never negative, rounded
  outward to 3 significant digits of the width (whole numbers for integers);
- `categories` (categorical features, the classification target, sensitive columns, and text
  columns with at most MAX_CATEGORIES values): the values seen; any other value fails.

Each violated rule is one check naming the column, the rule, how many rows break it and examples.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, Status, worst
from modelops_ci.layout import Layout

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.context import GateContext

GATE = "data_contract"
CONTRACT_VERSION = 1
CONTRACTS_DIR = "contracts"
RANGE_MARGIN = 0.1  # of the observed width, on each side
NULL_SLACK_ABSOLUTE = 0.01
NULL_SLACK_RELATIVE = 0.5
MAX_CATEGORIES = 50  # text columns with more distinct values are identifiers or free text
MAX_DECLARED_CATEGORIES = 1000
EXAMPLES = 5
TYPES = ("boolean", "integer", "number", "string", "datetime")
RULES = ("type", "max_null_rate", "min", "max", "categories")


# -- inferring -------------------------------------------------------------------------------


def infer_contract(frame: pd.DataFrame, data_spec: dict[str, Any], task: str | None = None) -> dict[str, Any]:
    """The contract `frame` satisfies, with the margins above; `data_spec` is the spec's `data`
    (declared categorical, sensitive, time and dropped columns), `task` the pipeline's task."""
    categorical = _categorical_columns(data_spec, task)
    no_values = {data_spec.get("time"), *((data_spec.get("features") or {}).get("drop") or [])}
    columns: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        series = frame[name]
        kind = logical_type(series)
        rules: dict[str, Any] = {"type": kind, "max_null_rate": _null_allowance(series)}
        if name not in no_values:
            if kind in ("integer", "number") and name not in categorical:
                rules.update(_range(series, kind))
            elif kind != "boolean":
                rules.update(_categories(series, limit=MAX_DECLARED_CATEGORIES if name in categorical
                                         else MAX_CATEGORIES))
        columns[str(name)] = rules
    return {"version": CONTRACT_VERSION, "columns": columns}


def logical_type(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def _categorical_columns(data_spec: dict[str, Any], task: str | None) -> set[str]:
    from modelops_ci.steps.frames import sensitive_columns

    declared = set((data_spec.get("features") or {}).get("categorical") or [])
    target = (data_spec.get("target") or {}).get("column")
    classes = {target} if target and task == "classification" else set()
    return declared | classes | set(sensitive_columns(data_spec))


def _null_allowance(series: pd.Series) -> float:
    observed = float(series.isna().mean()) if len(series) else 0.0
    allowed = observed * (1 + NULL_SLACK_RELATIVE) + NULL_SLACK_ABSOLUTE
    return min(1.0, math.ceil(allowed * 10_000) / 10_000)


def _range(series: pd.Series, kind: str) -> dict[str, float | int]:
    values = series.dropna().astype(float)
    values = values[values.abs() != math.inf]
    if values.empty:
        return {}
    low, high = float(values.min()), float(values.max())
    width = (high - low) or abs(high) or 1.0
    step = 10 ** (math.floor(math.log10(width)) - 2)
    if kind == "integer":
        step = max(1.0, step)
    bottom = low - RANGE_MARGIN * width
    if low >= 0:
        bottom = max(0.0, bottom)
    top = high + RANGE_MARGIN * width
    return {"min": _tidy(math.floor(bottom / step) * step, step, kind),
            "max": _tidy(math.ceil(top / step) * step, step, kind)}


def _tidy(value: float, step: float, kind: str) -> float | int:
    """Drop float noise (12.350000000000001) left by the rounding to `step`."""
    if kind == "integer":
        return round(value)
    return round(value, max(0, -math.floor(math.log10(step))))


def _categories(series: pd.Series, limit: int) -> dict[str, list[str]]:
    values = sorted(set(category_values(series)))
    return {"categories": values} if 0 < len(values) <= limit else {}


def category_values(series: pd.Series) -> list[str]:
    """Non-null values as text, numbers written alike whatever their dtype (1, not 1.0)."""
    import pandas as pd

    values = series.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in values]
    return [str(v) for v in values]


# -- the file --------------------------------------------------------------------------------


def contract_path(pipeline: str, settings: dict[str, Any] | None = None) -> str:
    """Where the pipeline's contract lives, relative to the repository root."""
    return str((settings or {}).get("contract") or Layout(pipeline).contract)


class _Flow(list[str]):
    """A list written on one line (a column's categories)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Flow, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def render_contract(pipeline: str, contract: dict[str, Any]) -> str:
    """The contract as YAML: the same contract always gives the same bytes."""
    columns = {name: {key: _Flow(rules[key]) if key == "categories" else rules[key]
                      for key in RULES if key in rules}
               for name, rules in contract["columns"].items()}
    body = {"version": contract.get("version", CONTRACT_VERSION), "pipeline": pipeline, "columns": columns}
    header = (f"# Data contract of pipeline '{pipeline}': the `data_contract` gate checks every dataset "
              "against it.\n"
              f"# Inferred by `modelops-ci contract infer {pipeline}`; review it, and edit it to "
              "loosen or tighten a rule.\n")
    return header + yaml.dump(body, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, width=100)


def write_contract(root: Path, pipeline: str, contract: dict[str, Any], relative: str | None = None) -> Path:
    """Write the contract to `relative` (default contracts/<pipeline>.yaml); returns the path."""
    from modelops_ci.fsutil import write_atomic

    path = root / (relative or contract_path(pipeline))
    write_atomic(path, render_contract(pipeline, contract))
    return path


def read_contract(root: Path, relative: str, pipeline: str) -> dict[str, Any]:
    """The contract at `relative`; `CannotEvaluate` if it is missing, unreadable or malformed."""
    path = root / relative
    infer = f"run `modelops-ci contract infer {pipeline}` and commit it"
    details = {"contract": relative}
    if not path.is_file():
        raise CannotEvaluate(f"{relative}: no data contract: {infer}", details=details)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CannotEvaluate(f"{relative}: unreadable ({exc}): fix it, or {infer}", details=details) from None
    _check_shape(loaded, relative)
    contract: dict[str, Any] = loaded
    return contract


def _check_shape(contract: Any, relative: str) -> None:
    """Refuse a malformed contract by its key, rather than checking data against nonsense."""
    def bad(where: str, what: str) -> CannotEvaluate:
        return CannotEvaluate(f"{relative}: {where}: {what}: fix the file or infer it again",
                              details={"contract": relative})

    if not isinstance(contract, dict) or not isinstance(contract.get("columns"), dict):
        raise bad("columns", "missing, or not a mapping of column names to rules")
    if contract.get("version", CONTRACT_VERSION) != CONTRACT_VERSION:
        raise bad("version", f"{contract.get('version')!r} is not {CONTRACT_VERSION}")
    for name, rules in contract["columns"].items():
        at = f"columns.{name}"
        if not isinstance(rules, dict):
            raise bad(at, "not a mapping of rules")
        unknown = set(rules) - set(RULES)
        if unknown:
            raise bad(f"{at}.{sorted(unknown)[0]}", f"unknown rule (rules: {', '.join(RULES)})")
        if rules.get("type") not in TYPES:
            raise bad(f"{at}.type", f"{rules.get('type')!r} is not one of {', '.join(TYPES)}")
        for key in ("max_null_rate", "min", "max"):
            value = rules.get(key)
            if key in rules and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise bad(f"{at}.{key}", f"{value!r} is not a number")
        if "categories" in rules and not isinstance(rules["categories"], list):
            raise bad(f"{at}.categories", "not a list")


# -- validating ------------------------------------------------------------------------------


def validate(frame: pd.DataFrame, contract: dict[str, Any], where: str = "the contract",
             pipeline: str = "PIPELINE") -> list[Check]:
    """One check per broken rule (nothing when the frame meets the contract)."""
    checks: list[Check] = []
    for name, rules in contract["columns"].items():
        if name not in frame.columns:
            checks.append(_check(name, "present", "fail", f"column '{name}' is missing ({where} requires it)",
                                 len(frame), 0, []))
            continue
        checks += _validate_column(frame[name], str(name), rules, where)
    for name in frame.columns:
        if str(name) not in contract["columns"]:
            checks.append(_check(str(name), "present", "warn",
                                 f"column '{name}' is not in {where}: add it with "
                                 f"`modelops-ci contract infer {pipeline}` and review", len(frame), 0, []))
    return checks


def _validate_column(series: pd.Series, name: str, rules: dict[str, Any], where: str) -> list[Check]:
    n = len(series)
    checks = []
    nulls = int(series.isna().sum())
    allowed = float(rules.get("max_null_rate", 1.0))
    if n and nulls / n > allowed:
        checks.append(_check(name, "max_null_rate", "fail",
                             f"column '{name}': {nulls / n:.1%} null ({nulls} of {n} rows), "
                             f"{where} allows at most {allowed:.1%}", n, nulls, []))
    found, expected = logical_type(series), str(rules["type"])
    if not _type_fits(series, found, expected):
        checks.append(_check(name, "type", "fail", f"column '{name}' is {found} ({series.dtype}), "
                             f"{where} says {expected}", n, n - nulls, _examples(series.dropna())))
        return checks  # ranges and categories of the wrong type would only repeat the point
    if "min" in rules or "max" in rules:
        checks += _range_checks(series, name, rules, where)
    if "categories" in rules:
        checks += _category_checks(series, name, rules, where)
    return checks


def _type_fits(series: pd.Series, found: str, expected: str) -> bool:
    if found == expected or (expected == "number" and found == "integer"):
        return True
    if expected == "integer" and found == "number":
        values = series.dropna().astype(float)
        return bool(((values % 1) == 0).all())
    return False


def _range_checks(series: pd.Series, name: str, rules: dict[str, Any], where: str) -> list[Check]:
    values = series.astype(float)
    low, high = float(rules.get("min", -math.inf)), float(rules.get("max", math.inf))
    outside = series[(values < low) | (values > high)]  # NaN compares false: nulls have their own rule
    if outside.empty:
        return []
    below, above = int((values < low).sum()), int((values > high).sum())
    sides = ", ".join(part for part in (f"{below} below {low:g}" if below else "",
                                        f"{above} above {high:g}" if above else "") if part)
    reason = (f"column '{name}': {len(outside)} of {len(series)} values outside [{low:g}, {high:g}] of "
              f"{where} ({sides}); e.g. {', '.join(_examples(outside))}")
    check = _check(name, "range", "fail", reason, len(series), len(outside), _examples(outside))
    check.threshold = {key: float(rules[key]) for key in ("min", "max") if key in rules}
    return [check]


def _category_checks(series: pd.Series, name: str, rules: dict[str, Any], where: str) -> list[Check]:
    import pandas as pd

    allowed = {str(c) for c in rules["categories"]}
    values = pd.Series(category_values(series), dtype=object)
    unknown = values[~values.isin(allowed)]
    if unknown.empty:
        return []
    counts = unknown.value_counts()
    shown = [f"{value!r} ({count})" for value, count in counts.head(EXAMPLES).items()]
    reason = (f"column '{name}': {len(unknown)} of {len(series)} values are not among the "
              f"{len(allowed)} categories of {where}: {', '.join(shown)}"
              + (f" and {len(counts) - EXAMPLES} more" if len(counts) > EXAMPLES else ""))
    return [_check(name, "categories", "fail", reason, len(series), len(unknown),
                   [str(v) for v in counts.index[:EXAMPLES]])]


def _examples(values: pd.Series) -> list[str]:
    return [str(v) for v in list(dict.fromkeys(values.tolist()))[:EXAMPLES]]


def _check(column: str, rule: str, status: Status, reason: str, n: int, count: int,
           examples: list[str]) -> Check:
    return Check(f"{column}.{rule}", status, reason, n=n,
                 details={"column": column, "rule": rule, "count": count, "examples": examples})


# -- the gate and the command ----------------------------------------------------------------


def assess(frame: pd.DataFrame, contract: dict[str, Any], where: str, pipeline: str) -> GateResult:
    checks = validate(frame, contract, where, pipeline)
    status = worst([c.status for c in checks])
    columns = len(contract["columns"])
    if not checks:
        reason = f"all {columns} columns meet {where} (types, null rates, ranges, categories)"
    else:
        shown = [c for c in checks if c.status == status] or checks
        reason = "; ".join(c.reason for c in shown[:EXAMPLES])
        if len(shown) > EXAMPLES:
            reason += f"; and {len(shown) - EXAMPLES} more"
    return GateResult(GATE, status, reason, n=len(frame), checks=checks,
                      details={"contract": where, "columns": columns})


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    relative = contract_path(ctx.name, settings)
    contract = read_contract(ctx.step.root, relative, ctx.name)
    return assess(ctx.frame("dataset"), contract, relative, ctx.name)
