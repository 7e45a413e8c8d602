"""YAML values that remember where they were written, so every error can name file:line:col.

Containers carry the marks: a dict knows where each key and each value starts, a list where
each item starts. Scalars stay plain Python values and are located through their container.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mark:
    """A 1-based position in a file."""

    path: str
    line: int
    col: int


UNKNOWN = Mark("<generated>", 1, 1)


class MDict(dict[str, Any]):
    """A mapping with the position of itself, of each key and of each value."""

    __slots__ = ("key_marks", "mark", "value_marks")

    def __init__(self, mark: Mark = UNKNOWN) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}

    def put(self, key: str, value: Any, key_mark: Mark, value_mark: Mark) -> None:
        self[key] = value
        self.key_marks[key] = key_mark
        self.value_marks[key] = value_mark

    def copy_entry(self, source: MDict, key: str, value: Any) -> None:
        """Set `key` to `value`, keeping the marks `source` has for that key."""
        self.put(key, value, source.key_mark(key), source.value_mark(key))

    def key_mark(self, key: str) -> Mark:
        return self.key_marks.get(key, self.mark)

    def value_mark(self, key: str) -> Mark:
        return self.value_marks.get(key, self.mark)


class MList(list[Any]):
    """A sequence with the position of itself and of each item."""

    __slots__ = ("item_marks", "mark")

    def __init__(self, mark: Mark = UNKNOWN, items: Iterable[tuple[Any, Mark]] = ()) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []
        for value, value_mark in items:
            self.add(value, value_mark)

    def add(self, value: Any, mark: Mark) -> None:
        self.append(value)
        self.item_marks.append(mark)

    def item_mark(self, index: int) -> Mark:
        return self.item_marks[index] if 0 <= index < len(self.item_marks) else self.mark


def mark_of(node: Any, default: Mark = UNKNOWN) -> Mark:
    return node.mark if isinstance(node, MDict | MList) else default


def locate(root: Any, path: Iterable[str | int]) -> Mark:
    """The position of the value at `path`, or of its deepest ancestor that has one."""
    found = mark_of(root)
    node = root
    for step in path:
        if isinstance(node, MDict) and isinstance(step, str) and step in node:
            found, node = node.value_mark(step), node[step]
        elif isinstance(node, MList) and isinstance(step, int) and 0 <= step < len(node):
            found, node = node.item_mark(step), node[step]
        else:
            break
    return found


def locate_key(root: Any, path: list[str | int]) -> Mark:
    """The position of the key at the end of `path` (for 'unknown key' errors)."""
    parent = root
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return locate(root, path)
    last = path[-1] if path else None
    if isinstance(parent, MDict) and isinstance(last, str) and last in parent:
        return parent.key_mark(last)
    return locate(root, path)


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists (for dumping and hashing)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def yaml_path(path: Iterable[str | int]) -> str:
    """`spec.model.params[0].C` style path for messages."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def clone(value: Any) -> Any:
    """A deep copy that keeps marks."""
    if isinstance(value, MDict):
        out = MDict(value.mark)
        for key, item in value.items():
            out.copy_entry(value, key, clone(item))
        return out
    if isinstance(value, MList):
        return MList(value.mark, ((clone(v), value.item_mark(i)) for i, v in enumerate(value)))
    return plain(value)


def merge(base: Any, override: Any) -> Any:
    """`override` laid over `base`: mappings merge key by key, anything else is replaced."""
    if not (isinstance(base, MDict) and isinstance(override, MDict)):
        return clone(override)
    out = clone(base)
    out.mark = override.mark
    for key, value in override.items():
        merged = merge(base[key], value) if key in base else clone(value)
        out.copy_entry(override, key, merged)
    return out
