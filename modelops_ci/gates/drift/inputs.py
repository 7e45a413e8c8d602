"""What the drift gate reads: the reference (a stored profile, or data profiled here), the current
data, and the pipeline's model with its held-out scores. A path that cannot be read is `CannotEvaluate`,
naming the `drift.` key to fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.gates import profile
from modelops_ci.gates.drift.multivariate import CLASSIFIER_ROWS, Predictor, Unavailable
from modelops_ci.gates.drift.univariate import RAW_GRID
from modelops_ci.gates.profile import NotNumericError, Profile
from modelops_ci.gates.result import CannotEvaluate

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.context import GateContext


def reference_profile(ctx: GateContext, grid: int | None = RAW_GRID) -> tuple[Profile, dict[str, str]]:
    """The pipeline's drift reference as a profile: read from a stored profile, or built from data."""
    where = str((ctx.params.get("drift") or {}).get("reference", "train"))
    if where.endswith(".npz"):
        path = _repo_file(ctx, where, "reference")
        try:
            stored = profile.load(path)
        except CannotEvaluate as exc:
            raise exc.within("drift.reference") from None
        numeric, categorical = _features(ctx, None, stored)
        absent = [n for n in [*numeric, *categorical] if n not in stored.features]
        if absent:
            raise CannotEvaluate(f"drift.reference: the profile {where} has no {', '.join(absent)}: rebuild it")
        kept = Profile(stored.rows, {n: stored.numeric[n] for n in numeric},
                       {n: stored.categorical[n] for n in categorical}, stored.sample)
        return kept, {"reference": where}
    frame = ctx.frame("train") if where == "train" else _read_table(ctx, where, "reference")
    if where != "train":
        frame = _filtered(ctx, frame)
    numeric, categorical = _features(ctx, frame, None)
    absent = [n for n in [*numeric, *categorical] if n not in frame.columns]
    if absent:
        raise CannotEvaluate(f"columns missing from the reference data: {', '.join(absent)}")
    try:
        built = profile.build(frame, numeric, categorical, grid=grid, sample_rows=CLASSIFIER_ROWS,
                              seed=ctx.step.seed)
    except NotNumericError as exc:
        raise CannotEvaluate(f"the reference data's column {exc}: declare it categorical") from None
    return built, {"reference": ctx.step.layout.train if where == "train" else where}


def current_data(ctx: GateContext) -> tuple[pd.DataFrame, str]:
    """The current data and where it was read: `drift.current` (a file, or a folder's newest batch),
    else the test split."""
    where = (ctx.params.get("drift") or {}).get("current")
    if where is None:
        return ctx.frame("test"), ctx.step.layout.test
    folder = ctx.step.path(str(where))
    if folder.is_dir():  # a folder of batches: the newest one, as `monitor` reads it
        from modelops_ci.steps.frames import newest_batch

        newest = newest_batch(folder)
        if newest is not None:
            where = newest.relative_to(ctx.step.root).as_posix()
    return _filtered(ctx, _read_table(ctx, str(where), "current")), str(where)


def _filtered(ctx: GateContext, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows `drift.filter` keeps of a reference or current data file (the splits are already
    filtered by data.filter), chosen as ingest chooses the training rows."""
    from modelops_ci.steps.context import DataError
    from modelops_ci.steps.frames import filter_rows

    chosen = (ctx.params.get("drift") or {}).get("filter") or {}
    try:
        return filter_rows(ctx.step, frame, chosen, "spec.drift.filter")
    except DataError as exc:
        raise CannotEvaluate(str(exc)) from None


def _features(ctx: GateContext, frame: pd.DataFrame | None, stored: Profile | None) -> tuple[list[str], list[str]]:
    """(numeric, categorical) features to compare: drift.features, else the data's, else all profiled."""
    import pandas as pd

    from modelops_ci.steps.frames import declared_features, feature_columns

    data = ctx.params.get("data") or {}
    chosen = list((ctx.params.get("drift") or {}).get("features") or [])
    if stored is not None:
        declared_numeric, declared_categorical = declared_features(data)
        numeric, categorical = (declared_numeric, declared_categorical) if declared_numeric or declared_categorical \
            else (list(stored.numeric), list(stored.categorical))
    else:
        assert frame is not None
        numeric, categorical = feature_columns(data, frame)
        if not numeric and not categorical and ctx.params.get("task") == "forecast":
            numeric = [data["target"]["column"]]  # a univariate series: its own values are what can drift
    if not chosen:
        return numeric, categorical

    def is_numeric(name: str) -> bool:
        if name in numeric or (stored is not None and name in stored.numeric):
            return True
        if name in categorical or stored is not None or frame is None or name not in frame:
            return False
        return bool(pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]))

    return [n for n in chosen if is_numeric(n)], [n for n in chosen if not is_numeric(n)]


def _repo_file(ctx: GateContext, relative: str, key: str) -> Path:
    path = ctx.step.path(relative)
    if not path.is_file():
        raise CannotEvaluate(f"drift.{key}: {relative} does not exist: check the path (relative to the repo root)")
    return path


def _read_table(ctx: GateContext, relative: str, key: str) -> pd.DataFrame:
    import pandas as pd

    path = _repo_file(ctx, relative, key)
    readers = {".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".csv": pd.read_csv}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise CannotEvaluate(f"drift.{key}: {relative}: use a .parquet or .csv file"
                             + (" (or a .npz drift profile)" if key == "reference" else ""))
    try:
        frame: pd.DataFrame = reader(path)
    except (OSError, ValueError) as exc:
        raise CannotEvaluate(f"drift.{key}: {relative} cannot be read: {exc}") from None
    return frame


def predictor(ctx: GateContext, settings: dict[str, Any]) -> Predictor | Unavailable | None:
    """The trained model with its held-out scores, or why prediction drift cannot be tested.

    Scores on the training rows are no reference: the model learned those rows, so its scores there
    are more extreme than on any new data (on credit-risk a no-drift split looked shifted, p < 1e-6).
    The reference is the evaluate step's predictions on the test split, so the current data must be
    another batch (`drift.current`).
    """
    if settings.get("prediction") is False:
        return None
    if ctx.params.get("task") == "forecast":
        return Unavailable("a forecast has no per-row scores to compare")
    if not (ctx.params.get("drift") or {}).get("current"):
        return Unavailable("the current data is the test split, whose held-out predictions are the reference; "
                           "prediction drift compares them with a new batch (drift.current)")
    layout = ctx.step.layout
    for needed in (layout.model, layout.predictions):
        if not ctx.step.path(needed).is_file():
            return Unavailable(f"{needed} does not exist: run the pipeline up to the evaluate stage first")
    from modelops_ci.errors import ModelopsError
    from modelops_ci.ml import model_store, model_types

    try:
        facts = ctx.card()
        model = model_store.load_carded(ctx.step.path(layout.model), facts, Path(ctx.card_file).name,
                                        extra_types=model_types.policy_types(ctx.params))
    except ModelopsError as exc:
        return Unavailable(str(exc), broken=True)
    column = "y_score" if ctx.params["task"] == "classification" else "y_pred"
    predictions = ctx.frame("predictions")
    if column not in predictions:
        return Unavailable(f"{layout.predictions} has no {column} column: re-run the evaluate stage", broken=True)
    return Predictor(model, [*facts.get("numeric", []), *facts.get("categorical", [])], str(ctx.params["task"]),
                     predictions[column].to_numpy(dtype=float))
