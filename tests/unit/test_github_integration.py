"""The GitHub side of CI, in this process: `::error` workflow commands escaped, the failed-gate
annotations cut with a count, and the job summary under 1 MiB."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_ci.github.annotations import Annotation, commands, workflow_command
from modelops_ci.github.summary import SUMMARY_LIMIT, append_summary
from tests.helpers.cli import run_cli
from tests.helpers.repos import write

RUN_LINK = "https://github.com/acme/models/actions/runs/4242"


# -- annotations --------------------------------------------------------------------------------------


def test_workflow_commands_escape_data_and_properties() -> None:
    command = workflow_command("error", "50% worse\r\n::add-mask::x", file="a,b:c.yaml", line=3,
                               title="x: y, z%\n")
    assert command == "::error file=a%2Cb%3Ac.yaml,line=3,title=x%3A y%2C z%25%0A::50%25 worse%0D%0A::add-mask::x"
    assert "\n" not in command and "\r" not in command


def test_more_failed_gates_than_github_shows_end_with_a_count() -> None:
    found = [Annotation(f"p{i}", "fairness", "fail", "unfair", "policies/a.yaml", i + 1) for i in range(14)]
    lines = commands(found)
    assert len(lines) == 10 and lines[-1].endswith("::5 more failed gates: see the job summary and reports/")


# -- the job summary ---------------------------------------------------------------------------------


def test_a_summary_over_1_mib_is_cut_with_a_note(tmp_path: Path) -> None:
    page = write(tmp_path, "step_summary.md", "earlier step output\n")
    block = "<details><summary>p</summary>\n\n```mermaid\nflowchart LR\n" + "  a --> b\n" * 400 + "```\n</details>\n"
    text = "# 300 pipelines\n" + block * 300
    assert len(text.encode()) > SUMMARY_LIMIT
    assert append_summary(text, page, link=RUN_LINK) is False
    written = page.read_text(encoding="utf-8")
    assert len(written.encode()) <= SUMMARY_LIMIT
    assert written.startswith("earlier step output\n# 300 pipelines\n")
    assert written.rstrip().endswith(f"the full report is in [the run artifacts]({RUN_LINK}).")
    assert written.count("<details>") == written.count("</details>")
    assert sum(line.startswith("```") for line in written.splitlines()) % 2 == 0


def test_the_summary_command_appends_a_small_summary_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "summary_page.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(page))
    source = write(tmp_path, "summary.md", "# ✅ all good\n")
    done = run_cli("github", "summary", source)
    assert done.exit_code == 0 and page.read_text(encoding="utf-8") == "# ✅ all good\n"
    write(tmp_path, "big.md", "x" * (SUMMARY_LIMIT - 20) + "\n" + "y" * 100 + "\n")
    done = run_cli("github", "summary", tmp_path / "big.md")
    assert done.exit_code == 0 and "truncated" in done.stdout
    assert len(page.read_bytes()) <= SUMMARY_LIMIT
