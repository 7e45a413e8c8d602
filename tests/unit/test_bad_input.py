"""Bad input through the real CLI: exit 2, `path:line:col: message (hint)`, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.paths import PROJECT
from tests.helpers.repos import write
from tests.helpers.specs import SHOWN, VALID

TEMPLATE = """\
apiVersion: modelops/v1
kind: PipelineTemplate
metadata:
  name: base
spec:
  split:
    seed: 1
"""


def edit(old: str, new: str, text: str = VALID) -> str:
    assert old in text
    return text.replace(old, new, 1)


def refused(repo: Path, *options: str) -> list[str]:
    """`validate`'s problem lines, after checking it failed as a user error should (warnings, such as
    code outside the allowed packages, are tested in test_allowed_imports.py)."""
    result = run_cli("validate", "-C", repo, *options)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    return [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]


def test_valid_file_passes(empty_repo: Path) -> None:
    write(empty_repo, SHOWN, VALID)
    result = run_cli("validate", "-C", empty_repo)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "1 file(s) valid: 1 pipeline(s), 0 policies"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(edit("kind: random", "kind: [random"),
                 f"{SHOWN}:14:14: invalid YAML: while parsing a flow sequence did not find expected "
                 "',' or ']' (fix the YAML syntax)", id="malformed"),
    pytest.param(edit("  name: demo", "\tname: demo"),
                 f"{SHOWN}:4:1: invalid YAML: while scanning for the next token found character that "
                 "cannot start any token (YAML does not allow tabs for indentation: use spaces)", id="tabs"),
    pytest.param(edit("    test_size: 0.2\n", "    test_size: 0.2\n    kind: temporal\n"),
                 f"{SHOWN}:15:5: duplicate key 'kind' (first at line 13) "
                 "(YAML would silently keep only the last one: remove or rename one of them)",
                 id="duplicate-key"),
    pytest.param(edit("test_size: 0.2", "test_size: a fifth"),
                 f"{SHOWN}:14:16: spec.split.test_size: expected number, got string 'a fifth'",
                 id="wrong-type"),
    pytest.param(edit("    target:", "    traget:"),
                 f"{SHOWN}:10:5: spec.data.traget: unknown key 'traget' (did you mean 'target'?)",
                 id="unknown-key"),
    pytest.param("- apiVersion: modelops/v1\n- kind: Pipeline\n",
                 f"{SHOWN}:1:1: the document is a list, not a mapping "
                 "(a spec is a mapping with apiVersion, kind, metadata and spec)", id="list"),
    pytest.param(edit("metadata:", "yes: true\nmetadata:"),
                 f"{SHOWN}:3:1: key 'yes' is read as a boolean, not a string "
                 "(quote it, e.g. 'yes': or '1':)", id="yes-key"),
    pytest.param(edit("  metrics:", "  1: one\n  metrics:"),
                 f"{SHOWN}:17:3: key '1' is read as an integer, not a string "
                 "(quote it, e.g. 'yes': or '1':)", id="int-key"),
    pytest.param("", f"{SHOWN}:1:1: file is empty (start with apiVersion: modelops/v1)", id="empty"),
    pytest.param(edit("kind: Pipeline", "kind: Release"),
                 f"{SHOWN}:2:7: kind: unknown kind 'Release' "
                 "(allowed: Pipeline, PipelineTemplate, Policy, Deployment)", id="kind-unknown"),
    pytest.param(edit("kind: Pipeline", "kind: Pipelin"),
                 f"{SHOWN}:2:7: kind: unknown kind 'Pipelin' (did you mean 'Pipeline'?)", id="kind-typo"),
    pytest.param(edit("kind: Pipeline", "kind: [Pipeline]"),
                 f"{SHOWN}:2:7: kind: unknown kind ['Pipeline'] (did you mean 'Pipeline'?)",
                 id="kind-list"),
    pytest.param(edit("kind: Pipeline\n", ""),
                 f"{SHOWN}:1:1: kind: missing required key 'kind' (add kind: Pipeline)", id="no-kind"),
    pytest.param(edit("spec:\n", "extends: templates/nope.yaml\nspec:\n"),
                 f"{SHOWN}:5:10: extends: template 'templates/nope.yaml' not found "
                 "(the path is relative to this file)", id="missing-extends"),
    pytest.param(edit("test_size: 0.2", "test_size: ${params.size}"),
                 f"{SHOWN}:14:16: '${{params.size}}' is not defined (params has no 'size')",
                 id="undefined-param"),
    pytest.param(VALID + "  foreach: eu\n  do:\n    name: demo-${item}\n",
                 f"{SHOWN}:18:12: spec.foreach: expected list or mapping, got string 'eu'",
                 id="foreach-string"),
    pytest.param(VALID + "  foreach: 3\n  do:\n    name: demo-${item}\n",
                 f"{SHOWN}:18:12: spec.foreach: expected list or mapping, got integer 3",
                 id="foreach-number"),
    pytest.param(edit("spec:\n", "params:\n  n: 3\nspec:\n") + "  foreach: ${params.n}\n",
                 f"{SHOWN}:20:12: spec.foreach: foreach must be a list or a mapping, got int "
                 "(write [a, b], {key: value}, or {from: path/to/file.csv})", id="foreach-placeholder"),
    pytest.param(VALID + "  foreach: [a, b]\n  do:\n    name: demo\n",
                 f"{SHOWN}:20:11: spec.do.name: foreach makes the name(s) demo more than once "
                 "(put ${key} or ${item} in do.name)", id="foreach-duplicate-names"),
    pytest.param("apiVersion: modelops/v1\nkind: Pipeline\nmetadata:\n  name: demo\nspec: ${params.s}\n",
                 f"{SHOWN}:5:7: spec: expected mapping, got string '${{params.s}}'", id="spec-placeholder"),
    pytest.param(VALID + "  foreach: [1, 2]\n  do:\n    when: item is 1\n",
                 f"{SHOWN}:20:11: when: 'item is 1' is not allowed in a condition "
                 "(use ==, !=, <, >, in, not in, and, or, not)", id="when-is"),
    pytest.param(VALID + "  foreach: [1, 2]\n  do:\n    when: ${item}\n",
                 f"{SHOWN}:20:11: when: a condition is true, false or an expression, not 1",
                 id="when-number"),
])
def test_bad_pipeline_is_refused_with_its_position(empty_repo: Path, text: str, expected: str) -> None:
    write(empty_repo, SHOWN, text)
    assert refused(empty_repo) == [expected]


def test_circular_extends(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/templates/a.yaml", edit("spec:", "extends: b.yaml\nspec:", TEMPLATE))
    write(empty_repo, "pipelines/templates/b.yaml", edit("spec:", "extends: a.yaml\nspec:", TEMPLATE))
    write(empty_repo, SHOWN, edit("spec:\n", "extends: templates/a.yaml\nspec:\n"))
    assert refused(empty_repo) == [
        "pipelines/templates/b.yaml:5:10: extends: circular extends: pipelines/demo.yaml -> "
        "pipelines/templates/a.yaml -> pipelines/templates/b.yaml -> pipelines/templates/a.yaml "
        "(remove one extends: from the cycle)"]


def test_non_utf8_file(empty_repo: Path) -> None:
    (empty_repo / SHOWN).write_bytes(VALID.replace("column: y", "column: caf\xe9").encode("latin-1"))
    assert refused(empty_repo) == [f"{SHOWN}:11:18: not valid UTF-8 (byte 0xe9) (save the file as UTF-8)"]


def test_binary_file(empty_repo: Path) -> None:
    (empty_repo / SHOWN).write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert refused(empty_repo) == [f"{SHOWN}:1:1: binary file (contains NUL bytes) (specs are YAML text)"]


def test_five_megabyte_file(empty_repo: Path) -> None:
    (empty_repo / SHOWN).write_bytes(VALID.encode() + b"# " + b"x" * (5 * 1024 * 1024) + b"\n")
    assert refused(empty_repo) == [
        f"{SHOWN}:1:1: file is 5.2 MB, over the 1024 KiB limit "
        "(specs describe data, they do not hold it: move the data to a file under data/)"]


def test_policy_placed_in_pipelines(empty_repo: Path) -> None:
    policy = (PROJECT / "policies" / "finance.yaml").read_text(encoding="utf-8")
    write(empty_repo, "pipelines/finance.yaml", policy)
    assert refused(empty_repo) == [
        "pipelines/finance.yaml:3:7: kind: a Policy does not belong under pipelines/ "
        "(move it to policies/, or fix its kind)"]


def test_pipeline_placed_in_policies(empty_repo: Path) -> None:
    write(empty_repo, "policies/demo.yaml", VALID)
    assert refused(empty_repo) == [
        "policies/demo.yaml:2:7: kind: a Pipeline does not belong under policies/ "
        "(move it to pipelines/, or fix its kind)"]


def test_every_bad_file_is_reported_in_one_run(empty_repo: Path) -> None:
    write(empty_repo, "pipelines/a.yaml", edit("name: demo", "name: a", edit("    target:", "    traget:")))
    write(empty_repo, "pipelines/b.yaml", "")
    write(empty_repo, "pipelines/c.yaml", edit("name: demo", "name: c"))
    assert refused(empty_repo) == [
        "pipelines/a.yaml:10:5: spec.data.traget: unknown key 'traget' (did you mean 'target'?)",
        "pipelines/b.yaml:1:1: file is empty (start with apiVersion: modelops/v1)"]


# -- validate --deep imports what the specs name ---------------------------------------------

@pytest.mark.parametrize(("text", "problem"), [
    (edit("sklearn.linear_model.LogisticRegression", "no_such_module:thing"),
     f"{SHOWN}:16:16: spec.model.estimator: cannot import module 'no_such_module' "
     "(No module named 'no_such_module') (install the package or fix the path)"),
    (edit("spec:\n", "imports:\n  Thing: no_such_module:thing\nspec:\n",
          edit("sklearn.linear_model.LogisticRegression", "Thing")),
     f"{SHOWN}:18:16: spec.model.estimator: cannot import module 'no_such_module' "
     "(No module named 'no_such_module') (install the package or fix the path)"),
    (edit("LogisticRegression", "LogisticRegresion"),
     f"{SHOWN}:16:16: spec.model.estimator: 'sklearn.linear_model' has no 'LogisticRegresion' "
     "(check the name after the module)"),
], ids=["estimator-from-a-missing-module", "import-entry-of-a-missing-module", "missing-name-in-a-real-module"])
def test_deep_refuses_what_it_cannot_import(empty_repo: Path, text: str, problem: str) -> None:
    write(empty_repo, "data/train.csv", "x,y\n1,0\n")
    write(empty_repo, SHOWN, text)
    assert refused(empty_repo, "--deep") == [problem]


def test_deep_accepts_a_real_sklearn_estimator(empty_repo: Path) -> None:
    pytest.importorskip("sklearn")
    write(empty_repo, "data/train.csv", "x,y\n1,0\n")
    write(empty_repo, SHOWN, VALID)
    result = run_cli("validate", "--deep", "-C", empty_repo)
    assert result.exit_code == 0, result.stderr


def test_deep_accepts_a_real_sklearn_estimator_through_an_import(empty_repo: Path) -> None:
    pytest.importorskip("sklearn")
    write(empty_repo, "data/train.csv", "x,y\n1,0\n")
    imports = "imports:\n  Tree: sklearn.tree:DecisionTreeClassifier\nspec:\n"
    uses_tree = edit("sklearn.linear_model.LogisticRegression", "Tree")
    write(empty_repo, SHOWN, edit("spec:\n", imports, uses_tree))
    result = run_cli("validate", "--deep", "-C", empty_repo)
    assert result.exit_code == 0, result.stderr
