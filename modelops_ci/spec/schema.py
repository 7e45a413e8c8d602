"""The JSON Schemas: loaded from package data, bundled per kind, and turned into Problems.

Each kind's schema refers to shared `defs.json`; `bundle()` inlines those so the printed
schema stands alone for editors and check-jsonschema. Files as written may hold `${...}`
placeholders and partial specs filled by a template, so they are checked against a *lenient*
flavour first; the resolved pipeline is checked against the strict one.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from modelops_ci.errors import Problem, UserError
from modelops_ci.spec.nodes import locate, locate_key, yaml_path

if TYPE_CHECKING:  # jsonschema costs 40 ms to import: only validation needs it (verify reads schemas only)
    import jsonschema
    from jsonschema.exceptions import ValidationError

KINDS = {"Pipeline": "pipeline", "PipelineTemplate": "pipeline-template", "Policy": "policy",
         "Deployment": "deployment"}
Flavour = Literal["file", "resolved"]
_STRICT_KINDS = {"Policy", "Deployment"}  # written as they are read: no placeholders, no template
_LITERAL_DEFS = {"name", "labels", "metadata", "parameter", "placeholder"}
_YAML_WORDS = {"object": "mapping", "array": "list"}  # say it the way the file is written
_PLACEHOLDER = {"type": "string", "pattern": r"\$\{[^}]*\}", "x-placeholder": True}


def _read(name: str) -> dict[str, Any]:
    text = resources.files("modelops_ci.spec").joinpath("schemas", f"{name}.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def kind_for_cli(name: str) -> str:
    """Map `pipeline`, `Pipeline`, `pipeline-template`, ... to the kind."""
    wanted = name.replace("-", "").replace("_", "").lower()
    for kind in KINDS:
        if kind.lower() == wanted:
            return kind
    raise UserError(f"unknown kind '{name}': {suggest(name.lower(), list(KINDS.values()))}")


@cache
def bundle(kind: str, flavour: Flavour = "file") -> dict[str, Any]:
    """The stand-alone schema for `kind`: shared definitions inlined."""
    schema: dict[str, Any] = _rewrite_refs(_read(KINDS[kind]))
    defs = copy.deepcopy(_read("defs")["$defs"])
    if flavour == "file" and kind not in _STRICT_KINDS:
        defs = {name: body if name in _LITERAL_DEFS else _lenient(body) for name, body in defs.items()}
        defs["placeholder"] = _PLACEHOLDER
    own = schema.get("$defs", {})
    assert not set(own) & set(defs), f"{kind}'s own definitions shadow shared ones: {set(own) & set(defs)}"
    schema["$defs"] = {**defs, **own}
    return schema


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: value.replace("defs.json#", "#") if key == "$ref" else _rewrite_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _lenient(node: Any, *, alternative: bool = False) -> Any:
    """Allow a placeholder wherever a value goes, and partial objects (a template may fill them).

    `required` stays in the alternatives of a oneOf: there it tells the forms apart. A `not`
    is kept as written: loosening what it forbids would forbid more. A node marked
    `x-literal` takes no placeholder as its whole value (the resolver needs its shape).
    """
    if isinstance(node, list):
        return [_lenient(item, alternative=alternative) for item in node]
    if not isinstance(node, dict):
        return node
    # if/then rules need the whole resolved value (a template may set half of it): strict only
    dropped = {"dependentRequired", "minProperties", "if", "then", "else"} | (set() if alternative else {"required"})
    body = {
        ("anyOf" if key == "oneOf" else key):
            value if key == "not" else _lenient(value, alternative=key == "oneOf")
        for key, value in node.items()
        if key not in dropped
    }
    if any(key in node for key in ("type", "enum", "const", "pattern")) and not node.get("x-literal"):
        return {"anyOf": [body, {"$ref": "#/$defs/placeholder"}]}
    return body


@cache
def _validator(kind: str, flavour: Flavour) -> jsonschema.protocols.Validator:
    import jsonschema

    schema = bundle(kind, flavour)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def check(doc: Any, kind: str, display: str, flavour: Flavour = "file") -> list[Problem]:
    """Every schema problem of `doc`, located in its source file(s)."""
    errors = _validator(kind, flavour).iter_errors(doc)
    problems = {p for error in errors for p in _explain(doc, error, display)}
    return sorted(problems)


def _explain(root: Any, error: ValidationError, display: str) -> Iterator[Problem]:
    for leaf in _leaves(error):
        yield from _explain_leaf(root, leaf, display)


def _explain_leaf(root: Any, error: ValidationError, display: str) -> Iterator[Problem]:
    path = list(error.absolute_path)
    validator = error.validator
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(_schema(error).get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                yield _at(root, [*path, key], display, f"unknown key '{key}'",
                          suggest(key, allowed), key_position=True)
        return
    if "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str):
        name = error.instance
        allowed = _enum_of(_schema(error)) or [a for e in error.context or []
                                               for a in _enum_of(_schema(e))]
        hint = suggest(name, allowed) if allowed else str(_schema(error).get("description", ""))
        yield _at(root, [*path, name], display, f"'{name}' is not allowed here", hint, key_position=True)
        return
    message, hint = _message(error)
    yield _at(root, path, display, message, hint)


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors to show for `error`: inside anyOf/oneOf, those of the branch the user meant."""
    if (error.validator not in ("anyOf", "oneOf") or not error.context or _describe_forms(error)
            or _expected_types(error)):
        yield error
        return
    branches = _branches(error)
    if not branches:
        yield error
        return
    chosen = max(branches, key=_closeness)
    for sub in chosen:
        yield from _leaves(sub)


def _branches(error: ValidationError) -> list[list[ValidationError]]:
    """The errors inside an anyOf/oneOf, one list per alternative (placeholders left out)."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or []:
        if not _schema(sub).get("x-placeholder"):
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    return list(branches.values())


def _closeness(errors: list[ValidationError]) -> tuple[int, bool]:
    """How near a branch came: the branch that got furthest into the value is the one meant.

    A wrong type or a `not` only says "this is another form"; any other error says the
    value has this form's shape but a mistake inside.
    """
    return max((len(leaf.absolute_path), leaf.validator != "not" and not _expected_types(leaf))
               for error in errors for leaf in _leaves(error))


def _expected_types(error: ValidationError) -> list[str]:
    """The types wanted, when the value has the wrong type for every form (else empty)."""
    if error.validator == "type":
        wanted = _schema(error)["type"]
        return [wanted] if isinstance(wanted, str) else list(wanted)
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return []
    types: list[str] = []
    for branch in _branches(error):
        # A form is ruled out by a wrong type alone; its other errors follow from that.
        found = [t for sub in branch if not sub.path for t in _expected_types(sub)]
        if not found:
            return []
        types += [t for t in found if t not in types]
    return types


def _describe_forms(error: ValidationError) -> str:
    """For a mapping that fits none of several forms keyed by a required key: name the keys.

    When the mapping holds exactly one form's key, the user chose that form: its own errors
    say more (e.g. a bad `path`), so no description is given.
    """
    forms = [_unwrap(form) for form in _schema(error).get(str(error.validator), [])]
    keys = [form.get("required", [None])[0] for form in forms]
    if not (isinstance(error.instance, dict) and keys and all(keys)):
        return ""
    if sum(key in error.instance for key in keys) == 1:
        return ""
    return ", ".join(str(k) for k in keys)


def _unwrap(form: dict[str, Any]) -> dict[str, Any]:
    """The form itself, seen through the lenient placeholder wrapper."""
    inner = form.get("anyOf", [])
    if len(inner) == 2 and inner[1] == {"$ref": "#/$defs/placeholder"}:
        unwrapped: dict[str, Any] = inner[0]
        return unwrapped
    return form


def _message(error: ValidationError) -> tuple[str, str]:
    value, schema, validator = error.instance, _schema(error), error.validator
    types = _expected_types(error)
    if types:
        return _wrong_type(types, value), ""
    if validator in ("anyOf", "oneOf"):
        forms = _describe_forms(error)
        if forms:
            return "does not match any allowed form", f"give exactly one of: {forms}"
        return f"{_show(value)} is not valid here", "see `modelops-ci schema` for the allowed forms"
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key '{missing}'", "add it, or inherit it from a template"
    if validator in ("enum", "const"):
        allowed = _enum_of(schema)
        return f"{_show(value)} is not allowed", suggest(str(value), allowed) or ""
    if validator == "pattern":
        return f"{_show(value)} has the wrong form", schema.get("description", "")
    return error.message, ""


def _schema(error: ValidationError) -> dict[str, Any]:
    """The schema `error` broke (the stubs also allow a boolean schema, which ours never use)."""
    return dict(error.schema) if isinstance(error.schema, dict) else {}


def _enum_of(schema: dict[str, Any]) -> list[str]:
    if "const" in schema:
        return [str(schema["const"])]
    return [str(v) for v in schema.get("enum", [])]


def suggest(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"allowed: {', '.join(allowed)}" if allowed else ""


def _at(root: Any, path: list[Any], display: str, message: str, hint: str,
        *, key_position: bool = False) -> Problem:
    mark = locate_key(root, path) if key_position else locate(root, path)
    shown = mark.path if mark.path != "<generated>" else display
    return Problem(shown, mark.line, mark.col, yaml_path(path), message, hint)


def _wrong_type(expected: list[str], value: Any) -> str:
    words = " or ".join(_YAML_WORDS.get(name, name) for name in expected)
    shown = "" if isinstance(value, dict | list) else f" {_show(value)}"
    return f"expected {words}, got {_type_name(value)}{shown}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    for cls, name in ((bool, "boolean"), (dict, "mapping"), (list, "list"), (str, "string"),
                      (int, "integer"), (float, "number")):
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else _type_name(value)
    return text if len(text) <= 60 else text[:57] + "..."
