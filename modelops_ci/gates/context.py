"""What a gate reads: the pipeline's compiled settings and its data, loaded once, on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops_ci.steps.context import StepContext

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class GateContext:
    """A step context plus lazily read tables (predictions, train, test, dataset)."""

    step: StepContext
    _frames: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def params(self) -> dict[str, Any]:
        return self.step.params

    def frame(self, which: str) -> pd.DataFrame:
        """`predictions`, `train`, `test` or `dataset` of this pipeline."""
        if which not in self._frames:
            from modelops_ci.steps.frames import read_parquet

            self._frames[which] = read_parquet(self.step.path(getattr(self.step.layout, which)))
        frame: pd.DataFrame = self._frames[which]
        return frame
