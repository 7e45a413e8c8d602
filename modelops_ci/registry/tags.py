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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from modelops_ci import git
from modelops_ci.errors import UserError

NAME = r"[a-z0-9]([a-z0-9-/]*[a-z0-9])?"
# ASCII digits only: `\d` would admit other scripts' digits (a mathematical bold zero in v1?.0.0
# would register and sort as v10.0.0).
SEMVER = (r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
          r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?")
# GTO's `dirname:name` artifacts are written `dirname=name` in tags (':' is not allowed in a ref).
ARTIFACT = rf"(?P<name>([a-z0-9-_./]+=)?{NAME})"
TAG_RE = re.compile(
    rf"^{ARTIFACT}(((#(?P<stage>{NAME})|@(?P<version>v{SEMVER}))(?P<cancel>!?))"
    rf"|@(?P<deprecated>deprecated))(#(?P<counter>[0-9]+))?$"
)
# A counter of thousands of digits is not a number anyone means, and int() refuses over 4,300 digits.
MAX_COUNTER_DIGITS = 18
NAME_RE = re.compile(NAME)
ASCII_NUMBER = re.compile(r"[0-9]{1,18}")


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
    """The registry event a tag name encodes, or None for any other tag (e.g. `v1.2.0`) and for a
    registry-like name that breaks the grammar (see `malformed_reason`)."""
    match = TAG_RE.fullmatch(tag)
    if not match or _malformed(match):
        return None
    counter = match["counter"]
    return RegistryTag(
        name=match["name"].replace("=", ":"), version=match["version"], stage=match["stage"],
        cancel=bool(match["cancel"]), deprecated=bool(match["deprecated"]),
        counter=int(counter) if counter is not None else None,
    )


def malformed_reason(tag: str) -> str | None:
    """Why a tag written in the registry's grammar is still not a valid registry tag, or None.

    Such a tag is reported where the registry is shown or verified, never fatal to the others.
    """
    match = TAG_RE.fullmatch(tag)
    return _malformed(match) if match else None


def _malformed(match: re.Match[str]) -> str | None:
    counter = match["counter"]
    if counter is not None and len(counter) > MAX_COUNTER_DIGITS:
        return f"its counter has {len(counter)} digits (at most {MAX_COUNTER_DIGITS})"
    return None


def version_tag(name: str, version: str) -> str:
    """`name@vX.Y.Z`: registers a version."""
    _check_name(name)
    if not re.fullmatch(f"v{SEMVER}", version):
        raise UserError(f"version '{version}' is not vMAJOR.MINOR.PATCH (e.g. v1.0.0)")
    return f"{_in_tag(name)}@{version}"


def stage_tag(name: str, stage: str, counter: int) -> str:
    """`name#stage#N`: assigns a stage; N must be the name's next counter (see `next_counter`)."""
    _check_name(name)
    if not NAME_RE.fullmatch(stage):
        raise UserError(f"stage '{stage}' is not a valid stage name: lowercase letters, digits and '-'")
    if not 1 <= counter < 10**MAX_COUNTER_DIGITS:
        raise UserError(f"stage counter {counter} must be between 1 and {MAX_COUNTER_DIGITS} digits long")
    return f"{_in_tag(name)}#{stage}#{counter}"


def next_counter(tags: list[str], name: str) -> int:
    """The N for `name`'s next stage tag: one more than any N the name has used."""
    used = [t.counter for t in map(parse, tags) if t and t.name == name and t.counter is not None]
    return max(used, default=0) + 1


def _check_name(name: str) -> None:
    dirname, _, short = name.rpartition(":")
    if not NAME_RE.fullmatch(short) or (dirname and not re.fullmatch(r"[a-z0-9-_./]+", dirname)):
        raise UserError(f"'{name}' is not a valid registry name: lowercase letters, digits, '-' and '/', "
                        "starting and ending with a letter or digit")


def _in_tag(name: str) -> str:
    return name.replace(":", "=")


@dataclass(frozen=True)
class TagRef:
    """A registry tag as git holds it: its name, the commit it points at, its tagger date.

    `oid` is the object the ref names (the tag object of an annotated tag), `kind` that object's
    type (`tag` for an annotated tag, `commit` for a lightweight one), `tagger` "Name <email>";
    `message` is filled only when asked for (see `read`), since reading every message of a large
    registry costs time `show` does not need.
    """

    tag: str
    commit: str
    date: int
    parsed: RegistryTag
    oid: str = ""
    tagger: str = ""
    message: str = field(default="", compare=False)
    kind: str = "tag"

    @property
    def order(self) -> tuple[int, int]:
        """Replay order: N first (tags without N, GTO's older form, before any), then the date."""
        return (self.parsed.counter if self.parsed.counter is not None else -1, self.date)


@dataclass(frozen=True)
class Scan:
    """Every registry-named ref: the well-formed ones, and the names that break the grammar."""

    refs: tuple[TagRef, ...]
    malformed: tuple[tuple[str, str], ...] = ()  # (tag, why)


FIELDS = ("%(refname:strip=2)", "%(objecttype)", "%(*objectname)", "%(taggerdate:unix)", "%(objectname)",
          "%(taggername) %(taggeremail)")
FORMAT = "%00".join(FIELDS)


def read(root: Path, *, names: Iterable[str] = (), messages: bool = False) -> list[TagRef]:
    """Every annotated registry tag of the repository at `root`, with the commit it points at.

    One `git for-each-ref` call, whatever the number of tags; `names` narrows it to those
    artifacts' tags, `messages` adds each tag's message (for evidence).
    """
    found = scan(root, names=names, messages=messages).refs
    return [ref for ref in found if ref.kind == "tag" and ref.commit]


def scan(root: Path, *, names: Iterable[str] = (), messages: bool = False) -> Scan:
    """Every registry-named ref, lightweight ones included (verify must see and refuse them), and
    the registry-like names that break the grammar (reported, never fatal to the others)."""
    wanted = list(names)
    patterns = [f"refs/tags/{_in_tag(n)}{sep}*" for n in wanted for sep in "@#"] or ["refs/tags"]
    fmt = FORMAT + ("%00%(contents)%00" if messages else "")
    result = git.run("for-each-ref", f"--format={fmt}", *patterns, cwd=root, check=False)
    if result.returncode != 0:
        raise RegistryError(f"{root}: cannot read the registry's git tags ({result.stderr.strip()}): "
                            "run inside a git repository")
    refs: list[TagRef] = []
    malformed: list[tuple[str, str]] = []
    for record in _records(result.stdout, messages):
        ref = _tag_ref(record)
        if ref is not None and (not wanted or ref.parsed.name in wanted):
            refs.append(ref)
        elif ref is None and (why := malformed_reason(record[0])):
            malformed.append((record[0], why))
    return Scan(tuple(refs), tuple(malformed))


def _records(output: str, messages: bool) -> Iterable[list[str]]:
    if not messages:
        return (line.split("\0") for line in output.splitlines())
    # A message spans lines: records are len(FIELDS) + 1 NUL-separated fields, each record
    # ending in NUL and for-each-ref's newline (which starts the next record's first field).
    parts = output.split("\0")
    width = len(FIELDS) + 2
    return ([parts[i].lstrip("\n"), *parts[i + 1:i + width - 1]] for i in range(0, len(parts) - 1, width - 1))


def _tag_ref(fields: list[str]) -> TagRef | None:
    tag, kind, peeled, date, oid, tagger = fields[:6]
    parsed = parse(tag)
    if not parsed:
        return None
    commit = peeled if kind == "tag" else (oid if kind == "commit" else "")
    return TagRef(tag, commit, int(date or 0), parsed, oid, tagger.strip(),
                  fields[6] if len(fields) > 6 else "", kind)


# -- the registry's state, replayed from its tags (GTO's semantics) -----------------------------


@dataclass(frozen=True)
class Version:
    """A registered version: where it points, the tag that registered it, whether it was withdrawn."""

    version: str
    commit: str
    tag: str
    date: int
    active: bool = True


@dataclass(frozen=True)
class Artifact:
    """One name's state: its versions (oldest semver first), who holds each stage, retired or not."""

    name: str
    versions: tuple[Version, ...]
    stages: dict[str, Champion]
    deprecated: bool = False
    # stage -> every version whose assignment to it is still in force (the holder and those before it)
    assigned: dict[str, tuple[Champion, ...]] = field(default_factory=dict)

    @property
    def latest(self) -> str | None:
        """The highest active version, as GTO's `show` reports it."""
        live = [v.version for v in self.versions if v.active]
        return max(live, key=semver_key) if live else None

    def version(self, version: str) -> Version | None:
        return next((v for v in self.versions if v.version == version), None)


def state(refs: Iterable[TagRef]) -> dict[str, Artifact]:
    """Every name's state, replayed from its tags.

    As GTO: a stage belongs to the most recent assignment that is still in force, i.e. not
    followed by an unassignment of the same commit, and whose version was not withdrawn
    (unassigning the current holder hands the stage back to the previous one still in force).
    Unlike GTO, events are ordered by N rather than by the second they were tagged in, and
    retiring a name (`name@deprecated#N`) clears every stage assigned before it.
    """
    by_name: dict[str, list[TagRef]] = {}
    for ref in refs:
        by_name.setdefault(ref.parsed.name, []).append(ref)
    return {name: _artifact(name, found) for name, found in sorted(by_name.items())}


def _artifact(name: str, refs: list[TagRef]) -> Artifact:
    registered = [r for r in refs if r.parsed.version and not r.parsed.cancel]
    withdrawn = {r.parsed.version for r in refs if r.parsed.version and r.parsed.cancel}
    versions = tuple(sorted((Version(str(r.parsed.version), r.commit, r.tag, r.date,
                                     r.parsed.version not in withdrawn) for r in registered),
                            key=lambda v: semver_key(v.version)))
    retirements = [r for r in refs if r.parsed.deprecated]
    cutoff = max((r.order for r in retirements), default=(-2, 0))
    last: dict[tuple[str, str], TagRef] = {}  # (stage, commit) -> the latest event there
    for event in sorted((r for r in refs if r.parsed.stage and r.order > cutoff), key=lambda r: r.order):
        last[(str(event.parsed.stage), event.commit)] = event
    at_commit = _versions_at(versions)
    holders: dict[str, tuple[TagRef, str]] = {}
    assigned: dict[str, list[Champion]] = {}
    for (stage, commit), event in last.items():
        held = at_commit.get(commit, commit)
        if event.parsed.cancel or held is None:
            continue
        assigned.setdefault(stage, []).append(Champion(held, event.commit, event.tag))
        if stage not in holders or event.order > holders[stage][0].order:
            holders[stage] = (event, held)
    stages = {stage: Champion(held, event.commit, event.tag)
              for stage, (event, held) in sorted(holders.items(), key=lambda item: item[1][0].order)}
    newest_other = max((r.date for r in refs if not r.parsed.deprecated), default=-1)
    deprecated = bool(retirements) and max(r.date for r in retirements) >= newest_other
    return Artifact(name, versions, stages, deprecated, {k: tuple(v) for k, v in assigned.items()})


def _versions_at(versions: tuple[Version, ...]) -> dict[str, str | None]:
    """commit -> the version registered there (the latest, if several); None if every version
    there was withdrawn (its stages lapse). A commit with none is named by its hash, as GTO does."""
    here: dict[str, list[Version]] = {}
    for version in versions:
        here.setdefault(version.commit, []).append(version)
    return {commit: max(live, key=lambda v: (v.date, semver_key(v.version))).version if live else None
            for commit, found in here.items() for live in [[v for v in found if v.active]]}


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
    """Sort key for vX.Y.Z[-pre][+build]: a pre-release sorts before its release (semver.org §11)."""
    core, _, pre = version.lstrip("v").partition("+")[0].partition("-")
    major, minor, patch = (_ascii_int(p) for p in [*core.split("."), "0", "0"][:3])
    fields = tuple(_pre_release_field(f) for f in pre.split(".")) if pre else ()
    return (major, minor, patch, 0 if pre else 1, fields)


def _ascii_int(text: str) -> int:
    return int(text) if ASCII_NUMBER.fullmatch(text) else 0


def _pre_release_field(text: str) -> tuple[int, int, str]:
    if ASCII_NUMBER.fullmatch(text):
        return (0, int(text), "")
    return (1, 0, text)


def bump(version: str | None, part: str) -> str:
    """The next version after `version` (v0.0.0 when there is none): major, minor or patch."""
    major, minor, patch = semver_key(version or "v0.0.0")[:3]
    if part == "major":
        return f"v{major + 1}.0.0"
    if part == "minor":
        return f"v{major}.{minor + 1}.0"
    if part == "patch":
        return f"v{major}.{minor}.{patch + 1}"
    raise UserError(f"cannot bump '{part}': use major, minor or patch")


@dataclass(frozen=True)
class Event:
    """One registry event, as GTO's `history` lists them."""

    date: int
    name: str
    event: str  # registration, deregistration, assignment, unassignment, deprecation
    version: str | None
    stage: str | None
    commit: str
    tag: str
    tagger: str
    counter: int | None


def history(refs: Iterable[TagRef], name: str) -> list[Event]:
    """`name`'s events, oldest first (by date, then N)."""
    mine = [r for r in refs if r.parsed.name == name]
    at_commit = {r.commit: str(r.parsed.version) for r in sorted(mine, key=lambda r: r.date)
                 if r.parsed.version and not r.parsed.cancel}
    events = [Event(r.date, name, _event_kind(r.parsed), r.parsed.version or at_commit.get(r.commit, r.commit)
                    if not r.parsed.deprecated else None, r.parsed.stage, r.commit, r.tag, r.tagger, r.parsed.counter)
              for r in mine]
    return sorted(events, key=lambda e: (e.date, e.counter if e.counter is not None else -1, e.tag))


def _event_kind(parsed: RegistryTag) -> str:
    if parsed.deprecated:
        return "deprecation"
    if parsed.version:
        return "deregistration" if parsed.cancel else "registration"
    return "unassignment" if parsed.cancel else "assignment"
