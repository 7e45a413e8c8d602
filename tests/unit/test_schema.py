"""The bundled JSON Schemas, the `schema` command, and how schema errors are explained."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from modelops_ci.errors import UserError
from modelops_ci.spec import schema
from modelops_ci.spec.load import parse
from tests.helpers.cli import run_cli
from tests.helpers.paths import PROJECT
from tests.helpers.repos import write
from tests.helpers.specs import SHOWN, VALID


def problems(text: str, kind: str = "Pipeline", flavour: schema.Flavour = "file") -> list[str]:
    return [str(p) for p in schema.check(parse(text, SHOWN), kind, SHOWN, flavour)]


def edit(old: str, new: str, text: str = VALID) -> str:
    assert old in text
    return text.replace(old, new, 1)


# -- the schema command ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "title"), [
    ("pipeline", "modelops/v1 Pipeline"),
    ("pipeline-template", "modelops/v1 PipelineTemplate"),
    ("policy", "modelops/v1 Policy"),
    ("deployment", "modelops/v1 Deployment"),
    ("Pipeline", "modelops/v1 Pipeline"),
])
def test_schema_command_prints_a_valid_json_schema(name: str, title: str) -> None:
    result = run_cli("schema", name)
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    jsonschema.validators.validator_for(printed).check_schema(printed)
    assert printed["title"] == title
    assert "defs.json" not in result.stdout  # stands alone: shared definitions are inlined


@pytest.mark.parametrize(("name", "message"), [
    ("pipelin", "unknown kind 'pipelin': did you mean 'pipeline'?"),
    ("release", "unknown kind 'release': allowed: pipeline, pipeline-template, policy, deployment"),
])
def test_schema_command_refuses_an_unknown_kind(name: str, message: str) -> None:
    result = run_cli("schema", name)
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""


@pytest.mark.parametrize("flavour", ["file", "resolved"])
@pytest.mark.parametrize("kind", list(schema.KINDS))
def test_both_flavours_are_valid_schemas(kind: str, flavour: schema.Flavour) -> None:
    bundled = schema.bundle(kind, flavour)
    jsonschema.validators.validator_for(bundled).check_schema(bundled)


@pytest.mark.parametrize("path", sorted(
    str(p.relative_to(PROJECT)) for folder in ("pipelines", "policies")
    for p in (PROJECT / folder).rglob("*.yaml")))
def test_printed_schema_accepts_the_examples(path: str) -> None:
    """What an editor checks with the printed schema agrees with `validate` on the examples."""
    document = yaml.safe_load((PROJECT / path).read_text(encoding="utf-8"))
    name = schema.KINDS[document["kind"]]
    printed = json.loads(run_cli("schema", name).stdout)
    jsonschema.validators.validator_for(printed)(printed).validate(document)


# -- explaining problems ---------------------------------------------------------------------

def test_a_valid_file_has_no_problems() -> None:
    assert problems(VALID) == []
    assert problems(VALID, flavour="resolved") == []


def test_unknown_key_suggests_the_close_one_at_the_key() -> None:
    assert problems(edit("  split:\n", "  splt:\n")) == [
        f"{SHOWN}:12:3: spec.splt: unknown key 'splt' (did you mean 'split'?)"]


def test_unknown_key_without_a_close_one_lists_the_allowed() -> None:
    assert problems(VALID + "  owner: me\n") == [
        f"{SHOWN}:18:3: spec.owner: unknown key 'owner' "
        "(allowed: batch, data, do, drift, expect, foreach, gates, metrics, model, split, task)",
    ]


def test_enum_value_suggests_the_close_one() -> None:
    assert problems(edit("kind: random", "kind: randm")) == [
        f"{SHOWN}:13:11: spec.split.kind: 'randm' is not allowed (did you mean 'random'?)"]


def test_property_name_suggests_the_close_one() -> None:
    text = VALID + "  gates:\n    performance:\n      metrics:\n        rocauc: {min: 0.7}\n"
    assert problems(text) == [
        f"{SHOWN}:21:9: spec.gates.performance.metrics.rocauc: 'rocauc' is not allowed here "
        "(did you mean 'roc_auc'?)"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("test_size: 0.2", "test_size: big",
     "14:16: spec.split.test_size: expected number, got string 'big'"),
    ("column: y", "column: 5", "11:15: spec.data.target.column: expected string, got integer 5"),
    ("column: y", "column: true", "11:15: spec.data.target.column: expected string, got boolean True"),
    ("metrics: [accuracy]", "metrics: accuracy",
     "17:12: spec.metrics: expected list, got string 'accuracy'"),
    ("  model:\n    estimator: sklearn.linear_model.LogisticRegression\n", "  model: [a]\n",
     "15:10: spec.model: expected mapping, got list"),
    ("    source:\n      path: data/train.csv\n", "    source: data/train.csv\n",
     "8:13: spec.data.source: expected mapping or list, got string 'data/train.csv'"),
])
def test_wrong_type_says_expected_and_got(old: str, new: str, expected: str) -> None:
    assert problems(edit(old, new)) == [f"{SHOWN}:{expected}"]


def test_source_of_no_known_form_names_the_forms() -> None:
    assert problems(edit("      path: data/train.csv", "      pth: data/train.csv")) == [
        f"{SHOWN}:9:7: spec.data.source: does not match any allowed form "
        "(give exactly one of: path, rdataset, plugin)"]


def test_all_problems_of_a_file_are_reported_at_once(empty_repo: Path) -> None:
    text = edit("kind: random", "kind: randm", edit("column: y", "column: 5")) + "  extra: 1\n"
    assert problems(text) == [
        f"{SHOWN}:11:15: spec.data.target.column: expected string, got integer 5",
        f"{SHOWN}:13:11: spec.split.kind: 'randm' is not allowed (did you mean 'random'?)",
        f"{SHOWN}:18:3: spec.extra: unknown key 'extra' "
        "(allowed: batch, data, do, drift, expect, foreach, gates, metrics, model, split, task)",
    ]
    write(empty_repo, SHOWN, text)
    result = run_cli("validate", "-C", empty_repo)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == problems(text)


# -- the lenient (file) and strict (resolved) flavours ---------------------------------------

def test_file_flavour_accepts_placeholders_where_values_go() -> None:
    text = edit("test_size: 0.2", "test_size: ${params.test_size}",
                edit("metrics: [accuracy]", "metrics: ${params.metrics}"))
    assert problems(text) == []


def test_resolved_flavour_refuses_placeholders() -> None:
    text = edit("test_size: 0.2", "test_size: ${params.test_size}")
    assert problems(text, flavour="resolved") == [
        f"{SHOWN}:14:16: spec.split.test_size: expected number, got string '${{params.test_size}}'"]


def test_file_flavour_accepts_partial_specs_a_template_completes() -> None:
    partial = VALID.split("  task:")[0] + "  split:\n    seed: 1\n"
    assert problems(partial) == []
    assert (f"{SHOWN}:7:5: spec.split: missing required key 'kind' "
            "(add it, or inherit it from a template)") in problems(partial, flavour="resolved")


def test_file_flavour_still_checks_what_is_written() -> None:
    text = edit("test_size: 0.2", "test_size: 2")
    assert problems(text) == [f"{SHOWN}:14:16: spec.split.test_size: 2 is greater than or equal to "
                              "the maximum of 1"]


@pytest.mark.parametrize(("foreach", "ok"), [
    ("[eu, us]", True),
    ("{eu: 0.1, us: 0.2}", True),                   # a mapping: ${key} and ${item}
    ("{from: pipelines/regions.csv, column: region}", True),
    ("${params.regions}", True),
    ("eu", False),
    ("3", False),
])
def test_file_flavour_foreach_forms(foreach: str, ok: bool) -> None:
    text = VALID + f"  foreach: {foreach}\n  do:\n    name: demo-${{key}}\n"
    found = problems(text)
    if ok:
        assert found == []
    else:
        got = "string 'eu'" if foreach == "eu" else "integer 3"
        assert found == [f"{SHOWN}:18:12: spec.foreach: expected list or mapping, got {got}"]


def test_foreach_from_with_a_misspelt_key() -> None:
    text = VALID + "  foreach: {from: regions.csv, colum: region}\n  do:\n    name: x\n"
    assert problems(text) == [
        f"{SHOWN}:18:32: spec.foreach.colum: unknown key 'colum' (did you mean 'column'?)"]


def test_spec_cannot_be_one_placeholder() -> None:
    """The resolver needs the shape of `spec` and `do`: they take placeholders inside only."""
    text = "apiVersion: modelops/v1\nkind: Pipeline\nmetadata:\n  name: demo\nspec: ${params.spec}\n"
    assert problems(text) == [f"{SHOWN}:5:7: spec: expected mapping, got string '${{params.spec}}'"]


def test_do_cannot_be_one_placeholder() -> None:
    text = VALID + "  foreach: [a, b]\n  do: ${item}\n"
    assert problems(text) == [f"{SHOWN}:19:7: spec.do: expected mapping, got string '${{item}}'"]


def test_policies_are_strict() -> None:
    policy = (PROJECT / "policies" / "finance.yaml").read_text(encoding="utf-8")
    assert problems(policy, "Policy") == []
    line = policy.splitlines().index("      approvals: 1") + 1
    assert problems(edit("approvals: 1", "approvals: ${params.n}", policy), "Policy") == [
        f"{SHOWN}:{line}:18: spec.promotion.staging.approvals: expected integer, got string '${{params.n}}'"]


def test_template_parameters_are_checked() -> None:
    template = (PROJECT / "pipelines" / "templates" / "base.yaml").read_text(encoding="utf-8")
    assert problems(template, "PipelineTemplate") == []
    assert problems(edit("type: integer", "type: int", template), "PipelineTemplate") == [
        f"{SHOWN}:9:11: parameters.seed.type: 'int' is not allowed (did you mean 'integer'?)"]


def test_kind_for_cli_accepts_spellings() -> None:
    assert schema.kind_for_cli("pipeline_template") == "PipelineTemplate"
    assert schema.kind_for_cli("POLICY") == "Policy"
    with pytest.raises(UserError):
        schema.kind_for_cli("pipelines-x")


def test_suggest() -> None:
    assert schema.suggest("colum", ["column", "time"]) == "did you mean 'column'?"
    assert schema.suggest("zzz", ["column", "time"]) == "allowed: column, time"
    assert schema.suggest("zzz", []) == ""
