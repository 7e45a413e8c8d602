"""The skops model store: round trips, refusing tampered or untrusted models, never unpickling."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.errors import UserError
from modelops_ci.ml import model_store
from modelops_ci.ml.model_store import ModelIntegrityError
from tests.helpers.skops_files import CHECK_ARRAY, FACTS, beside_a_card, skops_archive, skops_schema


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


@pytest.mark.parametrize("text", [None, "{not json", "[1, 2]", '"a string"', '{"task": "classification"}',
                                  "[" * 100_000], ids=["missing", "garbled", "list", "string", "no-sha256", "nested"])
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


def test_trust_is_never_read_from_the_card(tmp_path: Path) -> None:
    """A card listing no types loads a forest (its Tree is audited); the list is information only."""
    model, X = _fitted(_forest())
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    model_store.save(model, path, card, FACTS)
    facts = json.loads(card.read_text(encoding="utf-8"))
    assert facts["trusted_types"] == ["sklearn.tree._tree.Tree"]
    card.write_text(json.dumps({**facts, "trusted_types": []}), encoding="utf-8")
    loaded, _ = model_store.load(path, card)
    assert (loaded.predict(X) == model.predict(X)).all()


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
    (_home_made, f"{__name__}.HomeMadeClassifier"),
    (_lambda_step, f"{__name__}.<lambda>"),
    (_builtin_eval, "builtins.eval"),
], ids=["local-class", "lambda", "builtin-eval"])
def test_untrusted_types_are_refused_at_save(tmp_path: Path, make: Any, refused_type: str) -> None:
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    with pytest.raises(UserError) as refused:
        model_store.save(make(), path, card, FACTS)
    assert refused_type in str(refused.value)
    assert "outside the trusted list" in str(refused.value)
    assert "spec.models.trusted_types" in str(refused.value)
    assert not path.exists() and not card.exists()


def test_functions_from_trusted_libraries_are_accepted(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(np.log1p).fit(np.ones((3, 2)))
    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    model_store.save(model, path, card, FACTS)
    loaded, _ = model_store.load(path, card)
    np.testing.assert_array_equal(loaded.transform(np.ones((3, 2))), np.log1p(np.ones((3, 2))))


# -- files crafted to run code or to break the loader -------------------------------------------


def _with_schema(blob: bytes, schema: Any) -> bytes:
    """The archive `blob` with its schema.json replaced (its arrays kept)."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        arrays = {name: archive.read(name) for name in archive.namelist() if name != "schema.json"}
    return skops_archive(schema, **arrays)


def _checking_transformer() -> Any:
    """A model holding a function from scikit-learn that is not on the audited list."""
    import numpy as np
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import check_array

    return FunctionTransformer(check_array).fit(np.ones((3, 2)))


def test_a_type_merely_under_sklearn_is_refused_at_load_and_at_save(tmp_path: Path) -> None:
    import skops.io as sio

    path, card = beside_a_card(tmp_path, sio.dumps(_checking_transformer()))
    assert json.loads(card.read_text(encoding="utf-8"))["trusted_types"] == [CHECK_ARRAY]
    with pytest.raises(ModelIntegrityError, match=re.escape(CHECK_ARRAY)):
        model_store.load(path, card)
    with pytest.raises(UserError, match=re.escape(CHECK_ARRAY)):
        model_store.save(_checking_transformer(), tmp_path / "new.skops", tmp_path / "new.json", FACTS)
    assert not (tmp_path / "new.skops").exists()


def test_a_type_the_policy_adds_is_saved_and_loaded(tmp_path: Path) -> None:
    import numpy as np

    path, card = tmp_path / "model.skops", tmp_path / "model.json"
    model_store.save(_checking_transformer(), path, card, FACTS, extra_types=[CHECK_ARRAY])
    loaded, facts = model_store.load(path, card, extra_types=[CHECK_ARRAY])
    np.testing.assert_array_equal(loaded.transform(np.ones((3, 2))), np.ones((3, 2)))
    assert facts["trusted_types"] == [CHECK_ARRAY]
    with pytest.raises(ModelIntegrityError, match="outside the trusted list"):
        model_store.load(path, card)  # the same file, under a policy that does not add it


def _truncated(blob: bytes) -> bytes:
    return blob[: len(blob) // 2]


def _array_flipped(blob: bytes) -> bytes:
    """One byte flipped inside the compressed data of an array."""
    import io
    import struct
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        array = next(info for info in archive.infolist() if info.filename.endswith(".npy"))
    name_length, extra_length = struct.unpack("<HH", blob[array.header_offset + 26:array.header_offset + 30])
    data = array.header_offset + 30 + name_length + extra_length
    damaged = bytearray(blob)
    damaged[data + array.compress_size // 2] ^= 0xFF
    return bytes(damaged)


def _wrong_arguments(blob: bytes) -> bytes:
    """The Tree rebuilt with no constructor arguments."""
    schema = skops_schema(blob)
    schema["content"]["content"]["tree_"]["__reduce__"]["args"]["content"] = []
    return _with_schema(blob, schema)


def _unknown_loader(blob: bytes) -> bytes:
    schema = skops_schema(blob)
    schema["__loader__"] = "NoSuchNode"
    return _with_schema(blob, schema)


def _not_a_schema(blob: bytes) -> bytes:
    return _with_schema(blob, b"{not json")


@pytest.mark.parametrize("damage", [_truncated, _array_flipped, _wrong_arguments, _unknown_loader, _not_a_schema],
                         ids=["truncated-zip", "array-crc", "wrong-constructor-args", "unknown-loader",
                              "schema-not-json"])
def test_a_damaged_file_whose_card_matches_is_a_clear_error(tmp_path: Path, damage: Any) -> None:
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=2).fit([[0.0], [1.0], [2.0]], [0, 1, 1])
    path, card = beside_a_card(tmp_path, damage(sio.dumps(tree)), listed=[])
    with pytest.raises(ModelIntegrityError) as refused:
        model_store.load(path, card)
    assert str(path) in str(refused.value)
    assert "dvc checkout" in str(refused.value) and "retrain" in str(refused.value)


def test_a_schema_that_unpacks_too_far_is_refused_unread(tmp_path: Path) -> None:
    bomb = b" " * (model_store.MAX_SCHEMA_BYTES + 1) + b"{}"
    blob = skops_archive(bomb)
    assert len(blob) < model_store.MAX_SCHEMA_BYTES // 100
    path, card = beside_a_card(tmp_path, blob, listed=[])
    with pytest.raises(ModelIntegrityError, match=r"schema\.json unpacks to") as refused:
        model_store.load(path, card)
    assert str(path) in str(refused.value)


def test_an_archive_declaring_more_than_a_model_may_take_is_refused(tmp_path: Path) -> None:
    import struct

    blob = bytearray(skops_archive({}, **{"1.npy": b"tiny"}))
    entry = blob.rindex(b"PK\x01\x02")  # the central directory header of the last entry, 1.npy
    blob[entry + 24:entry + 28] = struct.pack("<I", model_store.MAX_ARCHIVE_BYTES + 1)
    path, card = beside_a_card(tmp_path, bytes(blob), listed=[])
    with pytest.raises(ModelIntegrityError, match="the archive unpacks to"):
        model_store.load(path, card)
