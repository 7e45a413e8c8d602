"""split: the dataset → train and test tables, seeded; random, stratified, temporal or by group.

A temporal split never lets the test period leak into training: every test row is later than
every training row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_ci.steps.context import StepContext
from modelops_ci.steps.frames import (
    declared_features,
    feature_columns,
    read_parquet,
    require_column,
    write_parquet,
)

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_TEST_SIZE = 0.25


def run(ctx: StepContext) -> dict[str, Any]:
    frame = read_parquet(ctx.path(ctx.layout.dataset))
    train, test = checked_split(ctx, frame)
    write_parquet(train, ctx.path(ctx.layout.train))
    write_parquet(test, ctx.path(ctx.layout.test))
    return {"train_rows": len(train), "test_rows": len(test)}


def checked_split(ctx: StepContext, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test), refused when a side lacks a class or a category the other has."""
    train, test = split(ctx, frame)
    if ctx.task == "classification":
        check_classes(ctx, train, test)
    check_categories(ctx, train, test)
    return train, test


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
        if not column:
            raise ctx.fail("spec.split.kind", "a group split needs a group column",
                           "name a column under spec.split.group")
        require_column(ctx, frame, column, "spec.split.group")
        splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        try:
            train_rows, test_rows = next(splitter.split(frame, groups=frame[column]))
        except ValueError as exc:  # sklearn's word on a test size that fits no group
            raise ctx.fail("spec.split.test_size", f"cannot split {len(frame)} rows: {exc}",
                           "use another test size") from None
        return frame.iloc[train_rows], frame.iloc[test_rows]
    stratify = frame[ctx.data["target"]["column"]] if kind == "stratified" else None
    if stratify is not None and stratify.value_counts().min() < 2:
        rare = stratify.value_counts().idxmin()
        raise ctx.fail("spec.split.kind", f"a stratified split needs at least 2 rows of every class; "
                       f"'{stratify.name}' is {rare!r} in 1 row", "get more data for the rare class")
    try:
        train, test = train_test_split(frame, test_size=size, random_state=seed, stratify=stratify)
    except ValueError as exc:  # e.g. fewer test rows than classes to stratify
        raise ctx.fail("spec.split.test_size", f"cannot split {len(frame)} rows: {exc}",
                       "use another test size") from None
    return train.sort_index(), test.sort_index()


def _temporal(ctx: StepContext, frame: pd.DataFrame,
              settings: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from modelops_ci.steps.timeaxis import time_key

    column = ctx.data.get("time")
    if not column:
        raise ctx.fail("spec.split.kind", "a temporal split needs a time column",
                       "name the time column under spec.data.time")
    require_column(ctx, frame, column, "spec.data.time")
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


def check_classes(ctx: StepContext, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Both sides need both classes: a classifier cannot learn from one, nor be scored on one."""
    column = ctx.data["target"]["column"]
    for part, frame in (("training", train), ("test", test)):
        classes = sorted(frame[column].astype(str).unique())
        if len(classes) < 2:
            raise ctx.fail("spec.split", f"the {part} split has one class of '{column}' only "
                           f"({', '.join(classes)})", "get more rows of the rare class" if
                           ctx.params["split"]["kind"] == "stratified" else "use kind: stratified")


def check_categories(ctx: StepContext, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """A category the model never saw in training is refused, not silently encoded as zeros."""
    _, categorical = feature_columns(ctx.data, train)
    declared = bool(declared_features(ctx.data)[1])
    for index, column in enumerate(categorical):
        seen = set(train[column].dropna().astype(str))
        unseen = sorted(set(test[column].dropna().astype(str)) - seen)
        if unseen:
            at = f"spec.data.features.categorical.{index}" if declared else "spec.data.features"
            values = ", ".join(map(repr, unseen[:5]))
            raise ctx.fail(at, f"categorical feature '{column}' has value(s) {values} only in the test "
                           "split", "merge rare categories in the source, or use a stratified or group "
                           "split that keeps them in training")
