"""Every generated stage depends on every spec field and file its step reads (issue 11, item 1).

One declaration per step and gate (`Reads`, in the STEPS and GATES tables) is what `compile` writes as
the stage's `params:` and `deps:` and what the step is handed at run time: a step sees no params its
stage does not list, so DVC cannot keep a result that a changed field would change. Plug-in code in the
repository is a dependency of the stage that imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_ci.steps import STEPS
from modelops_ci.steps.context import load_context
from tests.helpers.examples import DECISIONS, PIPELINES, compile_ok
from tests.helpers.repos import write

PARAMS = "compiled/credit-risk/params.yaml"


def stages_of(repo: Path, name: str) -> dict[str, Any]:
    stages: dict[str, Any] = yaml.safe_load((repo / f"compiled/{name}/dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return stages


def params_of(stage: dict[str, Any]) -> list[str]:
    [listed] = stage["params"]
    keys: list[str] = next(iter(listed.values()))
    return keys


def test_the_fairness_stage_depends_on_the_target_classes_it_judges(example_repo: Path) -> None:
    compile_ok(example_repo)

    fairness = stages_of(example_repo, "credit-risk")["gate-fairness"]

    # favorable and positive live under data.target: removing favorable must re-run the gate
    assert params_of(fairness) == ["gates.fairness", "task", "data.target", "data.sensitive", "split.seed"]
    # the card names the class the model learnt as positive, which `favorable` is compared with
    assert fairness["deps"] == ["reports/credit-risk/predictions.parquet", "models/credit-risk/model.json"]


def test_each_stage_lists_the_fields_its_step_reads(example_repo: Path) -> None:
    compile_ok(example_repo)
    stages = stages_of(example_repo, "credit-risk")

    assert params_of(stages["ingest"]) == ["task", "data"]
    assert params_of(stages["split"]) == ["task", "data.target.column", "data.features", "data.sensitive", "split"]
    assert params_of(stages["train"]) == ["task", "family", "data.target.column", "data.target.positive",
                                          "data.target.favorable", "data.features", "data.sensitive", "model",
                                          "split"]
    assert params_of(stages["gate-drift"]) == ["gates.drift", "task", "data.target.column", "data.features",
                                               "data.sensitive", "drift", "split.seed"]
    assert params_of(stages["gate-performance"]) == ["gates.performance", "task", "split.seed"]
    assert stages["gate-performance"]["deps"] == ["reports/credit-risk/predictions.parquet",
                                                  "models/credit-risk/model.json"]  # forecasts read its MASE scale


@pytest.mark.parametrize("name", [*PIPELINES, *DECISIONS])
def test_a_step_is_handed_exactly_the_params_its_stage_depends_on(example_repo: Path, name: str) -> None:
    from modelops_ci.gates import gate_kind
    from modelops_ci.steps import steps_of

    compile_ok(example_repo)
    full = load_context(example_repo, name)
    steps = steps_of(full.task)

    for stage, body in stages_of(example_repo, name).items():
        if stage == "gates":
            continue
        kind = stage.removeprefix("gate-").replace("-", "_")
        declared = steps[stage].reads if stage in steps else gate_kind(kind, full.task).reads
        handed = full.reading(declared).params
        assert sorted(_leaves_listed(handed, params_of(body))) == sorted(params_of(body)), stage
        assert _outside(handed, params_of(body)) == [], f"{stage} sees params its stage does not list"


def _leaves_listed(tree: dict[str, Any], keys: list[str]) -> list[str]:
    return [key for key in keys if _get(tree, key) is not None]


def _outside(tree: dict[str, Any], keys: list[str], prefix: str = "") -> list[str]:
    """Paths in `tree` that no listed key covers."""
    found = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path in keys or value == {}:  # an empty section: kept for a declared key it does not hold
            continue
        if isinstance(value, dict) and any(k.startswith(f"{path}.") for k in keys):
            found += _outside(value, keys, f"{path}.")
        else:
            found.append(path)
    return found


def _get(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree


def test_a_declared_key_that_is_not_set_leaves_its_section_empty_and_nothing_else_shows() -> None:
    from modelops_ci.steps.reads import Reads

    params = {"task": "forecast", "model": {"estimator": "x.Y", "lags": [1]}, "data": {"target": {"column": "y"}}}

    handed = Reads(params=("task", "model.horizon", "data.time", "split.seed")).select(params)

    assert handed == {"task": "forecast", "model": {}, "data": {}}


def test_every_place_a_spec_names_code_is_some_steps_code_dependency() -> None:
    from modelops_ci.spec.resolve import CALLABLE_FIELDS
    from modelops_ci.steps import DECISION_STEPS

    declared = {key for entry in [*STEPS.values(), *DECISION_STEPS.values()] for key in entry.reads.code}

    assert {".".join(path) for path in CALLABLE_FIELDS} <= declared


# -- plug-in code --------------------------------------------------------------------------------

PLUGGED = """\
apiVersion: modelops/v1
kind: Pipeline
metadata: {name: plugged}
imports: {loader: loaders.bank:load}
spec:
  task: classification
  data:
    source: {plugin: loader, args: {rows: 200}}
    target: {column: y}
    transforms: [loaders.clean.tidy, sklearn.utils.shuffle]
  split: {kind: random, test_size: 0.2, seed: 3}
  model: {estimator: models_here.Forest}
  metrics: [roc_auc]
"""


def test_plugin_modules_in_the_repository_are_dependencies_of_the_stages_that_import_them(empty_repo: Path) -> None:
    write(empty_repo, "loaders/__init__.py", "")
    write(empty_repo, "loaders/bank.py", "def load(rows): ...\n")
    write(empty_repo, "loaders/clean.py", "def tidy(frame): return frame\n")
    write(empty_repo, "models_here.py", "from sklearn.ensemble import RandomForestClassifier as Forest\n")
    write(empty_repo, "pipelines/plugged.yaml", PLUGGED)

    compile_ok(empty_repo)
    stages = stages_of(empty_repo, "plugged")

    # found without importing them; sklearn, installed outside the repository, is no dependency
    assert stages["ingest"]["deps"] == ["loaders/__init__.py", "loaders/bank.py", "loaders/clean.py"]
    assert stages["train"]["deps"] == ["data/plugged/train.parquet", "models_here.py"]
    assert "models_here.py" in stages["evaluate"]["deps"]  # evaluate runs the model's code too


def test_each_of_several_source_files_is_a_dependency_of_ingest(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/plugged.yaml", PLUGGED.replace(
        "source: {plugin: loader, args: {rows: 200}}", "source: [{path: data/2023.csv}, {path: data/2022.csv}]"))

    compile_ok(empty_repo)

    # loaders.clean is not in this repository: an installed module is not a dependency
    assert stages_of(empty_repo, "plugged")["ingest"]["deps"] == ["data/2022.csv", "data/2023.csv"]


def test_a_plugin_in_a_folder_without_init_is_found_too(empty_repo: Path) -> None:
    write(empty_repo, "plugins/loans.py", "def load(rows): ...\n")
    write(empty_repo, "pipelines/plugged.yaml", PLUGGED.replace("loaders.bank:load", "plugins.loans:load")
          .replace("transforms: [loaders.clean.tidy, sklearn.utils.shuffle]", "transforms: []")
          .replace("models_here.Forest", "sklearn.ensemble.RandomForestClassifier"))

    compile_ok(empty_repo)

    assert stages_of(empty_repo, "plugged")["ingest"]["deps"] == ["plugins/loans.py"]
    assert "deps" not in stages_of(empty_repo, "plugged")["train"] or stages_of(empty_repo, "plugged")["train"][
        "deps"] == ["data/plugged/train.parquet"]
