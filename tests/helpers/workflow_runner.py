"""A local GitHub Actions runner for tests (#6): runs a workflow's jobs as GitHub's runner would.

    run = WorkflowRun(PROJECT / ".github/workflows/ci.yml", origin=bare_repo, server=fake_github,
                      event=pull_request_event(fake_github, "acme/models", 7), root=tmp_path)
    jobs = run.run()                          # every job, in `needs` order; or run.run(["ci"])
    assert jobs["ci"].result == "success", jobs["ci"].log()
    jobs["ci"].summary, jobs["ci"].annotations, jobs["ci"].step("modelops-ci ci").stdout

Each job gets a fresh workspace, HOME and RUNNER_TEMP, and GitHub's environment: GITHUB_EVENT_PATH
(the event payload, built from the fake server's own pull request and repository objects),
GITHUB_REF/SHA/HEAD_REF/BASE_REF, GITHUB_API_URL (the fake server), and per step GITHUB_OUTPUT,
GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY, read back after the step as the runner does.
`run:` steps run with bash as GitHub runs them (`bash -e {0}`, or `bash --noprofile --norc -eo
pipefail {0}` for `shell: bash`); their stdout and stderr are scanned for workflow commands
(`::error file=...,line=...::message`).

`${{ }}` is evaluated for the subset the workflows use: the github, env, inputs, steps, secrets,
needs and runner contexts (matrix and strategy in a matrix job); literals; `!`, `==`, `!=`, `&&`,
`||` and parentheses with GitHub's loose equality and truthiness; success(), failure(), always(),
cancelled(), hashFiles() and fromJSON().
Anything else raises ExpressionError, so a workflow that grows past the runner fails loudly instead
of being run wrongly. Substitution is one pass: `${{ }}` inside a value (a PR title) is data.

`uses:` steps it cannot run are stood in for: actions/checkout (a real git fetch from the bare
`origin`, honouring ref, fetch-depth and persist-credentials), actions/setup-python (the running
interpreter is on PATH), actions/cache (restores nothing), actions/upload-artifact and
download-artifact (a directory per run; `pattern` and `merge-multiple` too), and local composite
actions (`./...`: their steps run recursively with their inputs; looked up in the workspace, else
in this project). Composite steps
that `python -m pip install` are recorded (`JobResult.installs`), not executed: nothing is
downloaded, and the tool under test is already installed.

A job with `strategy.matrix` (a mapping, or `${{ fromJSON(...) }}`; include, exclude, fail-fast)
runs once per combination, in GitHub's order, each with its own workspace and `matrix` context; with
fail-fast (the default) a failed run cancels those not started. Its JobResult holds the runs
(`.runs`, each with `.matrix`) and fails when any of them failed or was cancelled.

A job's `environment:` is a GitHub Environment: its secrets (`environments={"model-signing":
{...}}`) reach only jobs that name it, and only in a run whose branch its deployment rule allows
(`environment_branches`, default: the default branch only). As on GitHub, a run on a pull request
is judged by its head branch, and a job refused by the rule fails before its first step.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.github_server import REPO, TOKEN, FakeGitHub

PROJECT = Path(__file__).resolve().parents[2]
SERVER_URL = "https://github.com"
RUN_ID = 4242
STEP_TIMEOUT = 600  # seconds: nothing here should take minutes


class RunnerError(Exception):
    """The workflow asks for something this runner does not do: extend it, don't guess."""


class ExpressionError(RunnerError):
    """A `${{ }}` expression outside the supported subset, or malformed."""


# -- expressions --------------------------------------------------------------------------------

CONTEXTS = frozenset({"github", "env", "inputs", "steps", "secrets", "needs", "runner", "matrix", "strategy"})
MATRIX_CONTEXTS = frozenset({"matrix", "strategy"})  # only inside a job with `strategy:`
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
FUNCTIONS = STATUS_FUNCTIONS | {"hashfiles", "fromjson", "startswith"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>==|!=|&&|\|\||[!()\[\].,])
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
""", re.VERBOSE)
_EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_WHOLE = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.DOTALL)

Node = tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ExpressionError(f"unsupported syntax at {text[pos:pos + 20]!r} in ${{{{ {text} }}}}")
        kind = match.lastgroup or ""
        if kind != "space":
            found.append((kind, match.group()))
        pos = match.end()
    return found


class _Parser:
    """Recursive descent over GitHub's precedence: `||` < `&&` < `==`/`!=` < `!` < property access."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def parse(self) -> Node:
        node = self._or()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.pos][1]!r} in ${{{{ {self.text} }}}}")
        return node

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens) or (expected and self.tokens[self.pos][1] != expected):
            raise ExpressionError(f"expected {expected or 'more'} in ${{{{ {self.text} }}}}")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _or(self) -> Node:
        node = self._and()
        while self._peek() == "||":
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._equality()
        while self._peek() == "&&":
            self._take()
            node = ("and", node, self._equality())
        return node

    def _equality(self) -> Node:
        node = self._unary()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            node = ("eq" if op == "==" else "ne", node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._peek() == "!":
            self._take()
            return ("not", self._unary())
        return self._postfix(self._primary())

    def _primary(self) -> Node:
        kind, value = self._take()
        if kind == "string":
            return ("lit", value[1:-1].replace("''", "'"))
        if kind == "number":
            return ("lit", float(value) if "." in value else int(value))
        if value == "(":
            node = self._or()
            self._take(")")
            return node
        if kind != "name":
            raise ExpressionError(f"unexpected {value!r} in ${{{{ {self.text} }}}}")
        literal = {"true": True, "false": False, "null": None}
        if value in literal:
            return ("lit", literal[value])
        if self._peek() == "(":
            return self._call(value)
        if value.lower() not in CONTEXTS:
            raise ExpressionError(f"context '{value}' is not supported by the test runner "
                                  f"(only {', '.join(sorted(CONTEXTS))}): ${{{{ {self.text} }}}}")
        return ("ctx", value.lower())

    def _call(self, name: str) -> Node:
        if name.lower() not in FUNCTIONS:
            raise ExpressionError(f"function {name}() is not supported by the test runner: ${{{{ {self.text} }}}}")
        self._take("(")
        args = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        return ("call", name.lower(), tuple(args))

    def _postfix(self, node: Node) -> Node:
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                kind, name = self._take()
                if kind != "name":
                    raise ExpressionError(f"unsupported property {name!r} in ${{{{ {self.text} }}}}")
                node = ("get", node, ("lit", name))
            else:
                node = ("get", node, self._or())
                self._take("]")
        return node


def _uses_status(node: Node) -> bool:
    if node[0] == "call":
        return node[1] in STATUS_FUNCTIONS or any(_uses_status(arg) for arg in node[2])
    return any(_uses_status(part) for part in node[1:] if isinstance(part, tuple))


def truthy(value: Any) -> bool:
    """GitHub's truthiness: false, 0, -0, NaN, '' and null are falsy."""
    if isinstance(value, (dict, list)):
        return True
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (False, 0, "", None)


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip() or 0)
        except ValueError:
            return float("nan")
    return float("nan")


def loosely_equal(left: Any, right: Any) -> bool:
    """GitHub's `==`: strings ignore case; different types are compared as numbers."""
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if isinstance(left, (dict, list)) or isinstance(right, (dict, list)):
        return left is right
    if type(left) is type(right):
        return bool(left == right)
    return _number(left) == _number(right)


def as_string(value: Any) -> str:
    """How an expression's value is written into a string (env, with, run)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2)
    return str(value)


@dataclass
class Scope:
    """What expressions see: the contexts, and the status that success()/failure() report."""

    contexts: dict[str, Any]
    succeeded: bool = True  # every earlier step (or needed job) succeeded
    failed: bool = False  # an earlier step (or needed job) failed
    workspace: Path | None = None

    def evaluate(self, expression: str) -> Any:
        return self._eval(_Parser(expression).parse())

    def interpolate(self, value: Any) -> str:
        """A `with:`/`env:`/`run:` value with each `${{ }}` replaced, once (results are not re-read)."""
        text = as_string(value)
        return _EMBEDDED.sub(lambda m: as_string(self.evaluate(m.group(1))), text)

    def condition(self, value: Any) -> bool:
        """An `if:`; without a status function it means `success() && (...)`, as on GitHub."""
        if value is None:
            return self.succeeded
        if isinstance(value, bool):
            return self.succeeded and value
        text = str(value)
        whole = _WHOLE.match(text)
        if whole:
            text = whole.group(1)
        elif "${{" in text:
            raise ExpressionError(f"if: {value!r} mixes text and ${{{{ }}}}: GitHub reads it as a non-empty "
                                  "string, always true")
        node = _Parser(text).parse()
        result = truthy(self._eval(node))
        return result if _uses_status(node) else self.succeeded and result

    def _eval(self, node: Node) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "ctx":
            if node[1] in MATRIX_CONTEXTS and node[1] not in self.contexts:
                raise ExpressionError(f"the {node[1]} context is only defined in a job with `strategy.matrix`")
            return self.contexts.get(node[1], {})
        if kind == "get":
            return _property(self._eval(node[1]), self._eval(node[2]))
        if kind == "not":
            return not truthy(self._eval(node[1]))
        if kind in ("eq", "ne"):
            same = loosely_equal(self._eval(node[1]), self._eval(node[2]))
            return same if kind == "eq" else not same
        if kind == "and":
            left = self._eval(node[1])
            return self._eval(node[2]) if truthy(left) else left
        if kind == "or":
            left = self._eval(node[1])
            return left if truthy(left) else self._eval(node[2])
        return self._function(node[1], [self._eval(arg) for arg in node[2]])

    def _function(self, name: str, args: list[Any]) -> Any:
        if name == "hashfiles":
            return hash_files(self.workspace or Path(), [as_string(a) for a in args])
        if name == "startswith":  # GitHub compares case-insensitively, values cast to strings
            if len(args) != 2:
                raise ExpressionError("startsWith() takes two arguments")
            return as_string(args[0]).lower().startswith(as_string(args[1]).lower())
        if name == "fromjson":
            if len(args) != 1:
                raise ExpressionError("fromJSON() takes one argument")
            try:
                return json.loads(as_string(args[0]))
            except ValueError as exc:
                raise ExpressionError(f"fromJSON(): not JSON: {as_string(args[0])!r} ({exc})") from None
        if args:
            raise ExpressionError(f"{name}() takes no arguments")
        return {"success": self.succeeded, "failure": self.failed, "always": True, "cancelled": False}[name]


def _property(obj: Any, key: Any) -> Any:
    """`obj.key`: a missing property is null; context keys ignore case, as on GitHub."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        folded = {str(k).casefold(): v for k, v in obj.items()}
        return folded.get(str(key).casefold())
    if isinstance(obj, list) and isinstance(key, (int, float)) and 0 <= int(key) < len(obj):
        return obj[int(key)]
    return None


def hash_files(workspace: Path, patterns: Sequence[str]) -> str:
    """hashFiles(): SHA-256 over the SHA-256 of each matching file (sorted), '' when none match."""
    files = sorted({Path(p) for pattern in patterns for p in glob.glob(str(workspace / pattern), recursive=True)
                    if Path(p).is_file()})
    if not files:
        return ""
    outer = hashlib.sha256()
    for path in files:
        outer.update(hashlib.sha256(path.read_bytes()).digest())
    return outer.hexdigest()


# -- strategy.matrix ------------------------------------------------------------------------------


def expand_matrix(matrix: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The combinations of a `strategy.matrix`, in GitHub's order: the product of its vectors (the
    first key varies slowest), less those `exclude` matches, then each `include` entry added to every
    combination whose original values it does not overwrite, or else appended as a combination."""
    vectors = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    for key, values in vectors.items():
        if not isinstance(values, list) or not values:
            raise RunnerError(f"Matrix vector '{key}' does not contain any values (GitHub fails the workflow)")
    combos = [dict(zip(vectors, values, strict=True)) for values in itertools.product(*vectors.values())]
    if not vectors:
        combos = []
    excluded = list(matrix.get("exclude") or [])
    combos = [c for c in combos if not any(all(loosely_equal(c.get(k), v) for k, v in e.items()) for e in excluded)]
    originals = [dict(c) for c in combos]
    for extra in matrix.get("include") or []:
        fits = [i for i, original in enumerate(originals)
                if all(loosely_equal(original[k], v) for k, v in extra.items() if k in original)]
        for i in fits:
            combos[i].update(extra)
        if not fits:
            combos.append(dict(extra))
    if not combos:
        raise RunnerError("strategy.matrix has no combination to run")
    return combos


# -- workflow commands and file commands ---------------------------------------------------------


@dataclass(frozen=True)
class Annotation:
    """A `::error|warning|notice k=v,...::message` line a step printed, unescaped as GitHub reads it."""

    level: str
    message: str
    properties: dict[str, str]
    stream: str = "stdout"

    @property
    def file(self) -> str | None:
        return self.properties.get("file")

    @property
    def line(self) -> int | None:
        return int(self.properties["line"]) if "line" in self.properties else None

    @property
    def title(self) -> str | None:
        return self.properties.get("title")


_COMMAND = re.compile(r"^\s*::(?P<name>error|warning|notice)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


def _unescape(value: str, *, prop: bool = False) -> str:
    if prop:
        value = value.replace("%3A", ":").replace("%2C", ",")
    return value.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def annotations_in(text: str, stream: str = "stdout") -> list[Annotation]:
    found = []
    for line in text.splitlines():
        match = _COMMAND.match(line)
        if not match:
            continue
        props = {}
        for pair in filter(None, (match["props"] or "").split(",")):
            key, _, value = pair.partition("=")
            props[key.strip()] = _unescape(value, prop=True)
        found.append(Annotation(match["name"], _unescape(match["message"]), props, stream))
    return found


def read_file_command(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: `name=value` lines and `name<<DELIMITER` blocks."""
    values: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else iter(())
    for line in lines:
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for part in lines:
                if part == delimiter:
                    break
                block.append(part)
            else:
                raise RunnerError(f"{path.name}: no closing {delimiter!r} for {name!r}")
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        else:
            raise RunnerError(f"{path.name}: invalid line {line!r} (GitHub fails the step)")
    return values


# -- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """What triggered the run: the payload (GITHUB_EVENT_PATH) and the GITHUB_REF/SHA it implies."""

    name: str
    payload: dict[str, Any]
    ref: str
    sha: str

    @property
    def ref_name(self) -> str:
        return self.ref.split("/", 2)[-1] if self.ref.startswith(("refs/heads/", "refs/tags/", "refs/pull/")) \
            else self.ref

    @property
    def ref_type(self) -> str:
        return "tag" if self.ref.startswith("refs/tags/") else "branch"

    @property
    def head_ref(self) -> str:
        return str(self.payload["pull_request"]["head"]["ref"]) if "pull_request" in self.payload else ""

    @property
    def base_ref(self) -> str:
        return str(self.payload["pull_request"]["base"]["ref"]) if "pull_request" in self.payload else ""


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in json.loads(json.dumps(record)).items() if not k.startswith("_")}


def pull_request_event(server: FakeGitHub, repo: str, number: int, action: str = "opened") -> Event:
    """A `pull_request` event for the fake server's PR `number` (webhook payload: action, number,
    pull_request, repository, sender). GITHUB_REF is the PR's merge ref, as on GitHub."""
    pull = _public(server.pulls[(repo, number)])
    payload = {"action": action, "number": number, "pull_request": pull,
               "repository": _public(server.repos[repo]), "sender": pull["user"]}
    return Event("pull_request", payload, f"refs/pull/{number}/merge", str(pull["merge_commit_sha"]))


def push_event(server: FakeGitHub, repo: str, origin: Path, ref: str, *, before: str = "0" * 40) -> Event:
    """A `push` event of `ref` (refs/heads/... or refs/tags/...) as it now is in `origin`."""
    sha = rev_parse(origin, ref)
    repository = {**_public(server.repos[repo]), "master_branch": server.repos[repo]["default_branch"]}
    pusher = server.user("alice")
    payload = {"ref": ref, "before": before, "after": sha, "created": before == "0" * 40, "deleted": False,
               "forced": False, "base_ref": None, "compare": f"{SERVER_URL}/{repo}/compare/{before[:12]}...{sha[:12]}",
               "commits": [], "head_commit": None, "repository": repository,
               "pusher": {"name": pusher["login"], "email": f"{pusher['login']}@example.com"}, "sender": pusher}
    return Event("push", payload, ref, sha)


def dispatch_event(server: FakeGitHub, repo: str, origin: Path, inputs: Mapping[str, str], *,
                   ref: str = "refs/heads/main", workflow: str = ".github/workflows/promote.yml") -> Event:
    """A `workflow_dispatch` event run from `ref`, with `inputs` (strings, as the form sends them)."""
    payload = {"inputs": dict(inputs), "ref": ref, "repository": _public(server.repos[repo]),
               "sender": server.user("alice"), "workflow": workflow}
    return Event("workflow_dispatch", payload, ref, rev_parse(origin, ref))


# -- the git side of pull requests -----------------------------------------------------------------


def _git(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        raise RunnerError(f"git {' '.join(args)} (in {cwd}) failed: {done.stderr.strip()}")
    return done.stdout


def rev_parse(repo: Path, rev: str) -> str:
    return _git("rev-parse", f"{rev}^{{commit}}", cwd=repo).strip()


_BOT = ["-c", "user.name=GitHub", "-c", "user.email=noreply@github.com"]


def _merge(origin: Path, base: str, head_sha: str, message: str, scratch: Path) -> str:
    """A --no-ff merge of `head_sha` into `base` of `origin`, made in a scratch clone; its sha."""
    shutil.rmtree(scratch, ignore_errors=True)
    _git("clone", "-q", "--no-tags", "-b", base, f"file://{origin}", str(scratch), cwd=origin)
    _git(*_BOT, "merge", "-q", "--no-ff", "--no-edit", "-m", message, head_sha, cwd=scratch)
    return rev_parse(scratch, "HEAD")


def sync_pull_request(server: FakeGitHub, origin: Path, repo: str, number: int) -> dict[str, Any]:
    """Make the fake PR `number` agree with git: its head and base shas are the branches' in
    `origin`, and `origin` has refs/pull/N/head and the test merge refs/pull/N/merge GitHub makes."""
    pull = server.pulls[(repo, number)]
    head = rev_parse(origin, f"refs/heads/{pull['head']['ref']}")
    base = rev_parse(origin, f"refs/heads/{pull['base']['ref']}")
    pull["head"]["sha"], pull["base"]["sha"] = head, base
    scratch = origin.parent / f".merge-{origin.name}-{number}"
    merge = _merge(origin, pull["base"]["ref"], head, f"Merge {head} into {base}", scratch)
    _git("push", "-q", f"file://{origin}", f"+{merge}:refs/pull/{number}/merge", cwd=scratch)  # remade each push
    _git("update-ref", f"refs/pull/{number}/head", head, cwd=origin)
    shutil.rmtree(scratch)
    pull["merge_commit_sha"] = merge
    return pull


def open_pull_request(server: FakeGitHub, origin: Path, head: str, *, repo: str = REPO, base: str = "main",
                      title: str = "Change the model", author: str = "alice", body: str = "") -> int:
    """A PR from branch `head` (already in `origin`) into `base`, in git and in the fake server."""
    pull = server.add_pull(repo, author=author, head_ref=head, base_ref=base, title=title, body=body)
    sync_pull_request(server, origin, repo, int(pull["number"]))
    return int(pull["number"])


def merge_pull_request(server: FakeGitHub, origin: Path, number: int, *, repo: str = REPO,
                       merged_by: str = "release-manager") -> str:
    """Merge PR `number` with a merge commit, as the merge button does; returns the merge commit."""
    pull = server.pulls[(repo, number)]
    base = pull["base"]["ref"]
    scratch = origin.parent / f".merge-{origin.name}-{number}"
    merge = _merge(origin, base, pull["head"]["sha"],
                   f"Merge pull request #{number} from {repo.split('/')[0]}/{pull['head']['ref']}", scratch)
    _git("push", "-q", "origin", f"HEAD:refs/heads/{base}", cwd=scratch)
    shutil.rmtree(scratch)
    now = server._now()
    pull.update(state="closed", merged=True, merged_at=now, closed_at=now, merge_commit_sha=merge,
                merged_by=server.user(merged_by), mergeable=None, rebaseable=None, mergeable_state="unknown")
    return merge


# -- results ---------------------------------------------------------------------------------------


@dataclass
class StepResult:
    """One step's outcome (before continue-on-error) and conclusion (after), outputs and output."""

    name: str
    id: str | None
    outcome: str  # success | failure | skipped
    conclusion: str
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    steps: list[StepResult] = field(default_factory=list)  # a composite action's own steps


@dataclass
class JobResult:
    """A job's result (success | failure | skipped), its steps, job summary and annotations."""

    job: str
    result: str
    steps: list[StepResult]
    summary: str
    workspace: Path
    outputs: dict[str, str] = field(default_factory=dict)
    installs: list[list[str]] = field(default_factory=list)  # `python -m pip install` argument lists
    environment: str | None = None  # the GitHub Environment the job ran in
    refusal: str = ""  # why the environment's deployment rule refused the job, if it did
    matrix: dict[str, Any] | None = None  # this run's combination, in a job with strategy.matrix
    runs: list[JobResult] = field(default_factory=list)  # a matrix job's runs, one per combination

    def all_steps(self) -> Iterator[StepResult]:
        for step in self.steps:
            yield step
            yield from step.steps

    def step(self, name: str) -> StepResult:
        found = [s for s in self.all_steps() if name in (s.name, s.id)]
        if len(found) != 1:
            raise KeyError(f"{self.job}: {len(found)} steps named {name!r}: {[s.name for s in self.steps]}")
        return found[0]

    @property
    def stdout(self) -> str:
        return "".join(s.stdout for s in self.steps)

    @property
    def annotations(self) -> list[Annotation]:
        return [a for s in self.steps for stream in ("stdout", "stderr")
                for a in annotations_in(getattr(s, stream), stream)]

    def log(self, tail: int = 40) -> str:
        """A transcript for assertion messages: each step's conclusion, and the failed steps' output."""
        lines = [f"job {self.job}: {self.result}"]
        for step in self.all_steps():
            lines.append(f"  [{step.outcome}] {step.name}" + (f" (exit {step.returncode})" if step.returncode else ""))
            if step.outcome == "failure" and not step.steps:
                for stream in (step.stdout, step.stderr):
                    lines += ["      " + line for line in stream.splitlines()[-tail:]]
        return "\n".join(lines)


# -- the runner ------------------------------------------------------------------------------------

PYTHON_SHIM = """#!/bin/sh
# The test runner's `python`: `python -m pip install ...` is recorded, not run (nothing is
# downloaded; the tool under test is installed already); anything else is the real interpreter.
if [ "$1" = "-m" ] && [ "$2" = "pip" ] && [ "$3" = "install" ]; then
  exec "{python}" -c 'import json, os, sys
with open(os.environ["WORKFLOW_RUNNER_PIP_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")' "$@"
fi
exec "{python}" "$@"
"""

_CHECKOUT_INPUTS = {"ref", "fetch-depth", "persist-credentials", "clean", "token", "fetch-tags"}
_STANDINS_INPUTS = {
    "actions/checkout": _CHECKOUT_INPUTS,
    "actions/setup-python": {"python-version", "cache", "check-latest"},
    "actions/cache": {"path", "key", "restore-keys"},
    "actions/upload-artifact": {"name", "path", "if-no-files-found", "retention-days", "overwrite",
                                "include-hidden-files"},
    "actions/download-artifact": {"name", "path", "pattern", "merge-multiple"},
}


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise RunnerError(f"{path}: not a workflow or action")
    return doc


class WorkflowRun:
    """One run of a workflow: its event, its artifacts, and the jobs run so far."""

    def __init__(self, workflow: Path, *, origin: Path, event: Event, server: FakeGitHub, root: Path,
                 secrets: Mapping[str, str] | None = None, repo: str = REPO, actions: Path = PROJECT,
                 run_id: int = RUN_ID, environments: Mapping[str, Mapping[str, str]] | None = None,
                 environment_branches: Mapping[str, Sequence[str]] | None = None) -> None:
        self.workflow = workflow
        self.doc = _load(workflow)
        self.origin = origin
        self.event = event
        self.server = server
        self.repo = repo
        self.secrets = dict(secrets or {})
        self.environments = {name: dict(values) for name, values in (environments or {}).items()}
        self.environment_branches = dict(environment_branches or {})
        self.actions = actions
        self.run_id = run_id
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.artifacts = root / "artifacts"
        self.artifacts.mkdir(exist_ok=True)
        self.event_path = root / "event.json"
        self.event_path.write_text(json.dumps(event.payload, indent=2), encoding="utf-8")
        self.attempts: dict[str, int] = {}

    @property
    def jobs(self) -> dict[str, Any]:
        return dict(self.doc["jobs"])

    def run(self, jobs: Sequence[str] | None = None, done: Mapping[str, JobResult] | None = None
            ) -> dict[str, JobResult]:
        """Run `jobs` (default: all) in `needs` order; `done` holds results of jobs not rerun."""
        results = dict(done or {})
        wanted = list(jobs or self.jobs)
        for job_id in self._order():
            if job_id in wanted:
                needs = {n: results[n] for n in self._needs(job_id) if n in results}
                results[job_id] = self.run_job(job_id, needs)
        return {job_id: results[job_id] for job_id in results if job_id in wanted}

    def _needs(self, job_id: str) -> list[str]:
        needs = self.jobs[job_id].get("needs", [])
        return [needs] if isinstance(needs, str) else list(needs)

    def _order(self) -> list[str]:
        ordered: list[str] = []
        while len(ordered) < len(self.jobs):
            ready = [j for j in self.jobs if j not in ordered and set(self._needs(j)) <= set(ordered)]
            if not ready:
                raise RunnerError(f"{self.workflow.name}: `needs` has a cycle")
            ordered += ready
        return ordered

    def run_job(self, job_id: str, needs: Mapping[str, JobResult] | None = None) -> JobResult:
        """Run one job (again: a re-run gets a fresh workspace, like a new runner); a job with
        `strategy.matrix` runs once per combination (JobResult.runs)."""
        attempt = self.attempts[job_id] = self.attempts.get(job_id, 0) + 1
        job = _Job(self, job_id, self.jobs[job_id], dict(needs or {}), attempt)
        return job.run() if "strategy" not in job.job else job.run_matrix()

    def github_context(self) -> dict[str, Any]:
        event = self.event
        return {"event": event.payload, "event_name": event.name, "event_path": str(self.event_path),
                "ref": event.ref, "ref_name": event.ref_name, "ref_type": event.ref_type, "sha": event.sha,
                "head_ref": event.head_ref, "base_ref": event.base_ref, "repository": self.repo,
                "repository_owner": self.repo.split("/")[0], "server_url": SERVER_URL, "api_url": self.server.url,
                "graphql_url": f"{self.server.url}/graphql", "token": self.server.token or TOKEN,
                "run_id": str(self.run_id), "run_number": "1", "run_attempt": "1",
                "actor": event.payload.get("sender", {}).get("login", "alice"),
                "triggering_actor": event.payload.get("sender", {}).get("login", "alice"),
                "workflow": self.doc.get("name", self.workflow.name), "retention_days": "90"}


class _Job:
    """The state of one job while it runs: workspace, env, step results, per-step files."""

    def __init__(self, run: WorkflowRun, job_id: str, job: dict[str, Any], needs: dict[str, JobResult],
                 attempt: int, matrix: dict[str, Any] | None = None) -> None:
        self.run_ = run
        self.id = job_id
        self.job = job
        self.needs = needs
        self.attempt = attempt
        self.matrix = matrix  # with `strategy`: {"matrix": combination, "strategy": ...}, once expanded
        label = job_id if attempt == 1 else f"{job_id}-{attempt}"
        if matrix is not None:
            label += f"-{matrix['strategy']['job-index']}"
        self.dir = run.root / label
        shutil.rmtree(self.dir, ignore_errors=True)
        self.workspace = self.dir / "workspace"
        self.temp = self.dir / "temp"
        self.files = self.dir / "files"
        self.home = self.dir / "home"
        self.shims = self.dir / "bin"
        for folder in (self.workspace, self.temp, self.files, self.home, self.shims):
            folder.mkdir(parents=True)
        self.pip_log = self.dir / "pip.jsonl"
        self.pip_log.touch()
        shim = self.shims / "python"
        shim.write_text(PYTHON_SHIM.format(python=sys.executable))
        shim.chmod(0o755)
        self.github = {**run.github_context(), "job": job_id, "workspace": str(self.workspace)}
        self.env: dict[str, str] = {}  # workflow + job env, then what steps add through GITHUB_ENV
        self.paths: list[str] = []  # GITHUB_PATH additions, newest first
        self.summary = ""
        self.counter = 0

    # -- the job -----------------------------------------------------------------------------

    def _job_scope(self) -> Scope:
        """What the job's `if:` and `strategy:` see: no steps yet, the needed jobs' results."""
        return Scope({"github": self.github, "needs": self._needs_context(), "inputs": self._inputs(),
                      "secrets": self._secrets(), "runner": self._runner(), "env": {}, **(self.matrix or {})},
                     succeeded=all(n.result == "success" for n in self.needs.values()),
                     failed=any(n.result == "failure" for n in self.needs.values()), workspace=self.workspace)

    def run_matrix(self) -> JobResult:
        """One run per combination of `strategy.matrix`, in order; with fail-fast (the default) a
        failed run cancels the runs not yet started. Failed when any run failed or was cancelled."""
        scope = self._job_scope()
        if not scope.condition(self.job.get("if")):
            return JobResult(self.id, "skipped", [], "", self.workspace)
        strategy = self.job["strategy"]
        unknown = set(strategy) - {"matrix", "fail-fast", "max-parallel"}
        if unknown or "matrix" not in strategy:
            raise RunnerError(f"job {self.id}: strategy {sorted(unknown) or 'without matrix'} is not supported "
                              "by the test runner")
        combos = expand_matrix(self._evaluated(strategy["matrix"], scope))
        fail_fast = truthy(self._evaluated(strategy.get("fail-fast", True), scope))
        runs: list[JobResult] = []
        for index, combo in enumerate(combos):
            if fail_fast and any(r.result == "failure" for r in runs):
                runs.append(JobResult(self.id, "cancelled", [], "", self.workspace, matrix=combo))
                continue
            context = {"matrix": combo, "strategy": {"fail-fast": fail_fast, "job-index": index,
                                                     "job-total": len(combos), "max-parallel": len(combos)}}
            runs.append(_Job(self.run_, self.id, self.job, self.needs, self.attempt, context).run())
        failed = any(r.result in ("failure", "cancelled") for r in runs)
        outputs = {k: v for r in runs for k, v in r.outputs.items() if v}  # as on GitHub: the last one set wins
        return JobResult(self.id, "failure" if failed else "success", [], "".join(r.summary for r in runs),
                         self.workspace, outputs, runs=runs)

    @staticmethod
    def _evaluated(value: Any, scope: Scope) -> Any:
        """A `strategy` value: a whole `${{ }}` is evaluated (fromJSON gives a mapping), else taken as
        written, each whole-expression vector inside it evaluated."""
        if isinstance(value, str):
            whole = _WHOLE.match(value)
            return scope.evaluate(whole.group(1)) if whole else value
        if isinstance(value, dict):
            return {k: _Job._evaluated(v, scope) for k, v in value.items()}
        return value

    def run(self) -> JobResult:
        scope = self._job_scope()
        if not scope.condition(self.job.get("if")):
            return JobResult(self.id, "skipped", [], "", self.workspace)
        self._refuse_unsupported()
        refusal = self._environment_refusal()
        if refusal:
            return JobResult(self.id, "failure", [], "", self.workspace, environment=self._environment(),
                             refusal=refusal)
        for source in (self.run_.doc.get("env") or {}, self.job.get("env") or {}):
            self.env.update({k: scope.interpolate(v) for k, v in source.items()})
        contexts: dict[str, Any] = {"steps": {}}
        results = self._steps(self.job["steps"], contexts, self._defaults())
        outputs = {k: self._scope(contexts).interpolate(v) for k, v in (self.job.get("outputs") or {}).items()}
        failed = any(r.conclusion == "failure" for r in results)
        installs = [json.loads(line) for line in self.pip_log.read_text().splitlines()]
        return JobResult(self.id, "failure" if failed else "success", results, self.summary, self.workspace,
                         outputs, installs, self._environment(), matrix=(self.matrix or {}).get("matrix"))

    def _refuse_unsupported(self) -> None:
        if "strategy" in self.job and self.matrix is None:
            raise RunnerError(f"job {self.id}: a job with `strategy:` runs through run_matrix")
        for key in ("container", "services", "uses"):
            if key in self.job:
                raise RunnerError(f"job {self.id}: `{key}:` is not supported by the test runner")
        if not isinstance(self.job.get("environment", ""), str) or "${{" in self.job.get("environment", ""):
            raise RunnerError(f"job {self.id}: only a literal `environment: NAME` is supported by the test runner")

    def _environment(self) -> str | None:
        environment = self.job.get("environment")
        return str(environment) if environment else None

    def _environment_refusal(self) -> str:
        """GitHub's deployment-branch rule: the run's branch (a PR's head branch) must be allowed."""
        environment = self._environment()
        if environment is None:
            return ""
        event = self.run_.event
        default = str((event.payload.get("repository") or {}).get("default_branch") or "main")
        allowed = self.run_.environment_branches.get(environment, [default])
        branch = event.head_ref if event.name.startswith("pull_request") else event.ref_name
        if event.ref_type == "branch" and branch in allowed:  # refs/pull/N/merge counts as a branch here
            return ""
        return f'Branch "{branch}" is not allowed to deploy to {environment} due to environment protection rules.'

    def _defaults(self) -> dict[str, Any]:
        defaults = {**((self.run_.doc.get("defaults") or {}).get("run") or {}),
                    **((self.job.get("defaults") or {}).get("run") or {})}
        return defaults

    def _needs_context(self) -> dict[str, Any]:
        return {name: {"result": r.result, "outputs": r.outputs} for name, r in self.needs.items()}

    def _inputs(self) -> dict[str, Any]:
        if self.run_.event.name != "workflow_dispatch":
            return {}
        declared = _triggers(self.run_.doc).get("workflow_dispatch") or {}
        given = self.run_.event.payload.get("inputs") or {}
        inputs = {}
        for name, spec in (declared.get("inputs") or {}).items():
            value = given.get(name, spec.get("default", ""))
            inputs[name] = value if spec.get("type") in ("boolean", "number") else as_string(value)
        return inputs

    def _secrets(self) -> dict[str, str]:
        environment = self.run_.environments.get(self._environment() or "", {})
        return {"GITHUB_TOKEN": str(self.github["token"]), **self.run_.secrets, **environment}

    def _runner(self) -> dict[str, str]:
        return {"os": "Linux", "arch": "X64", "name": "workflow-runner", "environment": "github-hosted",
                "temp": str(self.temp), "tool_cache": str(self.dir / "toolcache"), "debug": ""}

    def _scope(self, contexts: dict[str, Any], extra_env: Mapping[str, str] | None = None,
               status: tuple[bool, bool] = (True, False), **more: Any) -> Scope:
        base = {"github": self.github, "needs": self._needs_context(), "inputs": self._inputs(),
                "secrets": self._secrets(), "runner": self._runner(), "env": {**self.env, **(extra_env or {})},
                **(self.matrix or {})}
        return Scope({**base, **contexts, **more}, succeeded=status[0], failed=status[1], workspace=self.workspace)

    # -- steps -----------------------------------------------------------------------------------

    def _steps(self, steps: list[dict[str, Any]], contexts: dict[str, Any], defaults: dict[str, Any],
               action: dict[str, Any] | None = None) -> list[StepResult]:
        """Steps in order; `action` (inputs, path, env of the `uses:` step) when they are a composite's."""
        results: list[StepResult] = []
        for step in steps:
            failed = any(r.conclusion == "failure" for r in results)
            status = (not failed, failed)
            scope = self._scope(contexts, status=status, **({"inputs": action["inputs"]} if action else {}))
            if action:
                scope.contexts["github"] = {**self.github, "action_path": str(action["path"])}
            result = self._step(step, scope, defaults, action)
            results.append(result)
            if result.id:
                contexts["steps"][result.id] = {"outputs": result.outputs, "outcome": result.outcome,
                                                "conclusion": result.conclusion}
        return results

    def _step(self, step: dict[str, Any], scope: Scope, defaults: dict[str, Any],
              action: dict[str, Any] | None) -> StepResult:
        name = str(step.get("name") or (f"Run {step['uses']}" if "uses" in step else
                                        f"Run {str(step.get('run', '')).strip().splitlines()[0]}"))
        step_id = step.get("id")
        if not scope.condition(step.get("if")):
            return StepResult(name, step_id, "skipped", "skipped")
        env = {**(action["env"] if action else {}),
               **{k: scope.interpolate(v) for k, v in (step.get("env") or {}).items()}}
        scope.contexts["env"] = {**scope.contexts["env"], **env}
        if "run" in step:
            result = self._run(name, step, scope, env, defaults, action)
        elif "uses" in step:
            result = self._uses(name, step, scope, env)
        else:
            raise RunnerError(f"step {name!r} has neither run: nor uses:")
        result.id = step_id
        if result.outcome == "failure" and scope.interpolate(step.get("continue-on-error", False)) == "true":
            result.conclusion = "success"
        return result

    def _files(self) -> dict[str, Path]:
        self.counter += 1
        files = {name: self.files / f"{self.counter:02d}-{name.lower()}" for name in
                 ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")}
        for path in files.values():
            path.touch()
        return files

    def process_env(self, step_env: Mapping[str, str], files: Mapping[str, Path],
                    action: dict[str, Any] | None = None) -> dict[str, str]:
        """What a step's process sees: the runner's environment, GitHub's variables, the job's
        env and GITHUB_ENV additions, then the step's env."""
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("GITHUB_", "RUNNER_", "GIT_AUTHOR_", "GIT_COMMITTER_", "ACTIONS_"))
                and k not in ("CI", "GIT_DIR", "GIT_WORK_TREE")}
        event = self.run_.event
        github = {
            "CI": "true", "GITHUB_ACTIONS": "true", "HOME": str(self.home),
            "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_REPOSITORY": self.run_.repo,
            "GITHUB_REPOSITORY_OWNER": self.run_.repo.split("/")[0], "GITHUB_EVENT_NAME": event.name,
            "GITHUB_EVENT_PATH": str(self.run_.event_path), "GITHUB_REF": event.ref,
            "GITHUB_REF_NAME": event.ref_name, "GITHUB_REF_TYPE": event.ref_type, "GITHUB_SHA": event.sha,
            "GITHUB_HEAD_REF": event.head_ref, "GITHUB_BASE_REF": event.base_ref,
            "GITHUB_RUN_ID": str(self.run_.run_id), "GITHUB_RUN_NUMBER": "1", "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_JOB": self.id, "GITHUB_ACTOR": str(self.github["actor"]),
            "GITHUB_TRIGGERING_ACTOR": str(self.github["actor"]), "GITHUB_WORKFLOW": str(self.github["workflow"]),
            "GITHUB_SERVER_URL": SERVER_URL, "GITHUB_API_URL": self.run_.server.url,
            "GITHUB_GRAPHQL_URL": f"{self.run_.server.url}/graphql",
            "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "RUNNER_NAME": "workflow-runner",
            "RUNNER_TEMP": str(self.temp), "RUNNER_TOOL_CACHE": str(self.dir / "toolcache"),
            "WORKFLOW_RUNNER_PIP_LOG": str(self.pip_log),
            **{name: str(path) for name, path in files.items()},
        }
        if action:
            github["GITHUB_ACTION_PATH"] = str(action["path"])
        path = os.pathsep.join([str(self.shims), *self.paths, keep.get("PATH", "")])
        return {**keep, **github, **self.env, **step_env, "PATH": path}

    def _run(self, name: str, step: dict[str, Any], scope: Scope, env: dict[str, str], defaults: dict[str, Any],
             action: dict[str, Any] | None) -> StepResult:
        shell = step.get("shell", None if action else defaults.get("shell"))
        if action and shell is None:
            raise RunnerError(f"{action['path']}: composite step {name!r} needs `shell:` (GitHub refuses it)")
        script = self.temp / f"step-{self.counter + 1:02d}.sh"
        script.write_text(scope.interpolate(step["run"]) + "\n", encoding="utf-8")  # textually, as GitHub does
        command = {None: ["bash", "-e", str(script)],
                   "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                   "sh": ["sh", "-e", str(script)]}.get(shell)
        if command is None:
            raise RunnerError(f"step {name!r}: shell {shell!r} is not supported by the test runner")
        folder = step.get("working-directory", defaults.get("working-directory", "."))
        cwd = (self.workspace / scope.interpolate(folder)).resolve()
        files = self._files()
        try:
            done = subprocess.run(command, cwd=cwd, env=self.process_env(env, files, action), capture_output=True,
                                  text=True, errors="replace", check=False,
                                  timeout=min(STEP_TIMEOUT, 60 * float(step.get("timeout-minutes", 360))))
            code, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            code, stdout, stderr = -9, _text(exc.stdout), _text(exc.stderr) + "\n(the step timed out)"
        return self._read_back(name, files, code, stdout, stderr)

    def _read_back(self, name: str, files: Mapping[str, Path], code: int, stdout: str, stderr: str) -> StepResult:
        outputs = read_file_command(files["GITHUB_OUTPUT"])
        self.env.update(read_file_command(files["GITHUB_ENV"]))
        self.paths[:0] = [line for line in files["GITHUB_PATH"].read_text().splitlines()[::-1] if line.strip()]
        self.summary += files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
        outcome = "success" if code == 0 else "failure"
        return StepResult(name, None, outcome, outcome, outputs, stdout, stderr, code)

    # -- uses: ----------------------------------------------------------------------------------

    def _uses(self, name: str, step: dict[str, Any], scope: Scope, env: dict[str, str]) -> StepResult:
        uses = str(step["uses"])
        inputs = {k: scope.interpolate(v) for k, v in (step.get("with") or {}).items()}
        if uses.startswith("./"):
            return self._composite(name, uses, inputs, env)
        action = uses.split("@", 1)[0]
        known = _STANDINS_INPUTS.get(action)
        if known is None:
            raise RunnerError(f"step {name!r}: no stand-in for `uses: {uses}` in the test runner")
        unknown = set(inputs) - known
        if unknown:
            raise RunnerError(f"step {name!r}: `with:` {sorted(unknown)} of {action} is not supported by the "
                              "test runner's stand-in")
        standin = {"actions/checkout": self._checkout, "actions/setup-python": self._setup_python,
                   "actions/cache": self._cache, "actions/upload-artifact": self._upload,
                   "actions/download-artifact": self._download}[action]
        code, stdout, outputs = standin(inputs)
        outcome = "success" if code == 0 else "failure"
        return StepResult(name, None, outcome, outcome, outputs, stdout, "", code)

    def _checkout(self, inputs: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        """actions/checkout: init, fetch from `origin` what the inputs ask, check out; a fresh clone."""
        origin, event = self.run_.origin, self.run_.event
        ws = self.workspace
        url = f"file://{origin}"
        ref = inputs.get("ref") or ""
        depth = int(inputs.get("fetch-depth") or 1)
        if not ref:
            ref, sha = event.ref, event.sha
        else:
            ref, sha = self._resolve(ref)
        env = {**self.process_env({}, {}), "GIT_TERMINAL_PROMPT": "0"}
        _git("init", "-q", cwd=ws, env=env)
        _git("remote", "add", "origin", url, cwd=ws, env=env)
        if ref.startswith("refs/heads/"):
            branch = ref.removeprefix("refs/heads/")
            local = f"refs/remotes/origin/{branch}"
        elif ref.startswith("refs/pull/"):
            local = f"refs/remotes/pull/{ref.removeprefix('refs/pull/')}"
        else:
            local = ref  # a tag, or a bare sha (checked out detached)
        if depth == 0:
            _git("fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*",
                 "+refs/tags/*:refs/tags/*", cwd=ws, env=env)
            if not local.startswith("refs/remotes/origin/"):
                _git("fetch", "-q", "origin", f"+{sha}:{local}" if local.startswith("refs/") else sha, cwd=ws, env=env)
        else:
            target = f"+{sha}:{local}" if local.startswith("refs/") else sha
            _git("fetch", "-q", "--no-tags", f"--depth={depth}", "origin", target, cwd=ws, env=env)
        if ref.startswith("refs/heads/"):
            _git("checkout", "-q", "--force", "-B", ref.removeprefix("refs/heads/"), local, cwd=ws, env=env)
        else:
            _git("checkout", "-q", "--force", sha, cwd=ws, env=env)
        if inputs.get("persist-credentials", "true") != "false":  # what checkout leaves in .git/config
            basic = base64.b64encode(f"x-access-token:{self.github['token']}".encode()).decode()
            _git("config", "--local", f"http.{SERVER_URL}/.extraheader", f"AUTHORIZATION: basic {basic}", cwd=ws)
        return 0, f"checked out {ref} ({sha[:12]}), depth {depth or 'all'}\n", {"ref": ref, "commit": sha}

    def _resolve(self, ref: str) -> tuple[str, str]:
        origin = self.run_.origin
        if re.fullmatch(r"[0-9a-f]{40}", ref):
            return ref, ref
        candidates = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        for candidate in candidates:
            try:
                return candidate, rev_parse(origin, candidate)
            except RunnerError:
                continue
        raise RunnerError(f"actions/checkout: a branch or tag with the name '{ref}' could not be found")

    def _setup_python(self, inputs: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        version = ".".join(map(str, sys.version_info[:3]))
        return 0, f"Python {version} (the test runner's; asked for {inputs.get('python-version')})\n", {
            "python-version": version, "python-path": sys.executable, "cache-hit": "false"}

    def _cache(self, inputs: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        if not inputs.get("key") or not inputs.get("path"):
            return 1, "::error::Input required and not supplied: key/path\n", {}
        return 0, f"Cache not found for input keys: {inputs['key']}\n", {"cache-hit": "false"}

    def _upload(self, inputs: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        """upload-artifact: the files under `path` (hidden files skipped), stored under `name`."""
        name = inputs.get("name") or "artifact"
        store = self.run_.artifacts / name
        if store.exists() and inputs.get("overwrite") != "true":
            return 1, f"::error::Failed to CreateArtifact: an artifact with this name already exists: {name}\n", {}
        patterns = [line.strip() for line in inputs["path"].splitlines() if line.strip()]
        hidden = inputs.get("include-hidden-files") == "true"
        found = [(pattern, self._matches(pattern, hidden)) for pattern in patterns]
        files = sorted({path for _, paths in found for path in paths})
        if not files:
            message = f"No files were found with the provided path: {inputs['path']}. No artifacts will be uploaded."
            level = inputs.get("if-no-files-found", "warn")
            return (1 if level == "error" else 0), (f"::{level}::{message}\n" if level != "ignore" else ""), {}
        root = self._artifact_root(patterns)
        shutil.rmtree(store, ignore_errors=True)
        for path in files:
            target = store / (path.name if path == root else path.relative_to(root))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        return 0, f"Artifact {name} has been successfully uploaded ({len(files)} files)\n", {"artifact-id": "1"}

    def _matches(self, pattern: str, hidden: bool = False) -> list[Path]:
        """The files a search path names: a file, every file under a folder (hidden ones skipped
        unless `hidden`), or a glob."""
        sources = sorted(self.workspace.glob(pattern.rstrip("/"))) if "*" in pattern else [self.workspace / pattern]
        files: list[Path] = []
        for source in sources:
            if source.is_file():
                files.append(source)
            elif source.is_dir():
                files += [p for p in source.rglob("*") if p.is_file()
                          and (hidden or not any(part.startswith(".") for part in p.relative_to(source).parts))]
        return files

    def _artifact_root(self, patterns: list[str]) -> Path:
        """As upload-artifact: the search path (up to its first wildcard) is the root of the artifact;
        several search paths share their least common ancestor."""
        roots = []
        for pattern in patterns:
            parts = Path(pattern).parts
            fixed = next((i for i, part in enumerate(parts) if "*" in part), len(parts))
            roots.append(str(self.workspace.joinpath(*parts[:fixed])))
        return Path(roots[0]) if len(roots) == 1 else Path(os.path.commonpath(roots))

    def _download(self, inputs: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        if inputs.get("pattern"):
            return self._download_matching(inputs)
        name = inputs.get("name") or ""
        store = self.run_.artifacts / name
        if not name or not store.is_dir():
            return 1, f"::error::Unable to download artifact(s): Artifact not found for name: {name}\n", {}
        target = self.workspace / inputs.get("path", ".")
        shutil.copytree(store, target, dirs_exist_ok=True)
        return 0, f"Artifact download completed: {name}\n", {"download-path": str(target)}

    def _download_matching(self, inputs: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        """download-artifact with `pattern`: every artifact whose name matches, each into its own
        folder under `path`, or all into `path` with merge-multiple; none found is not an error."""
        import fnmatch

        names = sorted(p.name for p in self.run_.artifacts.iterdir() if fnmatch.fnmatchcase(p.name, inputs["pattern"]))
        target = self.workspace / inputs.get("path", ".")
        for name in names:
            into = target if inputs.get("merge-multiple") == "true" else target / name
            shutil.copytree(self.run_.artifacts / name, into, dirs_exist_ok=True)
        said = f"Found {len(names)} artifact(s) matching {inputs['pattern']}: {', '.join(names)}\n"
        return 0, said, {"download-path": str(target)}

    def _composite(self, name: str, uses: str, given: dict[str, str], env: dict[str, str]) -> StepResult:
        """A local composite action: its steps, run with its inputs and its own steps context."""
        folder = next((root / uses for root in (self.workspace, self.run_.actions)
                       if (root / uses / "action.yml").is_file()), None)
        if folder is None:
            raise RunnerError(f"step {name!r}: no action.yml at {uses} in the workspace or {self.run_.actions}")
        folder = folder.resolve()
        doc = _load(folder / "action.yml")
        if (doc.get("runs") or {}).get("using") != "composite":
            raise RunnerError(f"{uses}: only composite actions are supported by the test runner")
        declared = doc.get("inputs") or {}
        unknown = set(given) - set(declared)
        if unknown:
            raise RunnerError(f"{uses}: unexpected input(s) {sorted(unknown)}")
        inputs = {}
        for key, spec in declared.items():
            if key not in given and spec.get("required") and "default" not in spec:
                raise RunnerError(f"{uses}: input {key} is required")
            inputs[key] = given.get(key, as_string(spec.get("default", "")))
        contexts: dict[str, Any] = {"steps": {}}
        inner = self._steps(doc["runs"]["steps"], contexts, {}, {"inputs": inputs, "path": folder, "env": env})
        scope = self._scope(contexts, inputs=inputs)
        outputs = {key: scope.interpolate(spec.get("value", "")) for key, spec in (doc.get("outputs") or {}).items()}
        failed = any(r.conclusion == "failure" for r in inner)
        outcome = "failure" if failed else "success"
        return StepResult(name, None, outcome, outcome, outputs, "".join(r.stdout for r in inner),
                          "".join(r.stderr for r in inner), 1 if failed else 0, inner)


def _triggers(doc: dict[Any, Any]) -> dict[str, Any]:
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    if isinstance(triggers, str):
        return {triggers: None}
    if isinstance(triggers, list):
        return dict.fromkeys(triggers)
    return dict(triggers or {})


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""
