"""The resolved objects the rest of the tool works with."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_ci.spec.nodes import MDict


@dataclass(frozen=True)
class Document:
    """One parsed file: its kind and marked content. `display` is its repo-relative path."""

    kind: str
    path: Path
    display: str
    data: MDict

    @property
    def name(self) -> str:
        metadata = self.data.get("metadata")
        return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


@dataclass(frozen=True)
class Pipeline:
    """A fully resolved pipeline: no placeholders, template merged, one foreach item."""

    name: str
    family: str
    source: str
    labels: dict[str, str]
    params: dict[str, Any]
    imports: dict[str, str]
    spec: MDict
    files: tuple[str, ...]
    enabled: bool = True
    batch: bool = False  # one series of a batched family (spec.batch): compiled with its family

    @property
    def task(self) -> str:
        return str(self.spec["task"])

    @property
    def gates(self) -> MDict:
        gates = self.spec.get("gates")
        return gates if isinstance(gates, MDict) else MDict(self.spec.mark)


@dataclass(frozen=True)
class Policy:
    """A governance policy: which pipelines, which gates, which stages and promotion rules."""

    name: str
    source: str
    doc: MDict
    stages: tuple[str, ...]
    gates: MDict
    promotion: dict[str, Any] = field(default_factory=dict)

    @property
    def selector(self) -> MDict:
        selector: MDict = self.doc["spec"]["selector"]
        return selector

    def selects(self, pipeline: Pipeline) -> bool:
        names = self.selector.get("names")
        if names and not any(fnmatch.fnmatchcase(pipeline.name, glob) for glob in names):
            return False
        labels = self.selector.get("labels") or {}
        return all(pipeline.labels.get(key) == value for key, value in labels.items())
