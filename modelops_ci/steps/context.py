"""What a step knows: the repo, the pipeline's compiled params, its file layout; and how a step
reports a user's mistake at the line of the spec that caused it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modelops_ci.errors import SpecError, UserError
from modelops_ci.fsutil import write_atomic
from modelops_ci.layout import Layout

if TYPE_CHECKING:
    from modelops_ci.ml.tracking import Tracked
    from modelops_ci.steps.reads import Reads


class DataError(UserError):
    """The data does not fit the spec (missing column, one class, empty...)."""


@dataclass(frozen=True)
class StepContext:
    """One pipeline's settings as compiled, and where its files are."""

    root: Path
    name: str
    params: dict[str, Any]
    family: str | None = None  # a series of this batched family (its files sit under the family's)

    @cached_property
    def layout(self) -> Layout:
        return Layout(self.name, self.family)

    def reading(self, reads: Reads) -> StepContext:
        """This context with only the params `reads` declares: what the step's stage depends on."""
        return StepContext(self.root, self.name, reads.select(self.params), self.family)

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def tracked(self) -> Tracked:
        """This pipeline as MLflow tracking sees it (a family's series log to the family's experiment)."""
        from modelops_ci.ml.tracking import Tracked

        return Tracked(self.root, self.name, str(self.params.get("family") or self.name))

    @property
    def task(self) -> str:
        return str(self.params["task"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.params["data"]
        return data

    @property
    def seed(self) -> int:
        return int(self.params.get("split", {}).get("seed", 0))

    def fail(self, yaml_path: str, message: str, hint: str) -> DataError:
        """An error naming the spec file and line behind `yaml_path` (e.g. spec.data.target.column)."""
        return DataError(f"{self.where(yaml_path)}: {message}: {hint}")

    def where(self, yaml_path: str) -> str:
        """`file:line: yaml.path` of a spec value, found by resolving the specs again (errors only)."""
        from modelops_ci.spec import workspace
        from modelops_ci.spec.nodes import locate

        steps: list[str | int] = [int(s) if s.isdigit() else s for s in yaml_path.split(".")[1:]]
        try:
            space = workspace.read(self.root)
        except UserError:
            space = None
        for pipeline in space.pipelines if space else []:
            if pipeline.name == self.name:
                mark = locate(pipeline.spec, steps)
                return f"{mark.path}:{mark.line}: {yaml_path}"
        return f"{self.layout.params}: {yaml_path}"

    def write_json(self, relative: str, payload: Any) -> None:
        write_atomic(self.path(relative), json.dumps(payload, indent=2, sort_keys=True) + "\n")


def load_context(root: Path, name: str) -> StepContext:
    """The context of pipeline `name`, read from its compiled params."""
    layout = Layout(name)
    params_file = root / layout.params
    if not params_file.is_file():
        raise UserError(f"{layout.params}: not found: run `modelops-ci compile` (is '{name}' a pipeline?)")
    try:
        params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError.single(layout.params, f"unreadable: {exc}", "run `modelops-ci compile`") from None
    return StepContext(root.resolve(), name, params)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
