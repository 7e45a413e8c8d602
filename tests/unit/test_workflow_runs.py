"""The workflow runner itself (tests/helpers/workflow_runner.py, #6): the GitHub expression subset it
evaluates, and the file and workflow commands it reads as GitHub does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.github_server import TOKEN
from tests.helpers.workflow_runner import ExpressionError, Scope, annotations_in, read_file_command

# -- the runner itself ------------------------------------------------------------------------------


def test_expressions_are_github_subset_and_refuse_the_rest() -> None:
    scope = Scope({"github": {"event_name": "pull_request", "event": {"pull_request": {
        "title": "${{ github.token }}", "merged": True}}, "token": TOKEN}, "inputs": {"cache": "true"},
        "steps": {}, "secrets": {}, "env": {}})
    assert scope.interpolate("${{ github.event.pull_request.title }}") == "${{ github.token }}"  # one pass
    assert scope.interpolate("${{ secrets.MISSING }}") == ""
    assert scope.condition("github.event.pull_request.merged && github.event_name == 'PULL_REQUEST'")
    assert scope.condition("${{ inputs.cache == 'true' }}")
    assert not Scope(scope.contexts, succeeded=False, failed=True).condition("inputs.cache == 'true'")
    assert Scope(scope.contexts, succeeded=False, failed=True).condition("!cancelled() && failure()")
    assert scope.condition("startsWith(github.event_name, 'PULL_')")  # case-insensitive, as GitHub's
    assert not scope.condition("startsWith(github.event_name, 'push')")
    for unsupported in ("contains(github.ref, 'x')", "matrix.os", "vars.X", "github.ref < 3", "steps.*.outputs"):
        with pytest.raises(ExpressionError):
            scope.evaluate(unsupported)
    with pytest.raises(ExpressionError, match="always true"):
        scope.condition("on ${{ github.event_name }}")


def test_file_and_workflow_commands_are_read_as_github_does(tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.write_text("name=loans\nbody<<EOF\nline 1\nline=2\nEOF\nempty=\n")
    assert read_file_command(output) == {"name": "loans", "body": "line 1\nline=2", "empty": ""}
    (found,) = annotations_in("noise\n::error file=policies/a%2Cb.yaml,line=7,title=x%3A y::50%25%0Adone\n")
    assert (found.level, found.file, found.line, found.title, found.message) == (
        "error", "policies/a,b.yaml", 7, "x: y", "50%\ndone")
