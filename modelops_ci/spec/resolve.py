"""Turn a Pipeline file into resolved pipelines: templates, placeholders, imports, foreach, when.

Pure: the result depends only on the files under the repo root and the environment mapping
passed in (which only allow-listed names can read).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_ci.errors import Problem, SpecError, UserError
from modelops_ci.spec import conditions, load, schema
from modelops_ci.spec.model import Document, Pipeline
from modelops_ci.spec.nodes import Mark, MDict, MList, clone, locate, merge, plain
from modelops_ci.spec.placeholders import LATE_BOUND, PLACEHOLDER, Scope, substitute

CALLABLE_FIELDS = (("data", "source", "plugin"), ("data", "transforms"), ("model", "estimator"),
                   ("model", "formulation"))
# A foreach of this many items or more runs as one batched family unless `spec.batch` says otherwise:
# below it, a pipeline per item costs little and keeps each its own DVC stages.
BATCH_FROM = 20
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,),
    "array": (list,), "object": (dict,),
}
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass
class _Level:
    """What one file of an extends chain contributes."""

    spec: MDict
    imports: dict[str, str]
    files: list[str]


@dataclass
class Resolver:
    """Resolves pipeline documents under `root`; templates are parsed once and reused."""

    root: Path
    env: Mapping[str, str] = field(default_factory=dict)
    _templates: dict[Path, Document] = field(default_factory=dict)

    def pipelines(self, doc: Document) -> list[Pipeline]:
        """The pipelines `doc` defines (several with foreach), or SpecError with every problem."""
        problems: list[Problem] = []
        data = doc.data
        scope = self._scope(doc, {"params": data.get("params") or {}}, problems)
        level = self._level(doc, scope, [doc.path], problems)
        when = substitute(data.get("when", True), scope, data.value_mark("when"))
        _raise(problems)
        enabled = self._condition(when, data.value_mark("when"), scope.values)
        pipelines = list(self._expand(doc, level, scope, enabled, problems))
        _raise(problems)
        _check_unique(pipelines, doc)
        return pipelines

    # -- extends ---------------------------------------------------------------------------

    def _level(self, doc: Document, scope: Scope, chain: list[Path],
               problems: list[Problem]) -> _Level:
        data = doc.data
        spec = substitute(data.get("spec") or MDict(data.mark), scope, data.mark)
        imports = {k: str(v) for k, v in (data.get("imports") or {}).items()}
        level = _Level(spec, imports, [doc.display])
        if "with" in data and "extends" not in data:
            problems.append(_problem(data.key_mark("with"), "with", "`with:` needs `extends:`",
                                     "name the template this file extends"))
        if "extends" not in data:
            return level
        parent = self._template(doc, chain, problems)
        if parent is None:
            return level
        with_values = substitute(data.get("with") or MDict(data.mark), scope, data.mark)
        parent_params = self._template_params(parent, with_values, data, problems)
        if parent_params is None:
            return level  # the template cannot be read without its parameters
        parent_scope = self._scope(parent, {"params": parent_params}, problems, late=scope.late)
        above = self._level(parent, parent_scope, [*chain, parent.path], problems)
        return _Level(merge(above.spec, spec), {**above.imports, **imports}, above.files + level.files)

    def _template(self, doc: Document, chain: list[Path], problems: list[Problem]) -> Document | None:
        data = doc.data
        mark = data.value_mark("extends")
        target = (doc.path.parent / str(data["extends"])).resolve()
        if not target.is_relative_to(self.root):
            problems.append(_problem(mark, "extends", "the template is outside the repository",
                                     "keep templates under pipelines/templates/"))
            return None
        if target in chain:
            cycle = " -> ".join(self._display(p) for p in [*chain, target])
            problems.append(_problem(mark, "extends", f"circular extends: {cycle}",
                                     "remove one extends: from the cycle"))
            return None
        if not target.is_file():
            problems.append(_problem(mark, "extends", f"template '{data['extends']}' not found",
                                     "the path is relative to this file"))
            return None
        try:
            template = self._load_template(target)
        except SpecError as exc:
            problems.extend(exc.problems)
            return None
        if template.kind != "PipelineTemplate":
            problems.append(_problem(mark, "extends", f"'{data['extends']}' is a {template.kind}, "
                                     "not a PipelineTemplate", "extend a file of kind PipelineTemplate"))
            return None
        return template

    def _load_template(self, path: Path) -> Document:
        if path not in self._templates:
            self._templates[path] = read_document(path, self._display(path))
        return self._templates[path]

    def _template_params(self, template: Document, given: MDict, child: MDict,
                         problems: list[Problem]) -> MDict | None:
        """The template's parameter values, or None when one without a default is not given."""
        declared = template.data.get("parameters") or MDict(template.data.mark)
        values = MDict(given.mark)
        for name, decl in declared.items():
            if "default" in decl:
                values.copy_entry(declared, name, clone(decl["default"]))
        for name, value in given.items():
            mark = given.value_mark(name)
            if name not in declared:
                hint = schema.suggest(name, sorted(declared))
                problems.append(_problem(given.key_mark(name), f"with.{name}",
                                         f"template '{template.display}' has no parameter '{name}'", hint))
                continue
            expected = declared[name].get("type")
            if expected and not _is_type(value, expected):
                problems.append(_problem(mark, f"with.{name}", f"expected {expected}, got {value!r}"))
            values.copy_entry(given, name, value)
        missing = [name for name in declared if name not in values]
        for name in missing:
            problems.append(_problem(child.key_mark("extends"), "with",
                                     f"template parameter '{name}' has no default and is not given",
                                     f"add `with: {{{name}: ...}}`"))
        return None if missing else values

    # -- scope -----------------------------------------------------------------------------

    def _scope(self, doc: Document, values: dict[str, Any], problems: list[Problem],
               late: frozenset[str] = LATE_BOUND) -> Scope:
        data = doc.data
        metadata = data.get("metadata") or {}
        names = {**values, "metadata": metadata, "labels": metadata.get("labels") or {}}
        allowed = frozenset(str(n) for n in data.get("env") or [])
        return Scope(names, allowed, self.env, late, problems)

    def _display(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    # -- foreach / when / imports ----------------------------------------------------------

    def _expand(self, doc: Document, level: _Level, scope: Scope, enabled: bool,
                problems: list[Problem]) -> Iterator[Pipeline]:
        spec, family = level.spec, doc.name
        labels = dict(scope.values["labels"])
        base = {"params": scope.values["params"], "metadata": scope.values["metadata"]}
        if "foreach" not in spec:
            final = substitute(spec, Scope(base, problems=problems), spec.mark)
            yield self._pipeline(doc, level, family, family, labels, final, enabled, problems)
            return
        body = MDict(spec.mark)
        for key, value in spec.items():
            if key not in ("foreach", "do", "batch"):
                body.copy_entry(spec, key, value)
        do = spec.get("do") or MDict(spec.mark)
        files = list(level.files)
        items = self._items(spec, files, problems)
        batch = _batched(spec.get("batch", "auto"), len(items))
        for key, item in items:
            item_scope = Scope({**base, "labels": labels, "item": item, "key": key},
                               problems=problems)
            each = substitute(do, item_scope, do.mark)
            name = str(each.get("name") or f"{family}-{_name_suffix(key, item)}")
            when = self._condition(each.get("when", True), each.value_mark("when"), item_scope.values)
            item_labels = {**labels, **{k: str(v) for k, v in (each.get("labels") or {}).items()}}
            rest = MDict(each.mark)
            for field_name, value in each.items():
                if field_name not in ("name", "when", "labels"):
                    rest.copy_entry(each, field_name, value)
            final = merge(substitute(body, item_scope, body.mark), rest)
            lvl = _Level(final, level.imports, files)
            yield self._pipeline(doc, lvl, name, family, item_labels, final, enabled and when, problems,
                                 batch=batch)

    def _items(self, spec: MDict, files: list[str], problems: list[Problem]) -> list[tuple[Any, Any]]:
        foreach, mark = spec["foreach"], spec.value_mark("foreach")
        if isinstance(foreach, MDict) and set(foreach) <= {"from", "column"} and "from" in foreach:
            foreach = self._items_from_file(foreach, mark, files, problems)
            if foreach is None:
                return []
        if isinstance(foreach, list):
            if not foreach:
                problems.append(_problem(mark, "spec.foreach", "foreach has no items"))
            return [(index, item) for index, item in enumerate(foreach)]
        if isinstance(foreach, dict):
            return list(foreach.items())
        problems.append(_problem(mark, "spec.foreach",
                                 f"foreach must be a list or a mapping, got {type(foreach).__name__}",
                                 "write [a, b], {key: value}, or {from: path/to/file.csv}"))
        return []

    def _items_from_file(self, source: MDict, mark: Mark, files: list[str],
                         problems: list[Problem]) -> list[Any] | None:
        """The items listed in the file, or None (and a problem) when it cannot give them."""
        path = (self.root / str(source["from"])).resolve()
        display = self._display(path)
        if not path.is_relative_to(self.root) or not path.is_file():
            problems.append(_problem(mark, "spec.foreach.from", f"'{source['from']}' is not a file "
                                     "in the repository", "the path is relative to the repo root"))
            return None
        files.append(display)
        try:
            text = load.read_text(path, display)
            if path.suffix.lower() == ".csv":
                return _csv_column(text, source.get("column"), display)
            items = load.parse_any(text, display)
        except SpecError as exc:
            problems.extend(exc.problems)
            return None
        if not isinstance(items, list):
            problems.append(_problem(mark, "spec.foreach.from", f"'{display}' does not hold a list",
                                     "write one YAML list, or a CSV file"))
            return None
        return items

    def _condition(self, condition: Any, mark: Mark, names: dict[str, Any]) -> bool:
        try:
            return conditions.evaluate(condition, plain(names))
        except UserError as exc:
            raise SpecError([_problem(mark, "when", str(exc))]) from None

    def _pipeline(self, doc: Document, level: _Level, name: str, family: str,
                  labels: dict[str, str], spec: MDict, enabled: bool,
                  problems: list[Problem], *, batch: bool = False) -> Pipeline:
        _bind_imports(spec, level.imports, problems)
        data = doc.data
        resolved = MDict(data.mark)
        for key in ("apiVersion", "kind"):
            resolved.copy_entry(data, key, data[key])
        metadata = MDict(data.value_mark("metadata"))
        metadata.put("name", name, data["metadata"].key_mark("name"), data["metadata"].value_mark("name"))
        resolved.copy_entry(data, "metadata", metadata)
        resolved.copy_entry(data, "spec", spec)
        problems.extend(schema.check(resolved, "Pipeline", doc.display, flavour="resolved"))
        return Pipeline(name=name, family=family, source=doc.display, labels=labels,
                        params=plain(data.get("params") or {}), imports=level.imports, spec=spec,
                        files=tuple(dict.fromkeys(level.files)), enabled=enabled, batch=batch)


def _batched(setting: Any, items: int) -> bool:
    """Whether a foreach's items run as one batched family (`spec.batch`; auto: from BATCH_FROM items)."""
    return items >= BATCH_FROM if setting == "auto" else bool(setting)


_FOLDER_KINDS = {"policies": "Policy", "deployments": "Deployment"}  # what a file there most likely is


def read_document(path: Path, display: str) -> Document:
    """Parse a file, check its kind and its schema (as written)."""
    return _document(load.load(path, display), path, display)


def parse_document(text: str, display: str) -> Document:
    """`read_document` of a text read elsewhere (a file at a commit)."""
    return _document(load.parse(text, display), Path(display), display)


def _document(data: MDict, path: Path, display: str) -> Document:
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in schema.KINDS:
        if "kind" not in data:
            raise SpecError([_problem(data.mark, "kind", "missing required key 'kind'",
                                      f"add kind: {_FOLDER_KINDS.get(display.split('/', 1)[0], 'Pipeline')}")])
        raise SpecError([_problem(data.value_mark("kind"), "kind", f"unknown kind {plain(kind)!r}",
                                  schema.suggest(str(kind), list(schema.KINDS)))])
    _raise(schema.check(data, str(kind), display))
    return Document(str(kind), path, display, data)


def _csv_column(text: str, column: Any, display: str) -> list[Any]:
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    rows = list(reader)
    wanted = str(column) if column else (header[0] if header else "")
    if wanted not in header:
        raise SpecError.single(display, f"no column '{wanted}' in CSV",
                               f"columns: {', '.join(header)}" if header else "the file is empty")
    return [row[wanted] for row in rows]


def callable_slots(spec: MDict) -> Iterator[tuple[tuple[str, ...], MDict | MList, str | int]]:
    """Every place in `spec` that names a callable: (field path, container, key or index)."""
    for path in CALLABLE_FIELDS:
        parent: Any = spec
        for step in path[:-1]:
            parent = parent.get(step) if isinstance(parent, dict) else None
        if not isinstance(parent, MDict) or path[-1] not in parent:
            continue
        value = parent[path[-1]]
        if isinstance(value, MList):
            yield from ((path, value, index) for index in range(len(value)))
        else:
            yield path, parent, path[-1]


def _bind_imports(spec: MDict, imports: dict[str, str], problems: list[Problem]) -> None:
    """Replace import names by their dotted paths; a bare unknown name is an error."""
    for path, container, key in callable_slots(spec):
        mark = container.item_mark(int(key)) if isinstance(container, MList) else container.value_mark(str(key))
        container[key] = _bind(container[key], imports, mark, path, problems)  # type: ignore[index]


def _bind(value: Any, imports: dict[str, str], mark: Mark, path: tuple[str, ...],
          problems: list[Problem]) -> Any:
    if not isinstance(value, str) or "." in value or ":" in value:
        return value
    if value in imports:
        return imports[value]
    problems.append(_problem(mark, "spec." + ".".join(path),
                             f"'{value}' is neither a dotted path nor a name under imports:",
                             schema.suggest(value, sorted(imports)) or "write package.module:callable"))
    return value


def _check_unique(pipelines: list[Pipeline], doc: Document) -> None:
    seen: dict[str, int] = {}
    for pipeline in pipelines:
        seen[pipeline.name] = seen.get(pipeline.name, 0) + 1
    twice = sorted(name for name, count in seen.items() if count > 1)
    if twice:
        raise SpecError([_problem(locate(doc.data, ["spec", "do", "name"]), "spec.do.name",
                                  f"foreach makes the name(s) {', '.join(twice)} more than once",
                                  "put ${key} or ${item} in do.name")])


def _is_type(value: Any, expected: str) -> bool:
    if isinstance(value, str) and PLACEHOLDER.search(value):
        return True
    if isinstance(value, bool) and expected in ("number", "integer"):
        return False
    return isinstance(value, _PARAM_TYPES[expected])


def _name_suffix(key: Any, item: Any) -> str:
    """A mapping's items are named by their key; a list's by the item, or its index if a container."""
    if isinstance(key, str) or isinstance(item, dict | list):
        return _slug(key)
    return _slug(item)


def _slug(value: Any) -> str:
    return _SLUG.sub("-", str(value).lower()).strip("-") or "item"


def _problem(mark: Mark, path: str, message: str, hint: str = "") -> Problem:
    return Problem(mark.path, mark.line, mark.col, path, message, hint)


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
