"""Serving test helpers: a small credit-like scikit-learn pipeline fitted on the test loans table,
its card, a served state around it, a list that stands in for the prediction log, and a model
that counts, holds and fails its calls."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from modelops_ci.serve.records import Feedback, Record
from modelops_ci.serve.state import Route, Served, ServedVersion, ServingState

NUMERIC = ["income", "debt", "age"]
CATEGORICAL = ["region"]
CARD = {"task": "classification", "numeric": NUMERIC, "categorical": CATEGORICAL, "positive": "yes",
        "target": "default"}
ROW = {"income": 50.0, "debt": 20.0, "age": 40, "region": "north"}
PREDICT = "/v1/models/loans/predict"


def fitted_loans(max_iter: int, seed: int = 0) -> Any:
    """A credit-like pipeline (imputers, one-hot, gradient boosting) fitted on the test loans table."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from tests.helpers.steps import loans

    table = loans(300)
    categories = make_pipeline(SimpleImputer(strategy="most_frequent"),
                               OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    prepare = ColumnTransformer([("numeric", SimpleImputer(strategy="median"), NUMERIC),
                                 ("categorical", categories, CATEGORICAL)], verbose_feature_names_out=False)
    model = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
    return Pipeline([("prepare", prepare), ("model", model)]).fit(table[NUMERIC + CATEGORICAL],
                                                                  (table["default"] == "yes").astype(int))


class Collected:
    """The prediction log's double: records in arrival order."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.labels: list[Feedback] = []
        self.alone: list[bool] = []  # what `write` was told of each answer: no other request in flight
        self.appended_by: list[str] = []  # the thread of each `append`

    async def write(self, records: Sequence[Record], *, alone: bool = False) -> None:
        self.records.extend(records)
        self.alone.append(alone)

    def append(self, records: Sequence[Record]) -> Future[None]:
        self.records.extend(records)
        self.appended_by.append(threading.current_thread().name)
        return _done()

    def add_feedback(self, items: Sequence[Feedback]) -> Future[None]:
        self.labels.extend(items)
        return _done()

    def roles(self, role: str) -> list[Record]:
        return [r for r in self.records if r.role == role]


def _done() -> Future[None]:
    done: Future[None] = Future()
    done.set_result(None)
    return done


class Gated:
    """A model that counts its calls, can hold them until released, and can fail."""

    def __init__(self, inner: Any, fail: bool = False, held: bool = False) -> None:
        self.inner = inner
        self.classes_ = inner.classes_
        self.calls: list[int] = []  # rows per predict_proba call
        self.release = threading.Event()
        self.fail = fail
        if not held:
            self.release.set()

    def predict(self, frame: Any) -> Any:
        return self.inner.predict(frame)

    def predict_proba(self, frame: Any) -> Any:
        self.calls.append(len(frame))
        self.release.wait(timeout=60)
        if self.fail:
            raise ValueError("the model broke")
        return self.inner.predict_proba(frame)


def version(name: str, model: Any) -> ServedVersion:
    return ServedVersion("loans", name, model, CARD)


def state_of(champion: ServedVersion | None, challenger: ServedVersion | None = None, mode: str = "canary",
             weight: int = 0) -> ServingState:
    return ServingState(Served("staging", {"loans": Route("loans", champion, challenger, mode, weight)}))  # type: ignore[arg-type]


