"""train: a scikit-learn estimator from a dotted path, inside a preprocessing pipeline built from
the declared column types; optional hyper-parameter search; per-series forecasters on lag and
calendar features."""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from modelops_ci import model_store
from modelops_ci.steps import forecast
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.frames import feature_columns, read_parquet

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

# Families whose fit depends on feature scale; tree models do not need scaling.
SCALE_SENSITIVE = ("sklearn.linear_model", "sklearn.svm", "sklearn.neighbors", "sklearn.neural_network")


def run(ctx: StepContext) -> dict[str, Any]:
    train = read_parquet(ctx.path(ctx.layout.train))
    if ctx.task == "forecast":
        model, facts = forecast.fit(ctx, train, estimator(ctx))
    else:
        model, facts = fit(ctx, train)
    sha256 = model_store.save(model, ctx.path(ctx.layout.model), ctx.path(ctx.layout.model_card), facts)
    result = {"rows": len(train), "sha256": sha256}
    from modelops_ci import tracking

    tracking.log_training(ctx, model, train, facts, sha256)
    return result


def fit(ctx: StepContext, train: pd.DataFrame) -> tuple[Pipeline, dict[str, Any]]:
    numeric, categorical = feature_columns(ctx.data, train)
    X = train[numeric + categorical]
    y = target_vector(ctx, train)
    pipeline = build_pipeline(ctx, numeric, categorical)
    search = ctx.params["model"].get("search")
    if search:
        pipeline = _search(ctx, pipeline, search).fit(X, y).best_estimator_
    else:
        pipeline.fit(X, y)
    facts = {"task": ctx.task, "numeric": numeric, "categorical": categorical,
             "target": ctx.data["target"]["column"], "positive": positive_label(ctx, train)}
    return pipeline, facts


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


def estimator(ctx: StepContext) -> Any:
    """An unfitted estimator from spec.model (dotted path + params), seeded when it takes a seed."""
    from sklearn.base import is_classifier, is_regressor

    dotted = str(ctx.params["model"]["estimator"])
    cls = _import(ctx, dotted)
    params = dict(ctx.params["model"].get("params") or {})
    accepted = set(inspect.signature(cls).parameters) if inspect.isclass(cls) else set()
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = ctx.seed
    unknown = sorted(set(params) - accepted) if accepted else []
    if unknown:
        raise ctx.fail("spec.model.params", f"{dotted} takes no parameter(s) {', '.join(unknown)}",
                       f"its parameters: {', '.join(sorted(accepted))}")
    try:
        model = cls(**params)
    except (TypeError, ValueError) as exc:
        raise ctx.fail("spec.model.params", f"cannot create {dotted}: {exc}", "fix the parameters") from None
    wanted = is_classifier if ctx.task == "classification" else is_regressor
    if not (hasattr(model, "fit") and hasattr(model, "predict")) or not wanted(model):
        kind = "classifier" if ctx.task == "classification" else "regressor"
        raise ctx.fail("spec.model.estimator", f"{dotted} is not a scikit-learn {kind}",
                       f"use a {kind} with fit() and predict()")
    return model


def _import(ctx: StepContext, dotted: str) -> Any:
    module_name, _, attr = dotted.partition(":")
    if not attr:
        module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ctx.fail("spec.model.estimator", f"cannot import '{module_name}' ({exc})",
                       "check the dotted path, e.g. sklearn.linear_model.LogisticRegression") from None
    except AttributeError:
        raise ctx.fail("spec.model.estimator", f"'{module_name}' has no '{attr}'",
                       "check the class name") from None


def _search(ctx: StepContext, pipeline: Pipeline, search: dict[str, Any]) -> Any:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    space = {f"model__{name}": values for name, values in search["space"].items()}
    common = {"cv": int(search.get("cv", 5)), "scoring": search.get("scoring"), "n_jobs": 1}
    if search["kind"] == "grid":
        return GridSearchCV(pipeline, space, **common)
    return RandomizedSearchCV(pipeline, space, n_iter=int(search.get("n_iter", 10)),
                              random_state=ctx.seed, **common)
