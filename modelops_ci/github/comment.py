"""The one PR comment CI keeps on a pull request, found again by its marker and updated in place.

It says the verdict first (reports/summary.md's table, each pipeline's report collapsed), then
every pipeline's metrics against the base branch. GitHub refuses a comment over 65,536
characters, so the reports shrink to fit and the comment links to the run's artifacts for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError
from modelops_ci.github.client import GitHub, GitHubUnavailable, checked_slug
from modelops_ci.github.metrics import Diffs, MetricDiff, is_number
from modelops_ci.report.markdown import PR_COMMENT_LIMIT

if TYPE_CHECKING:
    from modelops_ci.gates.verdict import GatesReport, Verdict

MARKER = "modelops-ci:report"
_MARKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,99}$")


def marker_comment(name: str = MARKER) -> str:
    """The hidden first line that identifies our comment: `<!-- name -->`."""
    if not _MARKER_NAME.match(name):
        raise UserError(f"marker '{name}' is not a plain name (letters, digits, ':', '.', '_', '-'; "
                        "up to 100): it is written inside an HTML comment")
    return f"<!-- {name} -->"


UNCUT = 1 << 40  # characters: more than any summary holds


# -- the body ---------------------------------------------------------------------------------------


def comment_body(reports: list[GatesReport], diffs: Diffs, *, marker: str = MARKER, link: str | None = None,
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
    full = summary(reports, refused=refused, limit=UNCUT)  # whole, to tell whether the comment cuts it
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
    return f"{value:.4g}" if is_number(value) else text(value, 40)


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


# -- posting ----------------------------------------------------------------------------------------


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
