"""What CI tells GitHub about a commit: one PR comment (found again by its marker and updated in
place), `::error` annotations at the spec or policy line behind each failed gate, and a job
summary that stays under GitHub's 1 MiB.

The comment says the verdict first (reports/summary.md's table, each pipeline's report collapsed),
then every pipeline's metrics against the base branch from `dvc metrics diff`. GitHub refuses a
comment over 65,536 characters, so the reports shrink to fit and the comment links to the run's
artifacts for the rest.

Annotations follow GitHub's workflow-command rules: `%`, CR and LF are escaped in the message, and
`:` and `,` too in properties (actions/toolkit's escapeData / escapeProperty). Everything taken
from data (reasons, names) is escaped, so no value can end the command and start another.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.github.client import GitHub, GitHubUnavailable, checked_slug
from modelops_ci.layout import Layout
from modelops_ci.offline import QUIET_ENV
from modelops_ci.report.markdown import PR_COMMENT_LIMIT

if TYPE_CHECKING:
    from modelops_ci.gates.verdict import Verdict
    from modelops_ci.report.pages import Current

MARKER = "modelops-ci:report"
SUMMARY_LIMIT = 1024 * 1024  # bytes: GitHub's cap on a step's job summary
MAX_ANNOTATIONS = 10  # GitHub shows at most 10 error annotations per step
DVC_TIMEOUT = 300
_MARKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,99}$")
# A branch name as a base: git's rules, stricter (no leading '-': it would read as an option).
_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/-]+(?<![./])$")
_METRICS_FILE = re.compile(r"^reports/(?P<pipeline>[^/]+)/metrics\.json$")


# -- markers, refs and links -------------------------------------------------------------------------


def marker_comment(name: str = MARKER) -> str:
    """The hidden first line that identifies our comment: `<!-- name -->`."""
    if not _MARKER_NAME.match(name):
        raise UserError(f"marker '{name}' is not a plain name (letters, digits, ':', '.', '_', '-'; "
                        "up to 100): it is written inside an HTML comment")
    return f"<!-- {name} -->"


def checked_ref(ref: str, what: str = "--base") -> str:
    """`ref` if it is a plain branch name, else UserError: it reaches git and DVC as an argument."""
    if not _REF.match(ref) or ref.endswith(".lock"):
        raise UserError(f"{what} '{ref}' is not a branch name (letters, digits, '.', '_', '/', '-'; "
                        "no '..', no leading '-'): pass the base branch, e.g. --base main")
    return ref


def run_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The Actions run's page (its artifacts hold the full reports), or None outside Actions."""
    env = os.environ if environ is None else environ
    server, slug, run = (env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    parts = urllib.parse.urlsplit(server or "https://github.com")
    if not (slug and run.isdigit()) or parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        checked_slug(slug)
    except UserError:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/{slug}/actions/runs/{run}"


def event_number(environ: Mapping[str, str] | None = None) -> int | None:
    """The pull request's number from the event payload (GITHUB_EVENT_PATH), if there is one."""
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("pull_request", "issue"):
        number = (event.get(key) or {}).get("number") if isinstance(event, dict) else None
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            return number
    return None


def default_base(environ: Mapping[str, str] | None = None) -> str:
    """The PR's base branch on Actions (GITHUB_BASE_REF), else main."""
    env = os.environ if environ is None else environ
    return env.get("GITHUB_BASE_REF") or "main"


# -- metric diffs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricDiff:
    """One metric of one pipeline on the base branch (`old`) and here (`new`)."""

    pipeline: str
    metric: str
    old: Any
    new: Any

    @property
    def change(self) -> float | None:
        if _number(self.old) and _number(self.new):
            return float(self.new) - float(self.old)
        return None


@dataclass(frozen=True)
class Diffs:
    """The metric diffs against `base` (the ref DVC compared with), or why there are none
    (`problem`, markdown: anything from outside is escaped in it)."""

    base: str
    rows: tuple[MetricDiff, ...] = ()
    problem: str = ""


def metric_diffs(root: Path, base: str) -> Diffs:
    """`dvc metrics diff --json --all` against `base` (or `origin/<base>`), per pipeline.

    A base missing from the clone is no error: the comment says how to fetch it.
    """
    base = checked_ref(base)
    rev = next((r for r in (base, f"origin/{base}") if _is_commit(root, r)), None)
    if rev is None:
        return Diffs(base, problem=f"the base branch `{base}` is not in this clone: fetch it "
                                   "(actions/checkout with `fetch-depth: 0`) to compare metrics")
    command = [sys.executable, "-m", "dvc", "metrics", "diff", "--json", "--all", rev]
    try:
        done = subprocess.run(command, cwd=root, env={**git.clean_env(), **QUIET_ENV}, capture_output=True,
                              text=True, check=False, timeout=DVC_TIMEOUT)
    except subprocess.TimeoutExpired:
        return Diffs(rev, problem=f"`dvc metrics diff` did not finish within {DVC_TIMEOUT} s")
    if done.returncode != 0:
        from modelops_ci.report.markdown import text

        said = text((done.stderr.strip().splitlines() or ["no message"])[-1], 300)
        return Diffs(rev, problem=f"`dvc metrics diff {rev}` failed: {said}")
    try:
        payload = json.loads(done.stdout or "{}")
    except ValueError:
        return Diffs(rev, problem="`dvc metrics diff` did not print JSON")
    return Diffs(rev, tuple(_rows(payload if isinstance(payload, dict) else {})))


def _rows(payload: dict[str, Any]) -> list[MetricDiff]:
    rows = []
    for path, metrics in sorted(payload.items()):
        found = _METRICS_FILE.match(path)
        pipeline = found["pipeline"] if found else path
        for metric, values in sorted((metrics or {}).items()):
            if isinstance(values, dict):
                rows.append(MetricDiff(pipeline, str(metric), values.get("old"), values.get("new")))
    return rows


def _is_commit(root: Path, rev: str) -> bool:
    done = git.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", cwd=root,
                   check=False)
    return done.returncode == 0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# -- the comment ------------------------------------------------------------------------------------


def comment_body(reports: list[dict[str, Any]], diffs: Diffs, *, marker: str = MARKER, link: str | None = None,
                 limit: int = PR_COMMENT_LIMIT, refused: Sequence[Verdict] = ()) -> str:
    """The PR comment: marker, verdicts and collapsed reports, metric diffs, at most `limit` characters.

    When the reports do not fit whole they are shortened (least severe checks first) and the
    comment says so, with a link to the run whose artifacts hold them in full. A `refused` pipeline
    (its report missing, or made for other inputs) is listed as having no verdict for this commit.
    """
    from modelops_ci.report.markdown import summary

    head = marker_comment(marker) + "\n"
    footer = _footer(link)
    metrics = _metrics_section(diffs, budget=limit // 3)
    if not reports and not refused:
        return _fit(head + "## ⛔ No gate results\n\nThe gates did not run (no `reports/<pipeline>/gates.json`): "
                    "see the job log." + metrics + footer, limit, link)
    note = _truncated_note(link)
    room = limit - len(head) - len(metrics) - len(footer) - len(note)
    full = summary(reports, refused=refused)
    shown = full if len(full) <= room else summary(reports, limit=room, refused=refused)
    return _fit(head + shown + (note if shown != full else "") + metrics + footer, limit, link)


def _metrics_section(diffs: Diffs, budget: int) -> str:
    from modelops_ci.report.markdown import text

    title = f"\n### Metrics against `{diffs.base}`\n\n"  # a checked branch name: nothing to escape
    if diffs.problem:
        return title + f"_{diffs.problem}_\n"
    if not diffs.rows:
        return title + "_No metrics to compare (no pipeline declares metrics)._\n"
    header = f"| Pipeline | Metric | `{diffs.base}` | This change | Change |\n|---|---|--:|--:|--:|\n"
    rows, used = [], len(title) + len(header) + 200
    for index, row in enumerate(diffs.rows):
        line = (f"| {text(row.pipeline, 100)} | {text(row.metric, 100)} | {_value(row.old)} | {_value(row.new)} "
                f"| {_change(row)} |\n")
        if used + len(line) > budget:
            rows.append(f"| and {len(diffs.rows) - index} more | | | | |\n")
            break
        rows.append(line)
        used += len(line)
    return title + header + "".join(rows)


def _value(value: Any) -> str:
    from modelops_ci.report.markdown import text

    if value is None:
        return "—"
    return f"{value:.4g}" if _number(value) else text(value, 40)


def _change(row: MetricDiff) -> str:
    change = row.change
    if change is None:
        return "new" if row.old is None and row.new is not None else "removed" if row.new is None else ""
    if change == 0:
        return "="
    relative = f" ({change / abs(float(row.old)):+.1%})" if float(row.old) != 0 else ""
    return f"{change:+.4g}{relative}"


def _truncated_note(link: str | None) -> str:
    where = f"[the run's artifacts]({link})" if link else "the CI run's artifacts (reports/)"
    return (f"\n> [!NOTE]\n> The full report does not fit in a comment (GitHub allows {PR_COMMENT_LIMIT:,} "
            f"characters): it is in {where}.\n")


def _footer(link: str | None) -> str:
    run = f" · [this run]({link}) (its artifacts hold the HTML reports)" if link else ""
    return f"\n<sub>modelops-ci{run}</sub>\n"


def _fit(body: str, limit: int, link: str | None) -> str:
    """`body` cut to `limit` characters with a note, in case the parts' budgets were not enough."""
    if len(body) <= limit:
        return body
    note = _truncated_note(link)
    return body[: limit - len(note)].rsplit("\n", 1)[0] + "\n" + note


def load_reports(root: Path) -> Current:
    """Every gated pipeline's gates.json that is this commit's verdict (checked against its schema
    and against compiled/<p>/dvc.lock), and the pipelines that have none."""
    from modelops_ci.report.pages import current

    return current(root)


@dataclass(frozen=True)
class Posted:
    """What happened to the comment: created, updated or unchanged."""

    action: str
    comment_id: int
    url: str


def upsert_comment(client: GitHub, slug: str, number: int, body: str, *, marker: str = MARKER) -> Posted:
    """Update the comment that starts with the marker, or create it: one comment per PR.

    A create is never retried blindly (it could post twice): when it fails without an answer the
    comments are listed again, and one that did get created is updated instead.
    """
    slug = checked_slug(slug)
    hidden = marker_comment(marker)
    existing = find_comment(client, slug, number, hidden)
    if existing is None:
        try:
            made = client.post(f"/repos/{slug}/issues/{number}/comments", {"body": body})
            return Posted("created", int(made["id"]), str(made.get("html_url", "")))
        except GitHubUnavailable as exc:
            existing = _posted_after_all(client, slug, number, hidden, exc)
    if existing.get("body") == body:
        return Posted("unchanged", int(existing["id"]), str(existing.get("html_url", "")))
    updated = client.patch(f"/repos/{slug}/issues/comments/{int(existing['id'])}", {"body": body})
    return Posted("updated", int(updated["id"]), str(updated.get("html_url", "")))


def _posted_after_all(client: GitHub, slug: str, number: int, hidden: str,
                      exc: GitHubUnavailable) -> dict[str, Any]:
    """The comment a create that got no answer made after all; else an error saying what to do."""
    try:
        existing = find_comment(client, slug, number, hidden)
    except GitHubUnavailable:
        existing = None
    if existing is not None:
        return existing
    raise GitHubUnavailable(f"{exc}. The comment is not on PR #{number} (as far as GitHub answers): run the "
                            "command again; it updates the comment that starts with "
                            f"{hidden} and never posts a second", method=exc.method, endpoint=exc.endpoint,
                            status=exc.status) from None


def find_comment(client: GitHub, slug: str, number: int, hidden: str) -> dict[str, Any] | None:
    """The first comment on issue/PR `number` whose body starts with `hidden` (every page read)."""
    for comment in client.get_paginated(f"/repos/{slug}/issues/{number}/comments"):
        if isinstance(comment, dict) and str(comment.get("body") or "").startswith(hidden):
            return comment
    return None


# -- annotations ------------------------------------------------------------------------------------


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | int) -> str:
    """`::command key=value,...::message`, escaped as GitHub's runner reads it."""
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


@dataclass(frozen=True)
class Annotation:
    """A failed blocking gate and the line of the setting behind it."""

    pipeline: str
    gate: str
    status: str
    reason: str
    file: str
    line: int
    col: int = 1

    def command(self) -> str:
        from modelops_ci.report.render import gate_title

        title = f"{self.pipeline}: {gate_title(self.gate)} gate {'failed' if self.status == 'fail' else 'errored'}"
        message = f"{self.pipeline}: {self.reason}"
        return workflow_command("error", message, file=self.file, line=self.line, col=self.col, title=title)


def gate_annotations(root: Path) -> list[Annotation]:
    """One annotation per failed blocking gate in reports/*/gates.json, at its policy or spec line."""
    from modelops_ci.report.render import discover, load
    from modelops_ci.spec import workspace

    # Every report, current or not: an annotation only ever points at a failure, never says "ready".
    reports = [load(root / Layout(name).gates) for name in discover(root)]
    failed = [(report["pipeline"], gate) for report in reports for gate in report["gates"]
              if gate["status"] in ("fail", "error") and not gate.get("advisory")]
    if not failed:
        return []
    try:
        space = workspace.read(root)
    except UserError:
        space = None
    governed = {g.pipeline.name: g for g in space.governed} if space else {}
    found = []
    for pipeline, gate in failed:
        where = _setting_line(governed.get(pipeline), gate) or (Layout(pipeline).gates, 1, 1)
        found.append(Annotation(pipeline, gate["gate"], gate["status"], " ".join(str(gate["reason"]).split()),
                                *where))
    return found


def commands(found: list[Annotation], limit: int = MAX_ANNOTATIONS) -> list[str]:
    """The workflow commands; past GitHub's per-step limit, one last line says how many more failed."""
    if len(found) <= limit:
        return [a.command() for a in found]
    shown = [a.command() for a in found[: limit - 1]]
    rest = len(found) - len(shown)
    return [*shown, workflow_command("error", f"{rest} more failed gates: see the job summary and reports/",
                                     title="modelops-ci: more failed gates")]


def _setting_line(governed: Any, gate: dict[str, Any]) -> tuple[str, int, int] | None:
    """The policy (or pipeline spec) line that sets the threshold the gate failed on."""
    from modelops_ci.spec.nodes import locate_key

    if governed is None:
        return None
    pipeline = governed.pipeline
    sources = [*((p.gates, False) for p in governed.policies), (pipeline.gates, True)]
    for path in _threshold_paths(gate):
        holders = [(gates, own) for gates, own in sources if _has(gates, path)]
        if not holders:
            continue
        effective = _get(governed.gates, path)
        chosen = next((g for g, _ in holders if _get(g, path) == effective), holders[0][0])
        mark = locate_key(chosen, list(path))
        return mark.path, mark.line, mark.col
    mark = pipeline.spec.mark
    return pipeline.source, mark.line, mark.col


def _threshold_paths(gate: dict[str, Any]) -> list[tuple[str, ...]]:
    """Where the failed checks' thresholds may be set: deepest first, then the rule that decides
    (a per-feature `alpha` tells less than `max_drifted_share`), then the checks' order."""
    kind = str(gate["gate"])
    ranked: list[tuple[tuple[int, bool, int], tuple[str, ...]]] = []
    failed = [c for c in gate.get("checks") or [] if c.get("status") in ("fail", "error")]
    for order, check in enumerate(failed):
        details = check.get("details") if isinstance(check.get("details"), dict) else {}
        metric = str(details.get("metric") or check.get("name") or "")
        for key in [*(check.get("threshold") or {}), *details]:
            for path in ((kind, "metrics", metric, str(key)), (kind, metric, str(key)), (kind, str(key))):
                ranked.append(((len(path), key != "alpha", -order), path))
        for path in ((kind, "metrics", metric), (kind, metric)):
            ranked.append(((len(path), True, -order), path))
    ordered = [path for _, path in sorted(ranked, key=lambda item: item[0], reverse=True)]
    return [*dict.fromkeys(ordered), (kind,)]


def _has(node: Any, path: Iterable[str]) -> bool:
    for step in path:
        if not isinstance(node, dict) or step not in node:
            return False
        node = node[step]
    return True


def _get(node: Any, path: Iterable[str]) -> Any:
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node


# -- the job summary --------------------------------------------------------------------------------


def append_summary(text: str, page: Path, *, limit: int = SUMMARY_LIMIT, link: str | None = None) -> bool:
    """Append `text` to the job summary file `page`, keeping the file under `limit` bytes.

    What does not fit is cut at a line, open <details> and code fences are closed, and a note
    says where the rest is. Returns whether `text` went in whole.
    """
    used = page.stat().st_size if page.is_file() else 0
    data = text.encode("utf-8")
    if used + len(data) <= limit:
        _append(page, text)
        return True
    note = (f"\n\n> [!WARNING]\n> Truncated: GitHub shows at most 1 MiB of job summary per step; the full "
            f"report is in {f'[the run artifacts]({link})' if link else 'the run artifacts (reports/)'}.\n")
    room = limit - used - len(note.encode("utf-8")) - 64  # 64: closing tags
    if room <= 0:
        if limit - used >= len(note.encode("utf-8")):
            _append(page, note)
        return False
    kept = data[:room].decode("utf-8", "ignore").rsplit("\n", 1)[0] + "\n"
    _append(page, kept + _closers(kept) + note)
    return False


def _closers(markdown: str) -> str:
    fence = "```\n" if sum(line.startswith("```") for line in markdown.splitlines()) % 2 else ""
    open_details = markdown.count("<details") - markdown.count("</details>")
    return fence + "</details>\n" * max(0, open_details)


def _append(page: Path, text: str) -> None:
    page.parent.mkdir(parents=True, exist_ok=True)
    with page.open("a", encoding="utf-8") as handle:
        handle.write(text)
