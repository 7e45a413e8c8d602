"""Reading and writing tables (parquet), atomically; and the columns a spec declares."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.steps.context import StepContext


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` so that a crash leaves the old file or the new one, never half of one."""
    from modelops_ci.fsutil import replacing

    with replacing(path) as temp:
        frame.to_parquet(temp, index=False)


def read_parquet(path: Path) -> pd.DataFrame:
    """A table an earlier step wrote; a user error when that step has not run (`step` called by hand)."""
    import pandas as pd

    from modelops_ci.errors import UserError

    if not path.is_file():
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        raise UserError(f"{shown}: not found: run the steps before this one, or `modelops-ci run` the pipeline")
    return pd.read_parquet(path)


def json_table(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """`frame` as {"columns": [...], "rows": [[...], ...]}, JSON-safe: missing and infinite numbers
    are null, text (a forecast's periods) stays as it is, other values are written as text."""
    rows = [[_json_value(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return {"columns": [str(c) for c in frame.columns], "rows": rows}


def _json_value(value: Any) -> Any:
    import math

    import numpy as np
    import pandas as pd

    if isinstance(value, np.bool_ | np.number):
        value = value.item()
    if isinstance(value, str | bool | int | None):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)


def require_column(ctx: StepContext, frame: pd.DataFrame, column: str, at: str) -> None:
    """Refuse a spec that names a column the data does not have, suggesting the closest name."""
    if column in frame.columns:
        return
    names = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(str(column), names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"columns: {', '.join(names[:20])}"
    raise ctx.fail(at, f"column '{column}' is not in the data", hint)


def filter_rows(ctx: StepContext, frame: pd.DataFrame, chosen: dict[str, Any], at: str) -> pd.DataFrame:
    """The rows whose column holds the chosen value (or one of the values), for each column of
    `chosen` (the spec's `filter` at `at`); a filter that keeps nothing says which values there are."""
    for column, wanted in chosen.items():
        where = f"{at}.{column}"
        require_column(ctx, frame, column, where)
        values = wanted if isinstance(wanted, list) else [wanted]
        kept = frame[frame[column].isin(values)]
        if kept.empty:
            present = sorted(frame[column].dropna().astype(str).unique())
            raise ctx.fail(where, f"filter {column}: {wanted!r} matches none of the {len(frame)} rows",
                           f"values of '{column}': {', '.join(present[:10])}"
                           + (", ..." if len(present) > 10 else ""))
        frame = kept
    return frame


def declared_features(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns as declared in the spec."""
    features = data.get("features") or {}
    return list(features.get("numeric") or []), list(features.get("categorical") or [])


def derived_columns(data: dict[str, Any]) -> list[str]:
    return [s["derive"] for s in data.get("sensitive") or [] if isinstance(s, dict)]


def sensitive_columns(data: dict[str, Any]) -> list[str]:
    return [s["derive"] if isinstance(s, dict) else str(s) for s in data.get("sensitive") or []]


def feature_columns(data: dict[str, Any], frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical): as declared, or inferred from the column types when not declared.

    Inferred features leave out the target, the time column, dropped and derived columns.
    """
    numeric, categorical = declared_features(data)
    if numeric or categorical:
        return numeric, categorical
    import pandas as pd

    excluded = {data["target"]["column"], data.get("time"), *((data.get("features") or {}).get("drop") or []),
                *derived_columns(data)}
    for column in frame.columns:
        if column in excluded:
            continue
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column]):
            numeric.append(str(column))
        else:
            categorical.append(str(column))
    return numeric, categorical


BATCH_SUFFIXES = (".csv", ".parquet", ".pq")


def newest_batch(folder: Path) -> Path | None:
    """The last data file in `folder` by name (batches named by date or sequence sort in time order):
    the batch `monitor` checks and the drift gate's `current` folder names."""
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower() in BATCH_SUFFIXES and not p.name.startswith(".")]
    return max(files, key=lambda p: p.name) if files else None
