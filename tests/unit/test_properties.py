"""Property: whatever YAML the loader is given, it loads or says why, and never crashes."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops_ci.errors import ModelopsError
from modelops_ci.spec.load import parse
from modelops_ci.spec.nodes import plain
from modelops_ci.spec.resolve import read_document

# No example database: nothing is written into the working tree.
SETTINGS = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
           | st.floats(allow_nan=True, allow_infinity=True))
keys = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
data = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(keys, inner, max_size=4), max_leaves=20)

# Text that looks like YAML: indicators, indentation, tabs, anchors, tags and placeholders.
yaml_bits = st.sampled_from([
    "a", "b", "kind", ": ", ":", "- ", "-", "\n", "  ", "\t", "{", "}", "[", "]", ",", "?", "&x ",
    "*x", "!!str ", "!!python/object ", "<<: ", "'", '"', "#", "---", "...", "|", ">", "${params.x}",
    "yes", "1", "~", "%YAML 1.1\n", "\\", "\x00", "\ufeff", "é",
])
yamlish_text = st.lists(yaml_bits, max_size=30).map("".join)
any_text = st.text(max_size=200) | yamlish_text

# Documents shaped like specs, so the schema check and its messages see odd values too.
fields = st.sampled_from(["apiVersion", "kind", "metadata", "spec", "extends", "with", "params",
                          "imports", "env", "when", "parameters", "task", "data", "split", "model",
                          "metrics", "foreach", "do", "name", "labels", "gates", "selector"])
spec_like = st.recursive(scalars | st.sampled_from(["${params.x}", "modelops/v1", "Pipeline"]),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(fields, inner, max_size=5), max_leaves=25)
documents = st.fixed_dictionaries(
    {"apiVersion": st.just("modelops/v1") | data,
     "kind": st.sampled_from(["Pipeline", "PipelineTemplate", "Policy"]) | data},
    optional={"metadata": st.fixed_dictionaries({"name": st.just("demo") | data}) | data,
              "spec": st.dictionaries(fields, spec_like, max_size=6) | data,
              "extends": data, "with": spec_like, "params": spec_like, "env": data},
)


def parses_or_explains(text: str) -> None:
    with contextlib.suppress(ModelopsError):
        parse(text, "pipelines/fuzz.yaml")


def reads_or_explains(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_bytes(raw)
        with contextlib.suppress(ModelopsError):
            read_document(path, "pipelines/fuzz.yaml")


@SETTINGS
@given(any_text)
def test_parse_of_any_text_loads_or_raises_modelops_error(text: str) -> None:
    parses_or_explains(text)


@SETTINGS
@given(data)
def test_parse_of_dumped_data_loads_or_raises_modelops_error(value: Any) -> None:
    parses_or_explains(yaml.safe_dump(value, allow_unicode=True))


@SETTINGS
@given(any_text | (data | documents).map(yaml.safe_dump))
def test_read_document_of_any_file_loads_or_raises_modelops_error(text: str) -> None:
    reads_or_explains(text.encode("utf-8", errors="surrogatepass"))


@SETTINGS
@given(st.binary(max_size=200))
def test_read_document_of_any_bytes_loads_or_raises_modelops_error(raw: bytes) -> None:
    reads_or_explains(raw)


string_keyed = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)


@SETTINGS
@given(st.dictionaries(st.text(max_size=10), string_keyed, max_size=5))
def test_parse_loses_nothing_of_a_string_keyed_mapping(value: dict[str, Any]) -> None:
    # Escaped output: with allow_unicode PyYAML writes a raw U+0085, which YAML reads as a line break.
    assert plain(parse(yaml.safe_dump(value), "pipelines/fuzz.yaml")) == value
