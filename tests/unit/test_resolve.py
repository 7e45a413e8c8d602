"""The resolver: extends/with templates, placeholders, imports, foreach and when."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.errors import SpecError
from modelops_ci.spec.model import Pipeline
from modelops_ci.spec.nodes import Mark, locate, plain
from modelops_ci.spec.resolve import Resolver, read_document
from tests.helpers.paths import PROJECT
from tests.helpers.repos import write
from tests.helpers.specs import HEAD, SHOWN, SPEC

TEMPLATE = """\
apiVersion: modelops/v1
kind: PipelineTemplate
metadata:
  name: base
parameters:
  seed:
    type: integer
    default: 42
  test_size:
    type: number
spec:
  task: classification
  split:
    kind: random
    seed: ${params.seed}
    test_size: ${params.test_size}
  metrics: [accuracy]
"""
CHILD_SPEC = """\
spec:
  data:
    source:
      path: data/train.csv
    target:
      column: y
  model:
    estimator: sklearn.linear_model.LogisticRegression
"""


def pipeline(top: str = "", extra: str = "", spec: str = SPEC) -> str:
    """A valid pipeline with `top` before its spec and `extra` appended to the spec."""
    return HEAD + top + spec + extra


def at(text: str, needle: str) -> str:
    """`line:col` of the first `needle` in `text`: where an error about it must point."""
    index = text.index(needle)
    line = text.count("\n", 0, index) + 1
    col = index - text.rfind("\n", 0, index)
    return f"{line}:{col}"


def resolve(repo: Path, text: str | None = None, env: dict[str, str] | None = None,
            shown: str = SHOWN) -> list[Pipeline]:
    if text is not None:
        write(repo, shown, text)
    document = read_document(repo / shown, shown)
    return Resolver(repo.resolve(), env or {}).pipelines(document)


def problems(repo: Path, text: str | None = None, env: dict[str, str] | None = None,
             shown: str = SHOWN) -> list[str]:
    with pytest.raises(SpecError) as info:
        resolve(repo, text, env, shown)
    return [str(p) for p in info.value.problems]


def only(pipelines: list[Pipeline]) -> dict[str, Any]:
    assert len(pipelines) == 1
    spec: dict[str, Any] = plain(pipelines[0].spec)
    return spec


@pytest.fixture
def repo(empty_repo: Path) -> Path:
    write(empty_repo, "pipelines/templates/base.yaml", TEMPLATE)
    return empty_repo.resolve()


# -- extends and with ------------------------------------------------------------------------

def test_example_chain_credit_risk_tabular_classifier_base(example_repo: Path) -> None:
    [credit] = resolve(example_repo, shown="pipelines/credit-risk.yaml")
    spec = plain(credit.spec)
    assert spec["split"] == {"seed": 42, "kind": "stratified", "test_size": 0.3}  # base + middle + leaf
    assert spec["drift"] == {"reference": "train"}                                  # base only
    assert spec["task"] == "classification"                                         # middle
    assert spec["model"]["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"  # with:
    assert spec["model"]["params"] == {"learning_rate": 0.1, "max_iter": 200, "random_state": 42}
    assert spec["metrics"] == ["roc_auc", "accuracy", "f1", "log_loss", "brier"]
    assert spec["data"]["source"] == {"rdataset": "modeldata/credit_data"}          # the pipeline
    assert credit.files == ("pipelines/templates/base.yaml",
                            "pipelines/templates/tabular-classifier.yaml",
                            "pipelines/credit-risk.yaml")
    assert credit.labels == {"domain": "finance", "owner": "model-risk"}
    assert credit.enabled


def test_merged_values_keep_the_position_they_were_written_at(example_repo: Path) -> None:
    [credit] = resolve(example_repo, shown="pipelines/credit-risk.yaml")

    def mark(shown: str, needle: str) -> Mark:
        line, col = at((example_repo / shown).read_text(encoding="utf-8"), needle).split(":")
        return Mark(shown, int(line), int(col))

    assert locate(credit.spec, ["split", "seed"]) == mark(
        "pipelines/templates/base.yaml", "${params.seed}")
    assert locate(credit.spec, ["split", "kind"]) == mark(
        "pipelines/templates/tabular-classifier.yaml", "stratified\n")
    assert locate(credit.spec, ["model", "params", "max_iter"]) == mark(
        "pipelines/credit-risk.yaml", "${params.max_iter}")


def test_a_pipeline_param_flows_through_both_templates(example_repo: Path) -> None:
    path = example_repo / "pipelines" / "credit-risk.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("seed: 42", "seed: 7"), encoding="utf-8")
    [credit] = resolve(example_repo, shown="pipelines/credit-risk.yaml")
    assert credit.spec["split"]["seed"] == 7
    assert credit.spec["model"]["params"]["random_state"] == 7


def test_with_sets_parameters_and_defaults_fill_the_rest(repo: Path) -> None:
    spec = only(resolve(repo, pipeline("extends: templates/base.yaml\nwith:\n  test_size: 0.3\n",
                                       spec=CHILD_SPEC)))
    assert spec["split"] == {"kind": "random", "seed": 42, "test_size": 0.3}
    assert spec["task"] == "classification"
    spec = only(resolve(repo, pipeline("extends: templates/base.yaml\nwith:\n  test_size: 0.3\n"
                                       "  seed: 1\n", spec=CHILD_SPEC)))
    assert spec["split"]["seed"] == 1


def test_the_pipeline_overrides_what_the_template_sets(repo: Path) -> None:
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: 0.3\n",
                    spec=CHILD_SPEC + "  split:\n    kind: stratified\n")
    assert only(resolve(repo, text))["split"] == {"kind": "stratified", "seed": 42, "test_size": 0.3}


def test_missing_required_parameter_is_one_problem_at_extends(repo: Path) -> None:
    text = pipeline("extends: templates/base.yaml\n", spec=CHILD_SPEC)
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, 'extends')}: with: template parameter 'test_size' has no default and "
        "is not given (add `with: {test_size: ...}`)"]


def test_with_key_the_template_does_not_declare(repo: Path) -> None:
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: 0.3\n  sed: 1\n", spec=CHILD_SPEC)
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, 'sed:')}: with.sed: template 'pipelines/templates/base.yaml' has no "
        "parameter 'sed' (did you mean 'seed'?)"]


@pytest.mark.parametrize(("value", "shown"), [("abc", "'abc'"), ("true", "True"), ("1.5", "1.5"),
                                              ("[1]", "[1]")])
def test_with_value_of_the_wrong_type(repo: Path, value: str, shown: str) -> None:
    text = pipeline(f"extends: templates/base.yaml\nwith:\n  test_size: 0.3\n  seed: {value}\n",
                    spec=CHILD_SPEC)
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, value)}: with.seed: "
        f"expected integer, got {shown}"]


def test_number_parameter_accepts_an_integer(repo: Path) -> None:
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: 1\n", spec=CHILD_SPEC)
    assert problems(repo, text) == [  # the type fits; the strict schema still wants test_size < 1
        f"pipelines/templates/base.yaml:{at(TEMPLATE, '${params.test_size}')}: "
        "spec.split.test_size: 1 is greater than or equal to the maximum of 1"]


def test_with_value_from_a_placeholder_is_type_checked(repo: Path) -> None:
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: ${params.size}\n"
                    "params:\n  size: big\n", spec=CHILD_SPEC)
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, '${params.size}')}: with.test_size: expected number, got 'big'"]


def test_placeholder_resolving_to_the_wrong_type_is_found_where_it_is_written(repo: Path) -> None:
    untyped = TEMPLATE.replace("  test_size:\n    type: number\n", "  test_size: {}\n")
    write(repo, "pipelines/templates/base.yaml", untyped)
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: big\n", spec=CHILD_SPEC)
    assert problems(repo, text) == [
        f"pipelines/templates/base.yaml:{at(untyped, '${params.test_size}')}: "
        "spec.split.test_size: expected number, got string 'big'"]
    text = pipeline("params:\n  size: [1]\n", spec=SPEC.replace("0.2", "${params.size}"))
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, '${params.size}')}: spec.split.test_size: expected number, got list"]


def test_missing_template(repo: Path) -> None:
    text = pipeline("extends: templates/bse.yaml\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, 'templates/bse.yaml')}: extends: template 'templates/bse.yaml' not found "
        "(the path is relative to this file)"]


def test_circular_extends_names_the_cycle(repo: Path) -> None:
    passing = "with:\n  test_size: ${params.test_size}\nparameters:"
    a = TEMPLATE.replace("name: base", "name: a").replace("parameters:", f"extends: b.yaml\n{passing}")
    b = TEMPLATE.replace("name: base", "name: b").replace("parameters:", f"extends: a.yaml\n{passing}")
    write(repo, "pipelines/templates/a.yaml", a)
    write(repo, "pipelines/templates/b.yaml", b)
    text = pipeline("extends: templates/a.yaml\nwith:\n  test_size: 0.3\n", spec=CHILD_SPEC)
    assert problems(repo, text) == [
        f"pipelines/templates/b.yaml:{at(b, 'a.yaml')}: extends: circular extends: "
        "pipelines/demo.yaml -> pipelines/templates/a.yaml -> pipelines/templates/b.yaml -> "
        "pipelines/templates/a.yaml (remove one extends: from the cycle)"]


def test_a_template_extending_itself(repo: Path) -> None:
    selfish = TEMPLATE.replace("parameters:", "extends: base.yaml\nwith:\n  test_size: 0.1\nparameters:")
    write(repo, "pipelines/templates/base.yaml", selfish)
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: 0.3\n", spec=CHILD_SPEC)
    assert problems(repo, text) == [
        f"pipelines/templates/base.yaml:{at(selfish, 'base.yaml')}: extends: circular extends: "
        "pipelines/demo.yaml -> pipelines/templates/base.yaml -> pipelines/templates/base.yaml "
        "(remove one extends: from the cycle)"]


@pytest.mark.parametrize(("target", "kind"), [("other.yaml", "Pipeline"),
                                              ("../policies/finance.yaml", "Policy")])
def test_extends_a_file_of_the_wrong_kind(repo: Path, target: str, kind: str) -> None:
    write(repo, "pipelines/other.yaml", pipeline().replace("name: demo", "name: other"))
    shutil.copy(PROJECT / "policies" / "finance.yaml", repo / "policies")
    text = pipeline(f"extends: {target}\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, target)}: extends: '{target}' is a {kind}, not a PipelineTemplate "
        "(extend a file of kind PipelineTemplate)"]


def test_extends_outside_the_repository_is_refused_even_if_the_file_exists(repo: Path) -> None:
    write(repo.parent, "outside.yaml", TEMPLATE)
    for target in ("../../outside.yaml", str(repo.parent / "outside.yaml")):
        text = pipeline(f"extends: {target}\n")
        assert problems(repo, text) == [
            f"{SHOWN}:{at(text, target)}: extends: the template is outside the repository "
            "(keep templates under pipelines/templates/)"]


def test_with_needs_extends(repo: Path) -> None:
    text = pipeline("with:\n  seed: 1\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, 'with')}: with: `with:` needs `extends:` (name the template this file extends)"]


def test_a_broken_template_is_reported_in_the_template(repo: Path) -> None:
    broken = TEMPLATE.replace("  split:", "  splt:")
    write(repo, "pipelines/templates/base.yaml", broken)
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: 0.3\n", spec=CHILD_SPEC)
    assert problems(repo, text) == [
        f"pipelines/templates/base.yaml:{at(broken, 'splt')}: spec.splt: unknown key 'splt' "
        "(did you mean 'split'?)"]


# -- placeholders ----------------------------------------------------------------------------

def test_a_whole_value_placeholder_keeps_its_type(repo: Path) -> None:
    text = pipeline("params:\n  seed: 7\n  size: 0.25\n  flag: true\n  cols: [a, b]\n"
                    "  args: {sep: ';'}\n",
                    extra="  drift:\n    features: ${params.cols}\n  gates:\n    compare:\n"
                          "      metric: accuracy\n      allow_first: ${params.flag}\n",
                    spec=SPEC.replace("test_size: 0.2", "test_size: ${params.size}\n    seed: ${params.seed}")
                    .replace("path: data/train.csv", "plugin: pkg.mod:load\n      args: ${params.args}"))
    spec = only(resolve(repo, text))
    assert spec["split"]["seed"] == 7 and type(spec["split"]["seed"]) is int
    assert spec["split"]["test_size"] == 0.25
    assert spec["gates"]["compare"]["allow_first"] is True
    assert spec["drift"]["features"] == ["a", "b"]
    assert spec["data"]["source"]["args"] == {"sep": ";"}


@pytest.mark.parametrize(("top", "column", "expected"), [
    ("params:\n  seed: 7\n  flag: false\n", "y_${params.seed}_${params.flag}", "y_7_false"),
    ("params:\n  cols: [a, b]\n  nested: {deep: {name: z}}\n", "${params.cols.1}${params.nested.deep.name}", "bz"),
    ("params:\n  target: y2\n", "${ params.target }", "y2"),
    ("", "cost_$${currency}", "cost_${currency}"),
], ids=["inside-text-becomes-text", "indexes-into-lists-and-mappings", "spaces-inside-the-braces",
        "double-dollar-escapes"])
def test_a_placeholder_in_a_value_resolves_to_text(repo: Path, top: str, column: str, expected: str) -> None:
    text = pipeline(top, spec=SPEC.replace("column: y", f"column: {column}"))
    assert only(resolve(repo, text))["data"]["target"]["column"] == expected


def test_metadata_and_labels_placeholders(repo: Path) -> None:
    text = pipeline(spec=SPEC.replace("column: y", "column: ${metadata.name}-${labels.team}")
                    ).replace("name: demo\n", "name: demo\n  labels:\n    team: risk\n")
    assert only(resolve(repo, text))["data"]["target"]["column"] == "demo-risk"


def test_double_dollar_escape_inside_foreach_and_templates(repo: Path) -> None:
    template = TEMPLATE.replace("  metrics: [accuracy]\n", "  metrics: [accuracy]\n  data:\n"
                                "    target:\n      column: t_$${raw}\n")
    write(repo, "pipelines/templates/base.yaml", template)
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: 0.3\n",
                    spec=CHILD_SPEC.replace("    target:\n      column: y\n", "")
                    + "  foreach: [a]\n  do:\n    data:\n      time: ${item}_$${x}\n")
    spec = only(resolve(repo, text))
    assert spec["data"]["target"]["column"] == "t_${raw}"
    assert spec["data"]["time"] == "a_${x}"


@pytest.mark.parametrize(("top", "old", "new", "marker", "message"), [
    ("params:\n  test: 0.3\n  seed: 1\n", "test_size: 0.2", "test_size: ${params.tst}", "${params.tst}",
     "'${params.tst}' is not defined (did you mean '${params.test}'? defined under params: seed, test)"),
    ("", "test_size: 0.2", "test_size: ${params.size}", "${params.size}",
     "'${params.size}' is not defined (params has no 'size')"),
    ("", "column: y", "column: ${param.target}", "${param",
     "'${param.target}' is not defined here (known: ${params}, ${metadata}, ${labels}, ${env})"),
    ("", "column: y", "column: ${item}", "${item}",
     "'${item}' is only defined inside foreach (use it under spec.do, or add spec.foreach)"),
    ("params:\n  m: {a: 1}\n", "column: y", "column: y_${params.m}", "y_${",
     "'${params.m}' is a mapping and cannot be part of a longer string (use it as the whole value)"),
    ("", "column: y", "column: y_${}", "y_${",
     "'${}' is not a placeholder name (write ${params.NAME}, ${item}, ${key} or ${metadata.name})"),
], ids=["undefined-parameter-hints-the-names", "undefined-parameter-with-no-params", "unknown-namespace",
        "item-outside-foreach", "mapping-inside-a-longer-string", "not-a-placeholder-name"])
def test_a_bad_placeholder_is_one_problem_at_the_placeholder(repo: Path, top: str, old: str, new: str,
                                                             marker: str, message: str) -> None:
    text = pipeline(top, spec=SPEC.replace(old, new))
    assert problems(repo, text) == [f"{SHOWN}:{at(text, marker)}: {message}"]


def test_every_undefined_placeholder_is_reported(repo: Path) -> None:
    text = pipeline(spec=SPEC.replace("column: y", "column: ${params.a}")
                    .replace("test_size: 0.2", "test_size: ${params.b}"))
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, '${params.a}')}: '${{params.a}}' is not defined (params has no 'a')",
        f"{SHOWN}:{at(text, '${params.b}')}: '${{params.b}}' is not defined (params has no 'b')"]


# -- env -------------------------------------------------------------------------------------

ENV_TEXT = pipeline("env: [TARGET_COLUMN]\n", spec=SPEC.replace("column: y", "column: ${env.TARGET_COLUMN}"))


def test_env_listed_and_set_gives_its_value(repo: Path) -> None:
    spec = only(resolve(repo, ENV_TEXT, env={"TARGET_COLUMN": "label"}))
    assert spec["data"]["target"]["column"] == "label"


def test_env_not_listed_is_refused_even_when_set(repo: Path) -> None:
    text = pipeline(spec=SPEC.replace("column: y", "column: ${env.HOME}"))
    assert problems(repo, text, env={"HOME": "/root"}) == [
        f"{SHOWN}:{at(text, '${env')}: environment variable 'HOME' is not allowed "
        "(add HOME to this file's `env:` list)"]


def test_env_listed_but_unset(repo: Path) -> None:
    assert problems(repo, ENV_TEXT, env={}) == [
        f"{SHOWN}:{at(ENV_TEXT, '${env')}: environment variable 'TARGET_COLUMN' is not set "
        "(export TARGET_COLUMN=...)"]


def test_resolver_reads_only_the_env_it_is_given(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_COLUMN", "from_process")
    assert problems(repo, ENV_TEXT, env={}) == [
        f"{SHOWN}:{at(ENV_TEXT, '${env')}: environment variable 'TARGET_COLUMN' is not set "
        "(export TARGET_COLUMN=...)"]


def test_same_files_and_env_give_equal_results(example_repo: Path) -> None:
    root = example_repo.resolve()
    write(root, SHOWN, ENV_TEXT)
    env = {"TARGET_COLUMN": "label"}
    for shown in ("pipelines/credit-risk.yaml", "pipelines/arrivals.yaml", SHOWN):
        document = read_document(root / shown, shown)
        first = Resolver(root, dict(env)).pipelines(document)
        second = Resolver(root, dict(env)).pipelines(read_document(root / shown, shown))
        assert first == second
        assert [plain(p.spec) for p in first] == [plain(p.spec) for p in second]
    other = resolve(root, env={"TARGET_COLUMN": "other"})
    assert other[0].spec["data"]["target"]["column"] == "other"


# -- imports ---------------------------------------------------------------------------------

def test_import_alias_resolves_to_its_dotted_path(repo: Path) -> None:
    text = pipeline("imports:\n  LogReg: sklearn.linear_model:LogisticRegression\n"
                    "  clean: mypkg.cleaning:drop_nulls\n",
                    spec=SPEC.replace("sklearn.linear_model.LogisticRegression", "LogReg")
                    .replace("    target:", "    transforms: [clean, other.module:fn]\n    target:"))
    pipelines = resolve(repo, text)
    spec = only(pipelines)
    assert spec["model"]["estimator"] == "sklearn.linear_model:LogisticRegression"
    assert spec["data"]["transforms"] == ["mypkg.cleaning:drop_nulls", "other.module:fn"]
    assert pipelines[0].imports == {"LogReg": "sklearn.linear_model:LogisticRegression",
                                    "clean": "mypkg.cleaning:drop_nulls"}


def test_unknown_bare_name_suggests_an_import(repo: Path) -> None:
    text = pipeline("imports:\n  LogReg: sklearn.linear_model:LogisticRegression\n",
                    spec=SPEC.replace("sklearn.linear_model.LogisticRegression", "LogRg"))
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, 'LogRg')}: spec.model.estimator: 'LogRg' is neither a dotted path nor a "
        "name under imports: (did you mean 'LogReg'?)"]


def test_unknown_bare_name_without_imports(repo: Path) -> None:
    text = pipeline(spec=SPEC.replace("sklearn.linear_model.LogisticRegression", "LogReg"))
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, 'LogReg')}: spec.model.estimator: 'LogReg' is neither a dotted path nor "
        "a name under imports: (write package.module:callable)"]


def test_imports_of_a_template_are_inherited_and_can_be_overridden(repo: Path) -> None:
    template = TEMPLATE.replace("parameters:", "imports:\n  Model: sklearn.tree:DecisionTreeClassifier\n"
                                "  Clean: a.b:c\nparameters:")
    write(repo, "pipelines/templates/base.yaml", template)
    text = pipeline("extends: templates/base.yaml\nwith:\n  test_size: 0.3\nimports:\n  Clean: x.y:z\n",
                    spec=CHILD_SPEC.replace("sklearn.linear_model.LogisticRegression", "Model")
                    .replace("    target:", "    transforms: [Clean]\n    target:"))
    spec = only(resolve(repo, text))
    assert spec["model"]["estimator"] == "sklearn.tree:DecisionTreeClassifier"
    assert spec["data"]["transforms"] == ["x.y:z"]


# -- foreach ---------------------------------------------------------------------------------

def test_foreach_over_a_list(repo: Path) -> None:
    text = pipeline(extra="  foreach: [eu, us]\n  do:\n    data:\n      filter:\n        region: ${item}\n")
    pipelines = resolve(repo, text)
    assert [p.name for p in pipelines] == ["demo-eu", "demo-us"]
    assert [p.spec["data"]["filter"] for p in pipelines] == [{"region": "eu"}, {"region": "us"}]
    assert all(p.family == "demo" and "foreach" not in p.spec and "do" not in p.spec
               for p in pipelines)


def test_foreach_over_a_mapping_names_by_key(repo: Path) -> None:
    text = pipeline(extra="  foreach:\n    eu: 0.1\n    us: 0.3\n  do:\n    split:\n"
                          "      test_size: ${item}\n    labels:\n      region: ${key}\n")
    pipelines = resolve(repo, text)
    assert [p.name for p in pipelines] == ["demo-eu", "demo-us"]
    assert [p.spec["split"]["test_size"] for p in pipelines] == [0.1, 0.3]
    assert [p.labels for p in pipelines] == [{"region": "eu"}, {"region": "us"}]


def test_foreach_over_mappings_with_explicit_names(repo: Path) -> None:
    text = pipeline(extra="  foreach:\n    - {region: eu, size: 0.1}\n    - {region: us, size: 0.3}\n"
                          "  do:\n    name: demo-${item.region}-x\n    split:\n"
                          "      test_size: ${item.size}\n")
    pipelines = resolve(repo, text)
    assert [p.name for p in pipelines] == ["demo-eu-x", "demo-us-x"]
    assert [p.spec["split"]["test_size"] for p in pipelines] == [0.1, 0.3]


def test_foreach_item_can_be_used_in_the_whole_spec(repo: Path) -> None:
    text = pipeline(extra="  foreach: [a, b]\n",
                    spec=SPEC.replace("column: y", "column: y_${item}_${key}"))
    pipelines = resolve(repo, text)
    assert [p.spec["data"]["target"]["column"] for p in pipelines] == ["y_a_0", "y_b_1"]


def test_foreach_over_a_yaml_list_file(repo: Path) -> None:
    write(repo, "pipelines/regions.yaml", "- eu\n- us\n")
    text = pipeline(extra="  foreach: {from: pipelines/regions.yaml}\n  do:\n"
                          "    data:\n      filter:\n        region: ${item}\n")
    pipelines = resolve(repo, text)
    assert [p.name for p in pipelines] == ["demo-eu", "demo-us"]
    assert pipelines[0].files == (SHOWN, "pipelines/regions.yaml")


def test_foreach_over_a_csv_column(repo: Path) -> None:
    write(repo, "data/regions.csv", "id,region\n1,Western Europe\n2,US\n")
    text = pipeline(extra="  foreach:\n    from: data/regions.csv\n    column: region\n  do:\n"
                          "    data:\n      filter:\n        region: ${item}\n")
    pipelines = resolve(repo, text)
    assert [p.name for p in pipelines] == ["demo-western-europe", "demo-us"]
    assert [p.spec["data"]["filter"]["region"] for p in pipelines] == ["Western Europe", "US"]
    assert pipelines[0].files == (SHOWN, "data/regions.csv")


def test_foreach_over_a_csv_defaults_to_the_first_column(repo: Path) -> None:
    write(repo, "data/regions.csv", "region,id\neu,1\n")
    text = pipeline(extra="  foreach: {from: data/regions.csv}\n")
    assert [p.name for p in resolve(repo, text)] == ["demo-eu"]


def test_example_arrivals_one_pipeline_per_csv_row(example_repo: Path) -> None:
    pipelines = resolve(example_repo, shown="pipelines/arrivals.yaml")
    assert [p.name for p in pipelines] == ["arrivals-japan", "arrivals-nz", "arrivals-uk", "arrivals-us"]
    assert [p.spec["data"]["filter"] for p in pipelines] == [
        {"Origin": "Japan"}, {"Origin": "NZ"}, {"Origin": "UK"}, {"Origin": "US"}]
    assert {p.spec["split"]["seed"] for p in pipelines} == {7}
    assert pipelines[0].files == ("pipelines/templates/base.yaml", "pipelines/arrivals.yaml",
                                  "pipelines/series/arrivals.csv")


def test_foreach_csv_without_the_column(repo: Path) -> None:
    write(repo, "data/regions.csv", "id,region\n1,eu\n")
    text = pipeline(extra="  foreach: {from: data/regions.csv, column: regoin}\n")
    assert problems(repo, text) == ["data/regions.csv:1:1: no column 'regoin' in CSV (columns: id, region)"]


def test_foreach_csv_with_a_header_only_has_no_items(repo: Path) -> None:
    write(repo, "data/regions.csv", "region\n")
    text = pipeline(extra="  foreach: {from: data/regions.csv}\n")
    assert problems(repo, text) == [f"{SHOWN}:{at(text, '{from')}: spec.foreach: foreach has no items"]


def test_foreach_yaml_file_that_is_not_a_list(repo: Path) -> None:
    write(repo, "pipelines/regions.yaml", "eu: 1\n")
    text = pipeline(extra="  foreach: {from: pipelines/regions.yaml}\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, '{from')}: spec.foreach.from: 'pipelines/regions.yaml' does not hold a list "
        "(write one YAML list, or a CSV file)"]


@pytest.mark.parametrize("source", ["data/nope.csv", "data"])
def test_foreach_file_that_is_not_in_the_repository(repo: Path, source: str) -> None:
    write(repo.parent, "outside.csv", "a\n1\n")
    (repo / "data").mkdir(exist_ok=True)
    text = pipeline(extra=f"  foreach: {{from: {source}}}\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, '{from')}: spec.foreach.from: '{source}' is not a file in the repository "
        "(the path is relative to the repo root)"]


def test_foreach_file_outside_the_repository_is_refused_by_the_schema(repo: Path) -> None:
    write(repo.parent, "outside.csv", "a\n1\n")
    text = pipeline(extra="  foreach: {from: ../outside.csv}\n")
    line = text.splitlines().index("  foreach: {from: ../outside.csv}") + 1
    assert problems(repo, text) == [
        f"{SHOWN}:{line}:19: spec.foreach.from: '../outside.csv' has the wrong form "
        "(use a path inside the repository, relative to it (no leading / and no ..))"]


@pytest.mark.parametrize(("value", "kind"), [("eu", "str"), ("3", "int"), ("1.5", "float")])
def test_foreach_over_a_placeholder_that_is_not_a_list(repo: Path, value: str, kind: str) -> None:
    text = pipeline(f"params:\n  regions: {value}\n", extra="  foreach: ${params.regions}\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, '${params.regions}')}: spec.foreach: foreach must be a list or a mapping, "
        f"got {kind} (write [a, b], {{key: value}}, or {{from: path/to/file.csv}})"]


def test_foreach_over_a_placeholder_list(repo: Path) -> None:
    text = pipeline("params:\n  regions: [eu, us]\n", extra="  foreach: ${params.regions}\n")
    assert [p.name for p in resolve(repo, text)] == ["demo-eu", "demo-us"]


def test_foreach_making_the_same_name_twice(repo: Path) -> None:
    text = pipeline(extra="  foreach: [eu, us]\n  do:\n    name: demo-all\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, 'demo-all')}: spec.do.name: foreach makes the name(s) demo-all more than "
        "once (put ${key} or ${item} in do.name)"]


def test_foreach_items_that_slug_to_the_same_name(repo: Path) -> None:
    text = pipeline(extra="  foreach: [EU, eu]\n")
    assert problems(repo, text)[0].endswith(
        "spec.do.name: foreach makes the name(s) demo-eu more than once (put ${key} or ${item} in do.name)")


def test_foreach_generated_name_must_be_a_valid_name(repo: Path) -> None:
    text = pipeline(extra="  foreach: [eu]\n  do:\n    name: Demo_EU\n")
    assert problems(repo, text) == [
        f"{SHOWN}:4:9: metadata.name: 'Demo_EU' has the wrong form "
        "(use lowercase letters, digits and dashes, e.g. credit-risk)"]


# -- when ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("when", "enabled"), [
    ("false", False), ("true", True),
    ("params.region == 'EU'", True), ("params.region in ['US', 'UK']", False),
    ("labels.tier == 'gold' and not params.enabled", True),
    ("${params.enabled}", False),
])
def test_when_at_the_top_enables_or_disables_the_pipeline(repo: Path, when: str, enabled: bool) -> None:
    text = pipeline(f"params:\n  region: EU\n  enabled: false\nwhen: {when}\n").replace(
        "name: demo\n", "name: demo\n  labels:\n    tier: gold\n")
    [result] = resolve(repo, text)
    assert result.enabled is enabled


def test_when_in_do_is_evaluated_per_item(repo: Path) -> None:
    text = pipeline("params:\n  skip: us\n",
                    extra="  foreach: [eu, us, uk]\n  do:\n    when: item != params.skip\n")
    assert [(p.name, p.enabled) for p in resolve(repo, text)] == [
        ("demo-eu", True), ("demo-us", False), ("demo-uk", True)]


def test_top_level_false_disables_every_item(repo: Path) -> None:
    text = pipeline("when: false\n", extra="  foreach: [eu, us]\n  do:\n    when: item == 'eu'\n")
    assert [(p.name, p.enabled) for p in resolve(repo, text)] == [("demo-eu", False), ("demo-us", False)]


def test_when_that_is_not_allowed_is_reported_at_the_condition(repo: Path) -> None:
    text = pipeline("when: params.__class__\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, 'params.__class__')}: when: '__class__' is not defined"]


def test_when_in_do_that_is_not_a_condition(repo: Path) -> None:
    text = pipeline(extra="  foreach: [1, 2]\n  do:\n    when: ${item}\n")
    assert problems(repo, text) == [
        f"{SHOWN}:{at(text, '${item}')}: when: a condition is true, false or an expression, not 1"]
