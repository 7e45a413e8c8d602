"""What a promotion request is called: its branch and the deployments file it changes.

One home for the names, because two sides must agree on them: `promotion-request` makes the
branch and the file, and the approvals rule accepts a PR only if it is exactly that branch and
that file for this name, version and stage.
"""

from __future__ import annotations

from dataclasses import dataclass

DEPLOYMENTS_DIR = "deployments"
BRANCH_PREFIX = "promote"


@dataclass(frozen=True)
class Request:
    """What to promote where, each part already checked against the grammar."""

    name: str
    version: str
    stage: str
    base: str
    canary: int | None = None  # the challenger's first share (percent); 100: champion at once

    @property
    def branch(self) -> str:
        return f"{BRANCH_PREFIX}/{self.name.replace(':', '=')}-{self.version}-to-{self.stage}"

    @property
    def deployment(self) -> str:
        return f"{DEPLOYMENTS_DIR}/{self.stage}.yaml"

    @property
    def title(self) -> str:
        return f"Promote {self.name} {self.version} to {self.stage}"
