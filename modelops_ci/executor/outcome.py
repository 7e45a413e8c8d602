"""What a run of the compiled pipelines did: each stage, ran or restored from DVC's cache, with its
time and key metrics, and each stage that failed or was skipped; made by `run`, printed by
report/console.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageRun:
    """One stage of one pipeline in this run; `gated` lists the metrics the policy's gates judge."""

    pipeline: str
    stage: str
    ran: bool
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    gated: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageFailure:
    """A stage that failed, with the exit code its failure maps to and what its step said."""

    pipeline: str
    stage: str
    exit_code: int
    message: str

    @property
    def name(self) -> str:
        return f"{self.pipeline}:{self.stage}"


@dataclass
class RunReport:
    stages: list[StageRun] = field(default_factory=list)
    pushed: bool = False
    failures: list[StageFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "pipeline:stage", each after a failed stage

    @property
    def broken(self) -> list[str]:
        """The pipelines a stage of which failed, in the order they failed."""
        return list(dict.fromkeys(failure.pipeline for failure in self.failures))
