"""The project's shape: a light core with the ML stack in an extra, the layout DESIGN §3 names, and a
README whose first screen gives the two commands that `.ci/run` and CI actually use."""

from __future__ import annotations

import re

from tests.helpers.paths import PROJECT
from tests.helpers.project import project_table, requirement_name


def test_the_core_dependencies_carry_no_ml_library() -> None:
    core = {requirement_name(r) for r in project_table()["dependencies"]}
    assert core == {"click", "pyyaml", "jsonschema"}


def test_the_console_script_is_modelops_ci() -> None:
    assert project_table()["scripts"] == {"modelops-ci": "modelops_ci.cli.main:main"}


def test_the_layout_is_in_place() -> None:
    for path in ("modelops_ci", "pipelines", "pipelines/templates", "policies", "hooks", "tests", "benchmarks",
                 "dvc.yaml", "README.md", ".pre-commit-hooks.yaml", ".pre-commit-config.yaml", ".ci/run"):
        assert (PROJECT / path).exists(), path


def test_the_readme_first_screen_has_exactly_the_two_commands() -> None:
    first_screen = (PROJECT / "README.md").read_text().split("\n---\n", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", first_screen, flags=re.S)
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -e '.[ml]' && .venv/bin/modelops-ci ci",
        ".ci/run",
    ]
    assert len(first_screen.splitlines()) <= 25


def test_ci_run_installs_lints_and_tests_and_fails_on_no_tests() -> None:
    script = (PROJECT / ".ci/run").read_text()
    assert "pip install --quiet -e '.[ml,test]'" in script
    assert ".venv/bin/ruff check ." in script and ".venv/bin/mypy" in script
    assert ".venv/bin/python -m pytest" in script
    assert re.search(r'if \[ "\$status" -eq 5 \]; then.*?exit 1', script, flags=re.S)
