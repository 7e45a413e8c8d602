"""GTO's tag grammar (iterative/gto), read and written here so both tools see the same registry.

- `name@vX.Y.Z` registers version vX.Y.Z of `name` at the tagged commit;
- `name#stage#N` assigns `stage` to the version at that commit, N counting the name's stage
  events (1, 2, ...); the latest N for a stage wins. `name#stage` without N is GTO's older form.
- A `!` after the version or stage (`name@v1.0.0!#N`, `name#stage!#N`) cancels it
  (deregister, unassign); `name@deprecated#N` retires the whole name.

Only annotated tags count (GTO reads the tagger and date from the tag object); a lightweight tag
with a registry-like name is ignored, as GTO ignores it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from modelops_ci import git
from modelops_ci.errors import UserError

NAME = r"[a-z0-9]([a-z0-9-/]*[a-z0-9])?"
SEMVER = (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
          r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?")
# GTO's `dirname:name` artifacts are written `dirname=name` in tags (':' is not allowed in a ref).
ARTIFACT = rf"(?P<name>([a-z0-9-_./]+=)?{NAME})"
TAG_RE = re.compile(
    rf"^{ARTIFACT}(((#(?P<stage>{NAME})|@(?P<version>v{SEMVER}))(?P<cancel>!?))"
    rf"|@(?P<deprecated>deprecated))(#(?P<counter>[0-9]+))?$"
)
NAME_RE = re.compile(rf"^{NAME}$")


class RegistryError(UserError):
    """The registry (git tags) cannot be read."""


@dataclass(frozen=True)
class RegistryTag:
    """One parsed registry tag: a version (de)registration, a stage (un)assignment or a retirement."""

    name: str
    version: str | None = None
    stage: str | None = None
    cancel: bool = False
    deprecated: bool = False
    counter: int | None = None


@dataclass(frozen=True)
class Champion:
    """The model version holding a stage: its version (or commit, if never registered) and commit."""

    version: str
    commit: str
    tag: str


def parse(tag: str) -> RegistryTag | None:
    """The registry event a tag name encodes, or None for any other tag (e.g. `v1.2.0`)."""
    match = TAG_RE.match(tag)
    if not match:
        return None
    counter = match["counter"]
    return RegistryTag(
        name=match["name"].replace("=", ":"), version=match["version"], stage=match["stage"],
        cancel=bool(match["cancel"]), deprecated=bool(match["deprecated"]),
        counter=int(counter) if counter is not None else None,
    )


def version_tag(name: str, version: str) -> str:
    """`name@vX.Y.Z`: registers a version."""
    _check_name(name)
    if not re.fullmatch(f"v{SEMVER}", version):
        raise UserError(f"version '{version}' is not vMAJOR.MINOR.PATCH (e.g. v1.0.0)")
    return f"{_in_tag(name)}@{version}"


def stage_tag(name: str, stage: str, counter: int) -> str:
    """`name#stage#N`: assigns a stage; N must be the name's next counter (see `next_counter`)."""
    _check_name(name)
    if not NAME_RE.match(stage):
        raise UserError(f"stage '{stage}' is not a valid stage name: lowercase letters, digits and '-'")
    if counter < 1:
        raise UserError(f"stage counter {counter} must be at least 1")
    return f"{_in_tag(name)}#{stage}#{counter}"


def next_counter(tags: list[str], name: str) -> int:
    """The N for `name`'s next stage tag: one more than any N the name has used."""
    used = [t.counter for t in map(parse, tags) if t and t.name == name and t.counter is not None]
    return max(used, default=0) + 1


def _check_name(name: str) -> None:
    dirname, _, short = name.rpartition(":")
    if not NAME_RE.match(short) or (dirname and not re.fullmatch(r"[a-z0-9-_./]+", dirname)):
        raise UserError(f"'{name}' is not a valid registry name: lowercase letters, digits, '-' and '/', "
                        "starting and ending with a letter or digit")


def _in_tag(name: str) -> str:
    return name.replace(":", "=")


@dataclass(frozen=True)
class TagRef:
    """A registry tag as git holds it: its name, the commit it points at, its tagger date."""

    tag: str
    commit: str
    date: int
    parsed: RegistryTag


FORMAT = "%(refname:strip=2)%00%(objecttype)%00%(*objectname)%00%(taggerdate:unix)"


def read(root: Path) -> list[TagRef]:
    """Every annotated registry tag of the repository at `root`, with the commit it points at."""
    result = git.run("for-each-ref", f"--format={FORMAT}", "refs/tags", cwd=root, check=False)
    if result.returncode != 0:
        raise RegistryError(f"{root}: cannot read the registry's git tags ({result.stderr.strip()}): "
                            "run inside a git repository")
    refs = []
    for line in result.stdout.splitlines():
        tag, kind, commit, date = line.split("\0")
        parsed = parse(tag)
        if parsed and kind == "tag" and commit:
            refs.append(TagRef(tag, commit, int(date or 0), parsed))
    return refs


def champion(root: Path, name: str, stage: str) -> Champion | None:
    """The version of `name` that holds `stage` now, or None when none does.

    Stage events are replayed in order of N (tags without N, GTO's older form, first, by date): an
    assignment moves the stage to its commit, an unassignment of that commit clears it, and
    retiring the name (`name@deprecated#N`) clears every stage.
    """
    refs = [r for r in read(root) if r.parsed.name == name]
    events = sorted((r for r in refs if r.parsed.stage == stage or r.parsed.deprecated),
                    key=lambda r: (r.parsed.counter if r.parsed.counter is not None else -1, r.date))
    holder: TagRef | None = None
    for event in events:
        if event.parsed.deprecated:
            holder = None
        elif not event.parsed.cancel:
            holder = event
        elif holder is not None and holder.commit == event.commit:
            holder = None
    if holder is None:
        return None
    return Champion(_version_at(refs, holder.commit), holder.commit, holder.tag)


def _version_at(refs: list[TagRef], commit: str) -> str:
    """The version registered at `commit` (the latest registered, if several); else the commit, as GTO."""
    versions = [r for r in refs if r.commit == commit and r.parsed.version]
    withdrawn = {r.parsed.version for r in versions if r.parsed.cancel}
    live = [r for r in versions if not r.parsed.cancel and r.parsed.version not in withdrawn]
    if not live:
        return commit
    return str(max(live, key=lambda r: (r.parsed.counter or 0, r.date)).parsed.version)
