"""Which versions a deployment file names may serve: those holding a verified tag of its stage.

The deployment file is reviewed in git, but the versions it names are trusted only through the
registry's verified tags (DESIGN 7a). A version whose assignment to the stage verifies and is still
in force may serve. One that holds only the stage before's verified tag is *pending*: the promotion
PR that names it has merged (or is open) and its stage tag is not signed yet, so it waits and the
rest keeps serving. Anything else is refused, naming the tag that is missing or refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelops_ci.registry import tags
from modelops_ci.registry.state import VerifiedRegistry
from modelops_ci.spec.deployment import Deployment

if TYPE_CHECKING:
    from modelops_ci.layout import Layout

Role = Literal["champion", "challenger"]


@dataclass(frozen=True)
class Standing:
    """One version a deployment names, and whether it may serve."""

    model: str
    version: str
    role: Role
    tag: tags.Champion | None  # the verified stage tag that lets it serve
    commit: str = ""  # the commit its version tag points at ("" when unregistered)
    pending: str = ""  # why it waits (it holds the stage before's tag only)
    refused: str = ""  # why it may not be named at all

    @property
    def servable(self) -> bool:
        return self.tag is not None


def standings(registry: VerifiedRegistry, deployment: Deployment,
              stages_of: Callable[[str], tuple[str, ...]]) -> list[Standing]:
    """Every version `deployment` names, champion first, model by model. `stages_of(name)`: the
    stages the model's policy gives it, in order."""
    found: list[Standing] = []
    for model in deployment.models.values():
        roles: list[tuple[Role, str | None]] = [("champion", model.champion), ("challenger", model.challenger)]
        for role, version in roles:
            if version is not None:
                found.append(standing(registry, deployment.stage, model.name, version, role, stages_of(model.name)))
    return found


def standing(registry: VerifiedRegistry, stage: str, name: str, version: str, role: Role,
             stages: tuple[str, ...]) -> Standing:
    artifact = registry.artifacts.get(name)
    registered = artifact.version(version) if artifact else None
    if artifact is None or registered is None or not registered.active:
        return Standing(name, version, role, None, refused=_unregistered(registry, name, version))
    held = _held(artifact, stage, version)
    if held is not None:
        return Standing(name, version, role, held, registered.commit)
    wanted = tags.stage_tag(name, stage, 1).rsplit("#", 1)[0] + "#N"
    refused = [r for r in registry.refused_of(name, stage) if r.commit == registered.commit]
    missing = (f"{wanted} does not verify ({'; '.join(f'{r.tag} [{r.rule}]' for r in refused[:3])})" if refused
               else f"no {wanted} tag holds it")
    if stage not in stages:
        return Standing(name, version, role, None, registered.commit,
                        refused=f"{missing}, and '{stage}' is not one of its stages "
                                f"({', '.join(stages) or 'no policy selects it'})")
    index = stages.index(stage)
    before = stages[index - 1] if index else None
    if before is None or _held(artifact, before, version) is not None:
        came = f"it holds '{before}'" if before else "it is registered"
        return Standing(name, version, role, None, registered.commit,
                        pending=f"{missing}: {came}; it serves once `{wanted}` is signed (promote.yml, "
                                "after the promotion PR merges)")
    return Standing(name, version, role, None, registered.commit,
                    refused=f"{missing}, nor does it hold '{before}': promote it to '{before}' first")


def _held(artifact: tags.Artifact, stage: str, version: str) -> tags.Champion | None:
    return next((c for c in artifact.assigned.get(stage, ()) if c.version == version), None)


def _unregistered(registry: VerifiedRegistry, name: str, version: str) -> str:
    artifact = registry.artifacts.get(name)
    if registry.untrusted:
        return f"no tag can be verified ({registry.untrusted})"
    refused = [r for r in registry.refused_of(name) if (p := tags.parse(r.tag)) is not None and p.version == version]
    if refused:
        return f"{refused[0].tag} does not verify [{refused[0].rule}]: {refused[0].reason}"
    live = ", ".join(v.version for v in artifact.versions if v.active) if artifact else ""
    return f"{name}@{version} is not registered (registered: {live or 'none'})"


def params_at(root: Path, commit: str, layout: Layout) -> dict[str, Any]:
    """The pipeline's compiled params as `commit` holds them (empty when there are none)."""
    import yaml

    from modelops_ci import git

    raw = git.show_file(root, commit, layout.params)
    loaded = yaml.safe_load(raw) if raw else None
    return loaded if isinstance(loaded, dict) else {}
