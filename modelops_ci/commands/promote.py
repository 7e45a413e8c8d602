"""`modelops-ci promote`: a registered version assigned to a stage by a signed tag NAME#STAGE#N."""

from __future__ import annotations

from pathlib import Path

from modelops_ci.commands.registry import repository_root
from modelops_ci.errors import UserError


def promote(repo: Path, target: str, stage: str, *, pr: int | None = None, approvers: tuple[str, ...] = (),
            signing_key: str | None = None, remote: str = "origin", push: bool = True,
            recompute_gates: bool = False) -> str:
    """Promote `target` (NAME@vX.Y.Z) to `stage`; returns the line that says which tag holds it now."""
    from modelops_ci.registry import promote as writer
    from modelops_ci.registry import tags
    from modelops_ci.registry.signing import resolve_key

    parsed = tags.parse(target)
    if parsed is None or parsed.version is None or parsed.cancel or parsed.counter is not None:
        raise UserError(f"'{target}' is not NAME@vX.Y.Z (e.g. loans@v1.2.0): name the registered version "
                        "to promote")
    root = repository_root(repo)
    written = writer.promote(root, parsed.name, parsed.version, stage, resolve_key(root, signing_key), pr=pr,
                             approvers=approvers, remote=writer.Remote(remote if push else None),
                             recompute_gates=recompute_gates)
    pushed = f"on {remote}" if written.pushed else "local only"
    if not written.created:
        return f"already promoted: {written.tag} assigns {stage} to {target} with the same evidence ({pushed})"
    retried = f", after {written.attempts} attempts" if written.attempts > 1 else ""
    return f"promoted {target} to {stage}: {written.tag} ({pushed}{retried})"
