"""The YAML loader: marks every value with file:line:col and refuses what YAML lets slip."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modelops_ci.errors import SpecError
from modelops_ci.spec import load
from modelops_ci.spec.load import parse, parse_any, read_text
from modelops_ci.spec.nodes import Mark, MDict, MList, locate

SHOWN = "pipelines/demo.yaml"


def problem(text: str) -> str:
    """The one problem parse() reports for `text`."""
    with pytest.raises(SpecError) as info:
        parse(textwrap.dedent(text), SHOWN)
    assert len(info.value.problems) == 1, info.value.problems
    return str(info.value.problems[0])


def read_problem(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load.load(path, SHOWN)
    assert len(info.value.problems) == 1
    return str(info.value.problems[0])


def test_values_remember_where_they_were_written() -> None:
    data = parse(textwrap.dedent("""\
        apiVersion: modelops/v1
        spec:
          model:
            params: {C: 1.5}
          metrics:
            - accuracy
            - f1
        """), SHOWN)
    assert isinstance(data, MDict)
    assert data.key_mark("spec") == Mark(SHOWN, 2, 1)
    assert data["spec"].value_mark("model") == Mark(SHOWN, 4, 5)
    assert data["spec"]["model"]["params"].value_mark("C") == Mark(SHOWN, 4, 17)
    metrics = data["spec"]["metrics"]
    assert isinstance(metrics, MList)
    assert metrics == ["accuracy", "f1"]
    assert metrics.item_mark(1) == Mark(SHOWN, 7, 7)
    assert locate(data, ["spec", "metrics", 0]) == Mark(SHOWN, 6, 7)


def test_dates_and_times_stay_strings() -> None:
    data = parse("released: 2024-01-31\nat: 2024-01-31T10:00:00Z\n", SHOWN)
    assert data == {"released": "2024-01-31", "at": "2024-01-31T10:00:00Z"}


def test_yaml_merge_keys_still_work() -> None:
    data = parse(textwrap.dedent("""\
        defaults: &defaults {kind: random, seed: 1}
        split:
          <<: *defaults
          seed: 2
        """), SHOWN)
    assert data["split"] == {"kind": "random", "seed": 2}


def test_duplicate_key_names_both_lines() -> None:
    assert problem("""\
        kind: Pipeline
        metadata:
          name: a
        kind: Policy
        """) == (f"{SHOWN}:4:1: duplicate key 'kind' (first at line 1) "
                 "(YAML would silently keep only the last one: remove or rename one of them)")


def test_duplicate_key_in_a_nested_mapping() -> None:
    assert problem("""\
        spec:
          split: {kind: random, kind: temporal}
        """).startswith(f"{SHOWN}:2:25: duplicate key 'kind' (first at line 2)")


@pytest.mark.parametrize(("key", "read_as"), [
    ("yes", "a boolean"), ("on", "a boolean"), ("1", "an integer"), ("1.5", "a number"),
    ("~", "null"), ("null", "null"),
])
def test_keys_that_are_not_strings_are_shown_as_written(key: str, read_as: str) -> None:
    assert problem(f"spec:\n  {key}: 1\n") == (
        f"{SHOWN}:2:3: key '{key}' is read as {read_as}, not a string (quote it, e.g. 'yes': or '1':)")


def test_quoted_keys_are_strings() -> None:
    assert parse("'yes': 1\n'1': 2\n", SHOWN) == {"yes": 1, "1": 2}


def test_a_list_as_a_key_is_refused() -> None:
    assert problem("? [a, b]\n: 1\n") == f"{SHOWN}:1:3: a list cannot be a key (use a plain name as the key)"


def test_malformed_yaml_names_the_position() -> None:
    assert problem("""\
        kind: Pipeline
        metadata: [name
        spec: {}
        """) == (f"{SHOWN}:3:5: invalid YAML: while parsing a flow sequence did not find expected "
                 "',' or ']' (fix the YAML syntax)")


def test_tab_indentation_gets_its_own_hint() -> None:
    assert problem("kind: Pipeline\nmetadata:\n\tname: a\n") == (
        f"{SHOWN}:3:1: invalid YAML: while scanning for the next token found character that cannot "
        "start any token (YAML does not allow tabs for indentation: use spaces)")


def test_unquoted_placeholder_in_a_flow_mapping_gets_a_quoting_hint() -> None:
    assert problem("split: {kind: random, seed: ${params.seed}}\n").endswith(
        "(inside [...] or {...} a placeholder must be quoted, e.g. '${params.name}')")
    assert parse("split: {kind: random, seed: '${params.seed}'}\n", SHOWN) == {
        "split": {"kind": "random", "seed": "${params.seed}"}}


def test_recursive_alias_is_not_mistaken_for_a_tab() -> None:
    assert problem("a: &x [*x]\n") == (
        f"{SHOWN}:1:4: invalid YAML: found unconstructable recursive node (fix the YAML syntax)")


def test_two_documents_in_one_file_are_refused() -> None:
    assert problem("kind: Pipeline\n---\nkind: Policy\n") == (
        f"{SHOWN}:2:1: invalid YAML: expected a single document in the stream but found another "
        "document (keep one document per file (remove the extra ---))")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_refused(text: str) -> None:
    assert problem(text) == f"{SHOWN}:1:1: file is empty (start with apiVersion: modelops/v1)"


@pytest.mark.parametrize(("text", "kind"), [
    ("- a\n- b\n", "a list"), ("just text\n", "a string"), ("5\n", "an integer"),
    ("null\n", "null"), ("---\n", "null"),
])
def test_document_must_be_a_mapping(text: str, kind: str) -> None:
    assert problem(text) == (f"{SHOWN}:1:1: the document is {kind}, not a mapping "
                             "(a spec is a mapping with apiVersion, kind, metadata and spec)")


def test_parse_any_accepts_any_shape() -> None:
    assert parse_any("- a\n- 2\n", SHOWN) == ["a", 2]


def test_python_tags_are_not_constructed() -> None:
    assert problem("a: !!python/object/apply:os.system [echo hi]\n").startswith(
        f"{SHOWN}:1:4: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'")


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 7):
        previous, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    assert problem("\n".join(lines) + "\n") == (
        f"{SHOWN}:1:1: document expands to over {load.MAX_NODES} values "
        "(remove deeply nested YAML aliases (*name))")


def test_huge_integer_is_a_parse_error() -> None:
    assert problem("seed: " + "9" * 5000 + "\n").startswith(f"{SHOWN}:1:1: cannot parse YAML: ")


def test_read_text_refuses_non_utf8_at_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_bytes(b"kind: Pipeline\nmetadata:\n  name: caf\xe9\n")
    assert read_problem(path) == f"{SHOWN}:3:12: not valid UTF-8 (byte 0xe9) (save the file as UTF-8)"


def test_read_text_refuses_binary(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_bytes(b"kind: Pipeline\n\x00\x01\x02")
    assert read_problem(path) == f"{SHOWN}:1:1: binary file (contains NUL bytes) (specs are YAML text)"


def test_read_text_refuses_a_huge_file_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_bytes(b"# padding\n" * 500_000)  # 5 MB
    assert read_problem(path) == (
        f"{SHOWN}:1:1: file is 5.0 MB, over the 1024 KiB limit "
        "(specs describe data, they do not hold it: move the data to a file under data/)")


def test_read_text_of_missing_file_and_directory(tmp_path: Path) -> None:
    assert read_problem(tmp_path / "nope.yaml") == f"{SHOWN}:1:1: file not found (check the path)"
    assert read_problem(tmp_path) == f"{SHOWN}:1:1: is a directory, not a file"


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_bytes(b"\xef\xbb\xbfkind: Pipeline\n")
    assert read_text(path, SHOWN) == "kind: Pipeline\n"
    assert load.load(path, SHOWN) == {"kind": "Pipeline"}


def test_marks_use_the_display_name(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("kind: Pipeline\n", encoding="utf-8")
    assert load.load(path, "shown/as.yaml").value_mark("kind") == Mark("shown/as.yaml", 1, 7)
    assert load.load(path).value_mark("kind").path == str(path)
