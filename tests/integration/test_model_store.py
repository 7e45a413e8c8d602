"""The skops model store: round trips, refusing tampered or untrusted models, never unpickling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.ml import model_store
from modelops_ci.ml.model_store import ModelIntegrityError
from tests.helpers.cli import run_cli
from tests.helpers.skops_files import CHECK_ARRAY, beside_a_card, skops_archive, skops_schema

# -- files crafted to run code or to break the loader -------------------------------------------


def _calling(module: str, name: str, *args: Any) -> bytes:
    """A skops file that skops rebuilds by calling `module.name(*args)`: the way it rebuilds an
    object from its constructor (ConstructorFromReduceNode)."""
    import skops.io as sio

    arguments = skops_schema(sio.dumps(tuple(args)))
    meta = {key: arguments.pop(key) for key in ("protocol", "_skops_version")}
    return skops_archive({"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
                     "content": arguments, "__id__": 1, **meta})


@pytest.mark.parametrize(("module", "name"), [
    ("numpy.testing._private.utils", "runstring"),  # exec(string, namespace)
    ("sklearn.utils._testing", "assert_run_python_script_without_output"),  # runs a script
], ids=["numpy-exec", "sklearn-script"])
def test_a_function_that_runs_code_is_never_called_though_the_card_trusts_it(
        tmp_path: Path, module: str, name: str) -> None:
    import skops.io as sio

    marker = tmp_path / "code-ran"
    code = f"open({str(marker)!r}, 'w').write('ran')"
    args = (code, {}) if name == "runstring" else (code,)
    blob = _calling(module, name, *args)
    path, card = beside_a_card(tmp_path, blob)
    assert json.loads(card.read_text(encoding="utf-8"))["trusted_types"] == [f"{module}.{name}"]

    with pytest.raises(ModelIntegrityError) as refused:
        model_store.load(path, card)
    message = str(refused.value)
    assert f"{module}.{name}" in message and str(path) in message
    assert "nothing was built" in message and "spec.models.trusted_types" in message
    assert not marker.exists()
    sio.loads(blob, trusted=[f"{module}.{name}"])  # what trusting the card's list would have done
    assert marker.read_text(encoding="utf-8") == "ran"


# -- through the CLI ----------------------------------------------------------------------------


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
    assert result.exit_code == 2, result
    assert layout.model in result.stderr and "dvc checkout" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (ml_repo / layout.metrics).exists()
    assert not (ml_repo / STATE_DIR / "mlflow.db").exists()  # refused before anything was logged

    marker = ml_repo / "code-ran"
    crafted = _calling("numpy.testing._private.utils", "runstring", f"open({str(marker)!r}, 'w')", {})
    beside_a_card((ml_repo / layout.model).parent, crafted)
    result = run_cli("step", "evaluate", "loans", cwd=ml_repo)
    assert result.exit_code == 2, result
    assert "numpy.testing._private.utils.runstring" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


TRUSTING_POLICY = f"""\
apiVersion: modelops/v1
kind: Policy
metadata: {{name: trusting}}
spec:
  selector: {{labels: {{domain: test}}}}
  stages: [dev]
  models:
    trusted_types: [{CHECK_ARRAY}]
"""


def test_a_type_the_policy_adds_reaches_the_steps_through_the_compiled_params(ml_repo: Path) -> None:
    import yaml
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import check_array

    from modelops_ci.layout import Layout
    from modelops_ci.ml import model_types
    from modelops_ci.steps import train
    from modelops_ci.steps.context import load_context
    from modelops_ci.steps.frames import read_parquet

    (ml_repo / "policies").mkdir()
    (ml_repo / "policies" / "trusting.yaml").write_text(TRUSTING_POLICY, encoding="utf-8")
    assert run_cli("compile", cwd=ml_repo).exit_code == 0
    layout = Layout("loans")
    stages = yaml.safe_load((ml_repo / layout.stages).read_text(encoding="utf-8"))["stages"]
    for stage in ("train", "evaluate"):
        assert "governance.trusted_types" in stages[stage]["params"][0][layout.params]
    for step in ("ingest", "split"):
        assert run_cli("step", step, "loans", cwd=ml_repo).exit_code == 0
    ctx = load_context(ml_repo, "loans")
    assert model_types.policy_types(ctx.params) == (CHECK_ARRAY,)
    model, facts = train.fit(ctx, read_parquet(ml_repo / layout.train))
    model.steps.insert(1, ("check", FunctionTransformer(check_array)))
    model_store.save(model, ml_repo / layout.model, ml_repo / layout.model_card, facts,
                     extra_types=model_types.policy_types(ctx.params))

    result = run_cli("step", "evaluate", "loans", cwd=ml_repo)
    assert result.exit_code == 0, result
    assert (ml_repo / layout.metrics).is_file()
