"""The job summary: reports/summary.md appended to $GITHUB_STEP_SUMMARY, cut so the page stays
under GitHub's 1 MiB per step."""

from __future__ import annotations

from pathlib import Path

SUMMARY_LIMIT = 1024 * 1024  # bytes: GitHub's cap on a step's job summary


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
