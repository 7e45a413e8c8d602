"""train: a scikit-learn estimator from a dotted path, inside a preprocessing pipeline built from
the declared column types; optional hyper-parameter search; per-series forecasters on lag and
calendar features."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from modelops_ci.ml import model_store, model_types, threshold
from modelops_ci.steps import forecast
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.estimators import MISSING_MODULE, MISSING_NAME, SCALE_SENSITIVE, CannotLoad, load
from modelops_ci.steps.frames import feature_columns, read_parquet

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

INPUT_EXAMPLE_ROWS = 5  # what MLflow keeps beside the model
# What a message suggests when the estimator is not of the task's kind.
_EXAMPLES = {"classifier": "sklearn.linear_model.LogisticRegression",
             "regressor": "sklearn.linear_model.Ridge"}


def run(ctx: StepContext) -> dict[str, Any]:
    train = read_parquet(ctx.path(ctx.layout.train))
    model, facts, sha256 = fit_and_save(ctx, train)
    result = {"rows": len(train), "sha256": sha256}
    from modelops_ci.ml import tracking

    trusted = list(model_store.read_card(ctx.path(ctx.layout.model_card)).get("trusted_types", []))
    params = {"model": ctx.params["model"], "split": ctx.params["split"]}
    trained = tracking.Training(model, input_example(ctx, train, facts), params, facts, sha256, trusted,
                                [ctx.layout.train])
    tracking.log_training(ctx.tracked, trained)
    return result


ThreadLimit = Callable[[], AbstractContextManager[Any]]


def fit_and_save(ctx: StepContext, train: pd.DataFrame,
                 one_thread: ThreadLimit | None = None) -> tuple[Any, dict[str, Any], str]:
    """The fitted model, its card's facts, and the sha256 of the model file written beside its card.
    The fit runs with one OpenMP thread (`one_thread`: how; by default threadpoolctl's limit,
    entered after scikit-learn is imported: it limits only the libraries loaded by then)."""
    model, facts = _fitted(ctx, train, one_thread)
    sha256 = model_store.save(model, ctx.path(ctx.layout.model), ctx.path(ctx.layout.model_card), facts,
                              extra_types=model_types.policy_types(ctx.params))
    return model, facts, sha256


def fit_and_save_model(ctx: StepContext, train: pd.DataFrame,
                       one_thread: ThreadLimit | None = None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """As `fit_and_save`, but no card file: the model, its facts and its card (with the sha256), for
    a batched series to keep in its record (each file is one more for DVC to hash, cache and push)."""
    model, facts = _fitted(ctx, train, one_thread)
    _, card = model_store.write_model(model, ctx.path(ctx.layout.model), facts,
                                      extra_types=model_types.policy_types(ctx.params))
    return model, facts, card


def _fitted(ctx: StepContext, train: pd.DataFrame, one_thread: ThreadLimit | None) -> tuple[Any, dict[str, Any]]:
    with _parameters_checked(ctx), (one_thread or _one_openmp_thread)():
        if ctx.task == "forecast":
            return forecast.fit(ctx, train, estimator(ctx))
        return fit(ctx, train)


def _one_openmp_thread() -> AbstractContextManager[Any]:
    # One OpenMP thread: on a busy CI machine, per-core threads of gradient boosting stall each
    # other (a 0.8 s fit took 37 s beside two busy processes); DVC runs one stage at a time anyway.
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[Any] = threadpool_limits(1, user_api="openmp")
    return limits


def input_example(ctx: StepContext, train: pd.DataFrame, facts: dict[str, Any]) -> Any:
    """A few rows as the model takes them (MLflow records them with the model's signature)."""
    if ctx.task == "forecast":
        import numpy as np

        z = forecast.model_scale(forecast.ordered_target(ctx, train), bool(facts.get("log_target", False)))
        start = max(facts["lags"])
        rows = [forecast.features(z, t, facts["lags"], facts["season"], bool(facts.get("trend", True)))
                for t in range(start, start + INPUT_EXAMPLE_ROWS)]
        return np.asarray(rows, dtype=float)
    return train[facts["numeric"] + facts["categorical"]].head(INPUT_EXAMPLE_ROWS)


def fit(ctx: StepContext, train: pd.DataFrame) -> tuple[Any, dict[str, Any]]:
    """The fitted model and its card's facts; with `model.threshold` set, the model decides at that
    threshold (a FixedThresholdClassifier around the pipeline) and the card records it."""
    numeric, categorical = feature_columns(ctx.data, train)
    X = train[numeric + categorical]
    y = target_vector(ctx, train)
    facts: dict[str, Any] = {"task": ctx.task, "numeric": numeric, "categorical": categorical,
                             "target": ctx.data["target"]["column"], "positive": positive_label(ctx, train)}
    setting = ctx.params["model"].get("threshold")
    if isinstance(setting, dict):
        return _fit_and_choose_threshold(ctx, X, y, facts, setting)
    pipeline = _fit_pipeline(ctx, X, y, facts)
    if setting is None:
        return pipeline, facts
    facts["threshold"] = threshold.fixed(float(setting))
    return deciding_at(pipeline, float(setting)), facts


def _fit_pipeline(ctx: StepContext, X: pd.DataFrame, y: pd.Series, facts: dict[str, Any]) -> Pipeline:
    pipeline = build_pipeline(ctx, facts["numeric"], facts["categorical"])
    search = ctx.params["model"].get("search")
    if search:
        searched = _search(ctx, pipeline, search).fit(X, y)
        pipeline = searched.best_estimator_
        facts["search"] = searched_choice(searched)
    else:
        pipeline.fit(X, y)
    return pipeline


def _fit_and_choose_threshold(ctx: StepContext, X: pd.DataFrame, y: pd.Series, facts: dict[str, Any],
                              rule: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Fit on the training rows outside a seeded, stratified validation split, and let `rule` choose
    the threshold on that split: the threshold is validated for the very model that is saved."""
    from sklearn.model_selection import train_test_split

    share = float(rule.get("validation_size", threshold.DEFAULT_VALIDATION_SIZE))
    try:
        X_fit, X_validation, y_fit, y_validation = train_test_split(
            X, y, test_size=share, stratify=y, random_state=ctx.seed)
    except ValueError as exc:
        raise ctx.fail("spec.model.threshold", f"cannot hold a validation split out of {len(y)} training rows "
                       f"({exc})", "use more data, or a larger model.threshold.validation_size") from None
    pipeline = _fit_pipeline(ctx, X_fit, y_fit, facts)
    favourable = favourable_label(ctx, facts)
    try:
        value, seen = threshold.choose(pipeline, X_validation, y_validation.to_numpy(), rule, favourable)
    except threshold.NoThreshold as exc:
        raise ctx.fail(f"spec.model.threshold.{exc.key}", str(exc),
                       "allow a higher rate, or improve the model") from None
    facts["threshold"] = threshold.chosen(value, rule, seen, share, ctx.seed)
    return deciding_at(pipeline, value), facts


def deciding_at(pipeline: Pipeline, value: float) -> Any:
    """The pipeline, predicting the positive class at a probability of at least `value` (so a model
    served from MLflow decides as evaluate does)."""
    from sklearn.model_selection import FixedThresholdClassifier

    return FixedThresholdClassifier(pipeline, threshold=value, response_method="predict_proba")


def favourable_label(ctx: StepContext, facts: dict[str, Any]) -> int:
    """The 0/1 label of the favourable class (`data.target.favorable`, by default the positive one)."""
    favorable = ctx.data["target"].get("favorable")
    return int(favorable is None or str(favorable) == facts["positive"])


def searched_choice(searched: Any) -> dict[str, Any]:
    """What the search chose, for the model card and MLflow: the params and their mean CV score."""
    chosen = {name.removeprefix("model__"): _plain(value) for name, value in sorted(searched.best_params_.items())}
    return {"best_params": chosen, "best_cv_score": float(searched.best_score_),
            "scoring": searched.scoring if isinstance(searched.scoring, str) else "the estimator's score"}


def _plain(value: Any) -> Any:
    """A JSON value for a chosen parameter (numpy scalars become Python ones; anything else, its repr)."""
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    return value if value is None or isinstance(value, bool | int | float | str) else repr(value)


def positive_label(ctx: StepContext, frame: pd.DataFrame) -> str | None:
    if ctx.task != "classification":
        return None
    positive = ctx.data["target"].get("positive")
    if positive is not None:
        return str(positive)
    return str(sorted(frame[ctx.data["target"]["column"]].dropna().astype(str).unique())[-1])


def target_vector(ctx: StepContext, frame: pd.DataFrame) -> pd.Series:
    column = frame[ctx.data["target"]["column"]]
    if ctx.task != "classification":
        return column.astype(float)
    return (column.astype(str) == positive_label(ctx, frame)).astype(int)


def build_pipeline(ctx: StepContext, numeric: list[str], categorical: list[str]) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = estimator(ctx)
    scale = type(model).__module__.startswith(SCALE_SENSITIVE)
    numeric_steps = [SimpleImputer(strategy="median")] + ([StandardScaler()] if scale else [])
    categorical_steps = [SimpleImputer(strategy="most_frequent"),
                         OneHotEncoder(handle_unknown="ignore", sparse_output=False)]
    columns = ColumnTransformer([
        ("numeric", make_pipeline(*numeric_steps), numeric),
        ("categorical", make_pipeline(*categorical_steps), categorical),
    ], verbose_feature_names_out=False)
    return Pipeline([("prepare", columns), ("model", model)])


@contextlib.contextmanager
def _parameters_checked(ctx: StepContext) -> Iterator[None]:
    """scikit-learn checks parameter values only when fitting: a bad one is the spec's mistake."""
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        yield
    except InvalidParameterError as exc:
        message = str(exc).rstrip(".")
        raise ctx.fail(_parameter_at(ctx, message), f"scikit-learn refused a parameter: {message}",
                       "fix the value") from None


def _parameter_at(ctx: StepContext, message: str) -> str:
    """The spec line of the parameter scikit-learn names in `message` ("The 'C' parameter of ...")."""
    model = ctx.params["model"]
    for at, names in (("spec.model.search.space", _search_space(ctx)),
                      ("spec.model.params", list(model.get("params") or {})),
                      ("spec.model.search", list(model.get("search") or {}))):
        for name in names:
            if f"'{name}' parameter" in message:
                return f"{at}.{name}"
    return "spec.model.params"


def estimator(ctx: StepContext) -> Any:
    """An unfitted estimator from spec.model (dotted path + params), seeded when it takes a seed."""
    dotted = str(ctx.params["model"]["estimator"])
    cls = _import(ctx, dotted)
    _check_estimator_class(ctx, dotted, cls)
    params = dict(ctx.params["model"].get("params") or {})
    accepted = set(inspect.signature(cls).parameters)
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = ctx.seed
    for at, names in (("spec.model.params", params), ("spec.model.search.space", _search_space(ctx))):
        unknown = sorted(set(names) - accepted)
        if unknown:
            raise ctx.fail(at, f"{dotted} takes no parameter(s) {', '.join(unknown)}",
                           f"its parameters: {', '.join(sorted(accepted))}")
    try:
        model = cls(**params)
    except (TypeError, ValueError) as exc:
        raise ctx.fail("spec.model.params", f"cannot create {dotted}: {exc}", "fix the parameters") from None
    if not _of_task_kind(ctx, model):
        raise _wrong_kind(ctx, dotted)
    return model


def _check_estimator_class(ctx: StepContext, dotted: str, cls: Any) -> None:
    """A scikit-learn estimator class of the task's kind (checked before its parameters are)."""
    from sklearn.base import BaseEstimator

    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
        what = f"a {type(cls).__name__}" if not inspect.isclass(cls) else "a class"
        raise ctx.fail("spec.model.estimator", f"{dotted} is {what}, not a scikit-learn estimator",
                       f"name an estimator class, e.g. {_EXAMPLES[_kind(ctx)]}")
    try:  # scikit-learn estimators take no required arguments, and their __init__ only stores them
        default = cls()
    except TypeError:
        return  # a meta-estimator (Pipeline...): its instance is checked once it is created
    if not _of_task_kind(ctx, default):
        raise _wrong_kind(ctx, dotted)


def _of_task_kind(ctx: StepContext, model: Any) -> bool:
    from sklearn.base import is_classifier, is_regressor

    return bool(is_classifier(model) if ctx.task == "classification" else is_regressor(model))


def _kind(ctx: StepContext) -> str:
    return "classifier" if ctx.task == "classification" else "regressor"


def _wrong_kind(ctx: StepContext, dotted: str) -> Exception:
    kind = _kind(ctx)
    return ctx.fail("spec.model.estimator", f"{dotted} is not a {kind}, and a {ctx.task} task needs one",
                    f"use a {kind}, e.g. {_EXAMPLES[kind]}")


def _search_space(ctx: StepContext) -> list[str]:
    search = ctx.params["model"].get("search") or {}
    return list(search.get("space") or {})


def _import(ctx: StepContext, dotted: str) -> Any:
    try:
        return load(dotted, ctx.root)
    except CannotLoad as exc:
        message, hint = _import_problem(exc)
        raise ctx.fail("spec.model.estimator", message, hint) from None


def _import_problem(exc: CannotLoad) -> tuple[str, str]:
    """The loader's failure in an estimator's words: an example path, the closest class name."""
    if exc.kind == MISSING_MODULE:
        return (f"cannot import '{exc.path.module}' ({exc.detail})",
                "check the dotted path, e.g. sklearn.linear_model.LogisticRegression")
    if exc.kind == MISSING_NAME:
        return exc.message, f"did you mean '{exc.close}'?" if exc.close else "check the class name"
    return exc.message, exc.hint


def _search(ctx: StepContext, pipeline: Pipeline, search: dict[str, Any]) -> Any:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    space = {f"model__{name}": values for name, values in search["space"].items()}
    # error_score="raise": a bad value in the space is the spec's mistake, not a warning to skip past
    common = {"cv": int(search.get("cv", 5)), "scoring": search.get("scoring"), "n_jobs": 1,
              "error_score": "raise"}
    if search["kind"] == "grid":
        return GridSearchCV(pipeline, space, **common)
    return RandomizedSearchCV(pipeline, space, n_iter=int(search.get("n_iter", 10)),
                              random_state=ctx.seed, **common)
