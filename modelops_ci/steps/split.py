"""split: the dataset → train and test tables, seeded; random, stratified, temporal or by group.

A temporal split never lets the test period leak into training: every test row is later than
every training row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_ci.steps.context import StepContext
from modelops_ci.steps.frames import feature_columns, read_parquet, write_parquet

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_TEST_SIZE = 0.25


def run(ctx: StepContext) -> dict[str, Any]:
    frame = read_parquet(ctx.path(ctx.layout.dataset))
    train, test = split(ctx, frame)
    check_categories(ctx, train, test)
    write_parquet(train, ctx.path(ctx.layout.train))
    write_parquet(test, ctx.path(ctx.layout.test))
    return {"train_rows": len(train), "test_rows": len(test)}


def split(ctx: StepContext, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    settings = ctx.params["split"]
    kind = settings["kind"]
    if kind == "temporal":
        train, test = _temporal(ctx, frame, settings)
    else:
        train, test = _shuffled(ctx, frame, settings, kind)
    if train.empty or test.empty:
        raise ctx.fail("spec.split", f"the {kind} split leaves {len(train)} training and {len(test)} "
                       "test rows", "use more data or another test size")
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _shuffled(ctx: StepContext, frame: pd.DataFrame, settings: dict[str, Any],
              kind: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    size = float(settings.get("test_size", DEFAULT_TEST_SIZE))
    seed = int(settings.get("seed", 0))
    if kind == "group":
        column = settings.get("group")
        if not column or column not in frame.columns:
            raise ctx.fail("spec.split.group", f"group column {column!r} is not in the data",
                           "name a column under spec.split.group")
        splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        train_rows, test_rows = next(splitter.split(frame, groups=frame[column]))
        return frame.iloc[train_rows], frame.iloc[test_rows]
    stratify = frame[ctx.data["target"]["column"]] if kind == "stratified" else None
    if stratify is not None and stratify.value_counts().min() < 2:
        raise ctx.fail("spec.split.kind", "a stratified split needs at least 2 rows of every class",
                       "use kind: random, or get more data for the rare class")
    train, test = train_test_split(frame, test_size=size, random_state=seed, stratify=stratify)
    return train.sort_index(), test.sort_index()


def _temporal(ctx: StepContext, frame: pd.DataFrame,
              settings: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from modelops_ci.steps.timeaxis import time_key

    column = ctx.data.get("time")
    if not column or column not in frame.columns:
        raise ctx.fail("spec.data.time", f"a temporal split needs a time column; {column!r} is not in the data",
                       "name the time column under spec.data.time")
    keys = time_key(ctx, frame[column])
    ordered = frame.assign(_t=keys).sort_values("_t", kind="stable")
    periods = sorted(ordered["_t"].unique())
    if "test_periods" in settings:
        count = int(settings["test_periods"])
    else:
        count = max(1, round(len(periods) * float(settings.get("test_size", DEFAULT_TEST_SIZE))))
    if count >= len(periods):
        raise ctx.fail("spec.split.test_periods", f"{count} test periods but the data has only "
                       f"{len(periods)}", "use fewer test periods")
    cutoff = periods[-count]
    train = ordered[ordered["_t"] < cutoff].drop(columns="_t")
    test = ordered[ordered["_t"] >= cutoff].drop(columns="_t")
    return train, test


def check_categories(ctx: StepContext, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """A category the model never saw in training is refused, not silently encoded as zeros."""
    _, categorical = feature_columns(ctx.data, train)
    for index, column in enumerate(categorical):
        seen = set(train[column].dropna().astype(str))
        unseen = sorted(set(test[column].dropna().astype(str)) - seen)
        if unseen:
            at = f"spec.data.features.categorical.{index}"
            raise ctx.fail(at, f"categorical feature '{column}' has value(s) {', '.join(map(repr, unseen[:5]))} "
                           "only in the test split", "merge rare categories in the source, or use a "
                           "stratified or group split that keeps them in training")
