"""The pre-commit hooks catalogue: `.pre-commit-hooks.yaml` rendered from it, and this repository's
own pre-commit config using its hooks."""

from __future__ import annotations

import yaml

from modelops_ci import hooks
from tests.helpers.paths import PROJECT


def test_pre_commit_hooks_file_is_rendered_from_the_catalogue() -> None:
    on_disk = (PROJECT / ".pre-commit-hooks.yaml").read_text()
    assert on_disk == hooks.render(), "run: python -m modelops_ci.hooks > .pre-commit-hooks.yaml"
    ids = [h["id"] for h in yaml.safe_load(on_disk)]
    assert {"modelops-validate", "modelops-compile-check"} <= set(ids)


def test_own_pre_commit_config_uses_the_catalogue_hooks() -> None:
    config = yaml.safe_load((PROJECT / ".pre-commit-config.yaml").read_text())
    local = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    for hook in hooks.HOOKS:
        assert local[hook.id]["entry"] == hook.entry
        assert local[hook.id]["files"] == hook.files
    assert "ruff" in local
