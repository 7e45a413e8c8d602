"""Read one spec or policy file into marked values, refusing what YAML lets slip.

PyYAML silently keeps the last of two duplicate keys and turns `2024-01-01` into a date;
both are errors or surprises in a spec, so the constructor is replaced here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from modelops_ci.errors import Problem, SpecError
from modelops_ci.spec.nodes import Mark, MDict, MList

MAX_BYTES = 1024 * 1024
MAX_NODES = 200_000

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader with marks, duplicate-key errors and dates kept as strings."""

    source = "<string>"


# Dates stay strings: a spec compares and hashes them as written.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _LoadProblem(Exception):
    def __init__(self, mark: Mark, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.mark, self.message, self.hint = mark, message, hint


def _mark(loader: _Loader, node: yaml.Node) -> Mark:
    return Mark(loader.source, node.start_mark.line + 1, node.start_mark.column + 1)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MDict:
    explicit: dict[str, Mark] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise _LoadProblem(_mark(loader, key_node), *_non_string_key(key_node, key))
        if key in explicit:
            first = explicit[key]
            raise _LoadProblem(
                _mark(loader, key_node),
                f"duplicate key '{key}' (first at line {first.line})",
                "YAML would silently keep only the last one: remove or rename one of them",
            )
        explicit[key] = _mark(loader, key_node)
    loader.flatten_mapping(node)
    result = MDict(_mark(loader, node))
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        value = loader.construct_object(value_node, deep=True)
        result.put(key, value, _mark(loader, key_node), _mark(loader, value_node))
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> MList:
    return MList(
        _mark(loader, node),
        ((loader.construct_object(item, deep=True), _mark(loader, item)) for item in node.value),
    )


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def read_text(path: Path, display: str) -> str:
    """The file's text, or a SpecError for a missing, huge, binary or non-UTF-8 file."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecError.single(
                display, f"file is {size / 1e6:.1f} MB, over the {MAX_BYTES // 1024} KiB limit",
                "specs describe data, they do not hold it: move the data to a file under data/",
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError.single(display, "file not found", "check the path") from None
    except IsADirectoryError:
        raise SpecError.single(display, "is a directory, not a file") from None
    except PermissionError:
        raise SpecError.single(display, "permission denied", "make the file readable") from None
    return decode(raw, display)


def decode(raw: bytes, display: str) -> str:
    if b"\0" in raw:
        raise SpecError.single(display, "binary file (contains NUL bytes)", "specs are YAML text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise SpecError.single(
            display, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            "save the file as UTF-8", line=line, col=col,
        ) from None


def parse(text: str, display: str) -> MDict:
    """Parse one YAML document that must be a mapping."""
    data = parse_any(text, display)
    if not isinstance(data, MDict):
        raise SpecError.single(
            display, f"the document is {_with_article(_kind_name(data))}, not a mapping",
            "a spec is a mapping with apiVersion, kind, metadata and spec",
        )
    return data


def parse_any(text: str, display: str) -> Any:
    """Parse one non-empty YAML document of any shape."""
    loader = _Loader(text)
    loader.source = display
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError.single(display, "file is empty", "start with apiVersion: modelops/v1")
        data = loader.construct_document(node)
    except _LoadProblem as exc:
        raise SpecError([_problem(display, exc.mark, exc.message, exc.hint)]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(display, exc, text)]) from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        raise SpecError.single(display, f"cannot parse YAML: {exc}") from None
    finally:
        loader.dispose()
    _check_size(data, display)
    return data


def load(path: Path, display: str | None = None) -> MDict:
    """Load `path` (shown as `display` in messages)."""
    shown = display or str(path)
    return parse(read_text(path, shown), shown)


def _check_size(data: Any, display: str) -> None:
    # Aliases can make a small file expand exponentially ("billion laughs"): count what a
    # walk would visit, and stop early.
    budget = MAX_NODES
    stack = [data]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise SpecError.single(
                display, f"document expands to over {MAX_NODES} values",
                "remove deeply nested YAML aliases (*name)",
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _problem(display: str, mark: Mark, message: str, hint: str = "") -> Problem:
    return Problem(display, mark.line, mark.col, "", message, hint)


def _yaml_problem(display: str, exc: yaml.MarkedYAMLError, text: str) -> Problem:
    where = exc.problem_mark or exc.context_mark
    line, col = (where.line + 1, where.column + 1) if where else (1, 1)
    message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    hint = "fix the YAML syntax"
    lines = text.splitlines()
    text_line = lines[line - 1] if line <= len(lines) else ""
    if "\t" in text_line[:col] or re.search(r"\btabs?\b", message):
        hint = "YAML does not allow tabs for indentation: use spaces"
    elif "flow" in message and "${" in text_line:
        hint = "inside [...] or {...} a placeholder must be quoted, e.g. '${params.name}'"
    elif "expected a single document" in message:
        hint = "keep one document per file (remove the extra ---)"
    return Problem(display, line, col, "", f"invalid YAML: {message}", hint)


def _non_string_key(node: yaml.Node, key: Any) -> tuple[str, str]:
    # Show the key as written: `yes:` is read as True, and "key True" would puzzle the author.
    if isinstance(node, yaml.ScalarNode):
        return (f"key '{node.value}' is read as {_with_article(_kind_name(key))}, not a string",
                "quote it, e.g. 'yes': or '1':")
    return f"{_with_article(_kind_name(key))} cannot be a key", "use a plain name as the key"


def _kind_name(value: Any) -> str:
    if value is None:
        return "null"
    for cls, word in ((bool, "boolean"), (int, "integer"), (float, "number"), (dict, "mapping"),
                      (list, "list"), (str, "string"), (bytes, "binary value")):
        if isinstance(value, cls):
            return word
    return type(value).__name__


def _with_article(name: str) -> str:
    if name == "null":
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name
