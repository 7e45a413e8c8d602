"""What a run of the compiled pipelines did: each stage, ran or restored from DVC's cache, with its
time and key metrics; made by `run`, printed by report/console.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageRun:
    """One stage of one pipeline in this run."""

    pipeline: str
    stage: str
    ran: bool
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RunReport:
    stages: list[StageRun] = field(default_factory=list)
    pushed: bool = False
