"""What a gate reads: the pipeline's compiled settings and its data, loaded once, on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops_ci.steps.context import StepContext

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class GateContext:
    """A step context plus lazily read tables (predictions, train, test, dataset), and the model's
    card when it is already in memory (a batched series keeps it in its record, not in a file)."""

    step: StepContext
    _frames: dict[str, Any] = field(default_factory=dict)
    _card: dict[str, Any] | None = None

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

    @property
    def card_file(self) -> str:
        """Where the model's card is kept: model.json beside the model, or a series' record."""
        if self._card is not None:
            return self.step.layout.series_record
        return self.step.layout.model_card

    def has_card(self) -> bool:
        return self._card is not None or self.step.path(self.card_file).is_file()

    def card(self) -> dict[str, Any]:
        """The model's card (ModelIntegrityError when its file is missing or unreadable)."""
        if self._card is not None:
            return self._card
        from modelops_ci.ml.model_store import read_card

        return read_card(self.step.path(self.card_file))
