"""`modelops-ci register`: a version of a pipeline as a signed tag NAME@vX.Y.Z carrying the evidence."""

from __future__ import annotations

from pathlib import Path

from modelops_ci.commands.registry import repository_root


def register(repo: Path, name: str, *, version: str | None = None, bump: str | None = None, rev: str = "HEAD",
             signing_key: str | None = None, remote: str = "origin", push: bool = True,
             recompute_gates: bool = False) -> str:
    """Sign and (with `push`) push the version tag; returns the line that says where it is."""
    from modelops_ci.registry import promote as writer
    from modelops_ci.registry.signing import resolve_key

    root = repository_root(repo)
    written = writer.register(root, name, resolve_key(root, signing_key), version=version, bump=bump, rev=rev,
                              remote=writer.Remote(remote if push else None), recompute_gates=recompute_gates)
    where = f"pushed to {remote}"
    if not written.pushed:
        where = f"local only: `git push {remote} refs/tags/{written.tag}` publishes it"
    return f"registered {written.tag} at {written.commit[:12]} ({where})"
