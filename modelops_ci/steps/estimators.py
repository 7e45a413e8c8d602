"""What the steps know of estimators, and the one loader of the dotted paths a spec names.

A spec names code as `package.module:attr` or `package.module.Attr`: the estimator, a data
source plug-in, a transform. train, ingest and `validate --deep` load them here, with one rule for
where modules are found (the installed packages, then the repository itself), so what `validate
--deep` accepts is what the steps can import.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Estimators that need their inputs scaled (a pipeline puts a StandardScaler before them).
SCALE_SENSITIVE = ("sklearn.linear_model", "sklearn.svm", "sklearn.neighbors", "sklearn.neural_network")

MISSING_MODULE = "missing module"
BROKEN_MODULE = "broken module"
MISSING_NAME = "missing name"
_HINTS = {MISSING_MODULE: "install the package or fix the path", BROKEN_MODULE: "fix the module",
          MISSING_NAME: "check the name after the module"}


@dataclass(frozen=True)
class DottedPath:
    """`package.module:attr.inner` (or `package.module.Attr`) split into module and attribute."""

    module: str
    attr: str

    @classmethod
    def parse(cls, dotted: str) -> DottedPath:
        module, _, attr = dotted.partition(":")
        if not attr:
            module, _, attr = dotted.rpartition(".")
        return cls(module, attr)


class CannotLoad(Exception):
    """A dotted path that names nothing: its module is missing or fails to import, or it has no
    such attribute. `message` and `hint` say so to the spec's author."""

    def __init__(self, path: DottedPath, kind: str, detail: str = "", close: str = "") -> None:
        self.path = path
        self.kind = kind
        self.detail = detail
        self.close = close  # the module's public name closest to a missing one, if any
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.kind == MISSING_MODULE:
            return f"cannot import module '{self.path.module}' ({self.detail})"
        if self.kind == BROKEN_MODULE:
            return f"importing '{self.path.module}' failed: {self.detail}"
        return f"'{self.path.module}' has no '{self.path.attr}'"

    @property
    def hint(self) -> str:
        return _HINTS[self.kind]


def load(dotted: str, root: Path) -> Any:
    """The object `dotted` names; modules of the repository at `root` are importable too."""
    path = DottedPath.parse(dotted)
    module = _module(path, root)
    target: Any = module
    for part in path.attr.split("."):
        if not hasattr(target, part):
            raise CannotLoad(path, MISSING_NAME, close=_closest(part, target))
        target = getattr(target, part)
    return target


def _module(path: DottedPath, root: Path) -> Any:
    _importable(root)
    try:
        return importlib.import_module(path.module)
    except (ImportError, ValueError, TypeError) as exc:  # ValueError: no module part; TypeError: a relative one
        raise CannotLoad(path, MISSING_MODULE, str(exc)) from None
    except Exception as exc:  # a plug-in's own import-time bug is the spec author's to fix, not ours
        raise CannotLoad(path, BROKEN_MODULE, f"{type(exc).__name__}: {exc}") from None


def _importable(root: Path) -> None:
    """Make the repository's own modules importable: plug-ins may live in the repo itself."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def _closest(name: str, target: Any) -> str:
    public = [n for n in dir(target) if not n.startswith("_")]
    close = difflib.get_close_matches(name, public, n=1)
    return close[0] if close else ""


def repo_module_files(dotted: str, root: Path) -> list[str]:
    """The repository files that importing the module of `dotted` runs (its packages' `__init__.py`
    and itself), relative to `root` and found without importing anything; none for a module that is
    not in the repository (an installed package)."""
    import importlib.machinery

    module = DottedPath.parse(dotted).module
    if not all(part.isidentifier() for part in module.split(".")):
        return []
    root = root.resolve()
    found: list[str] = []
    locations = [str(root)]
    for depth in range(1, module.count(".") + 2):
        spec = importlib.machinery.PathFinder.find_spec(".".join(module.split(".")[:depth]), locations)
        if spec is None:
            return []
        if spec.has_location and spec.origin:
            path = Path(spec.origin).resolve()
            if not path.is_relative_to(root):  # a link out of the repository: not the repository's code
                return []
            found.append(path.relative_to(root).as_posix())
        locations = list(spec.submodule_search_locations or [])
    return found


def in_repository(top: str, root: Path) -> bool:
    """Whether the top-level module `top` is found in the repository (looked up, not imported)."""
    import importlib.machinery

    return top.isidentifier() and importlib.machinery.PathFinder.find_spec(top, [str(root)]) is not None
