"""The skops model store: round trips, refusing tampered or untrusted models, never unpickling."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from modelops_ci import model_store
from modelops_ci.errors import UserError
from modelops_ci.model_store import ModelIntegrityError
from tests.conftest import run_cli

FACTS = {"task": "classification", "numeric": ["income", "debt"], "categorical": ["region"]}


def _frame(rows: int = 60) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    income, debt = rng.normal(50, 10, rows), rng.normal(20, 5, rows)
    return pd.DataFrame({"income": income, "debt": debt, "region": rng.choice(["north", "south"], rows),
                         "y": (debt - 0.3 * income + rng.normal(0, 3, rows) > 5).astype(int)})


def _linear() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([("numeric", StandardScaler(), ["income", "debt"]),
                                 ("categorical", OneHotEncoder(handle_unknown="ignore"), ["region"])])
    return Pipeline([("prepare", columns), ("model", LogisticRegression())])


def _forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=5, random_state=0)


def _fitted(model: Any) -> tuple[Any, Any]:
    frame = _frame()
    X = frame[["income", "debt", "region"]] if hasattr(model, "steps") else frame[["income", "debt"]]
    return model.fit(X, frame["y"]), X


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Path, Any, Any]:
    model, X = _fitted(_linear())
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    model_store.save(model, path, card, FACTS)
    return path, card, model, X


class HomeMadeClassifier:
    """An estimator from a local module: skops cannot know it is safe to rebuild."""

    def fit(self, X: Any, y: Any) -> HomeMadeClassifier:
        return self

    def predict(self, X: Any) -> Any:
        return [0] * len(X)


@pytest.mark.parametrize("make", [_linear, _forest], ids=["pipeline", "forest"])
def test_round_trip_predicts_identically(tmp_path: Path, make: Any) -> None:
    import numpy as np
    import skops.io as sio

    model, X = _fitted(make())
    path, card = tmp_path / "m" / "model.skops", tmp_path / "m" / "model.json"
    sha256 = model_store.save(model, path, card, FACTS)
    loaded, facts = model_store.load(path, card)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert sha256 == facts["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert facts["trusted_types"] == sorted(sio.get_untrusted_types(file=path))
    assert {k: facts[k] for k in FACTS} == FACTS


def test_loading_never_unpickles(saved: tuple[Path, Path, Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    path, card, model, X = saved

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle was used to load a model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    loaded, _ = model_store.load(path, card)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_one_flipped_byte_is_refused(saved: tuple[Path, Path, Any, Any]) -> None:
    path, card, _, _ = saved
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelIntegrityError) as refused:
        model_store.load(path, card)
    message = str(refused.value)
    assert str(path) in message and "model.json" in message
    assert "dvc checkout" in message and "retrain" in message


def test_missing_model_file_is_refused(saved: tuple[Path, Path, Any, Any]) -> None:
    path, card, _, _ = saved
    path.unlink()
    with pytest.raises(ModelIntegrityError, match="dvc checkout") as refused:
        model_store.load(path, card)
    assert str(path) in str(refused.value)


@pytest.mark.parametrize("text", [None, "{not json", "[1, 2]", '"a string"', '{"task": "classification"}'],
                         ids=["missing", "garbled", "list", "string", "no-sha256"])
def test_missing_or_garbled_card_is_refused(saved: tuple[Path, Path, Any, Any], text: str | None) -> None:
    path, card, _, _ = saved
    if text is None:
        card.unlink()
    else:
        card.write_text(text, encoding="utf-8")
    with pytest.raises(ModelIntegrityError) as refused:
        model_store.load(path, card)
    assert str(card.name) in str(refused.value)
    assert "retrain" in str(refused.value)


def test_types_added_to_the_card_are_not_trusted(tmp_path: Path) -> None:
    """A model file and card swapped together (matching sha256) still cannot bring in `eval`."""
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    blob = sio.dumps(FunctionTransformer(eval))
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    path.write_bytes(blob)
    card.write_text(json.dumps({"sha256": hashlib.sha256(blob).hexdigest(),
                                "trusted_types": ["builtins.eval"]}), encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match=r"builtins\.eval") as refused:
        model_store.load(path, card)
    assert str(path) in str(refused.value)


def test_a_card_missing_trusted_types_is_refused_cleanly(tmp_path: Path) -> None:
    model, _ = _fitted(_forest())
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    model_store.save(model, path, card, FACTS)
    facts = json.loads(card.read_text(encoding="utf-8"))
    card.write_text(json.dumps({**facts, "trusted_types": []}), encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match=r"sklearn\.tree\._tree\.Tree"):
        model_store.load(path, card)


def test_a_file_that_is_not_a_skops_archive_is_refused(tmp_path: Path) -> None:
    blob = b"not a zip archive"
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    path.write_bytes(blob)
    card.write_text(json.dumps({"sha256": hashlib.sha256(blob).hexdigest()}), encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match="retrain"):
        model_store.load(path, card)


def _home_made() -> Any:
    return HomeMadeClassifier()


def _lambda_step() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    return make_pipeline(FunctionTransformer(lambda x: x), LogisticRegression())


def _builtin_eval() -> Any:
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(eval)


@pytest.mark.parametrize(("make", "refused_type"), [
    (_home_made, "tests.test_model_store.HomeMadeClassifier"),
    (_lambda_step, "tests.test_model_store.<lambda>"),
    (_builtin_eval, "builtins.eval"),
], ids=["local-class", "lambda", "builtin-eval"])
def test_untrusted_types_are_refused_at_save(tmp_path: Path, make: Any, refused_type: str) -> None:
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    with pytest.raises(UserError) as refused:
        model_store.save(make(), path, card, FACTS)
    assert refused_type in str(refused.value)
    assert "scikit-learn/numpy/scipy" in str(refused.value)
    assert not path.exists() and not card.exists()


def test_functions_from_trusted_libraries_are_accepted(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(np.log1p).fit(np.ones((3, 2)))
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    model_store.save(model, path, card, FACTS)
    loaded, _ = model_store.load(path, card)
    np.testing.assert_array_equal(loaded.transform(np.ones((3, 2))), np.log1p(np.ones((3, 2))))


def test_evaluate_step_refuses_a_tampered_model(ml_repo: Path) -> None:
    from modelops_ci.layout import STATE_DIR, Layout
    from modelops_ci.steps import train
    from modelops_ci.steps.context import load_context
    from modelops_ci.steps.frames import read_parquet

    for step in ("ingest", "split"):
        assert run_cli("step", step, "loans", cwd=ml_repo).exit_code == 0
    ctx, layout = load_context(ml_repo, "loans"), Layout("loans")
    model, facts = train.fit(ctx, read_parquet(ml_repo / layout.train))
    model_store.save(model, ml_repo / layout.model, ml_repo / layout.model_card, facts)
    blob = bytearray((ml_repo / layout.model).read_bytes())
    blob[-100] ^= 0xFF
    (ml_repo / layout.model).write_bytes(bytes(blob))

    result = run_cli("step", "evaluate", "loans", cwd=ml_repo)
    assert result.exit_code == 1, result
    assert layout.model in result.stderr and "dvc checkout" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (ml_repo / layout.metrics).exists()
    assert not (ml_repo / STATE_DIR / "mlflow.db").exists()  # refused before anything was logged
