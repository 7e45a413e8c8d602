"""The pre-commit hooks this repository offers, from one catalogue.

`.pre-commit-hooks.yaml` is rendered from `HOOKS` (`python -m modelops_ci.hooks > .pre-commit-hooks.yaml`);
a test keeps the two equal. Hook commands import no ML library, so they start fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SPEC_FILES = r"^(pipelines|policies|deployments)/"


@dataclass(frozen=True)
class Hook:
    """One entry of .pre-commit-hooks.yaml."""

    id: str
    name: str
    description: str
    entry: str
    files: str
    language: str = "python"
    pass_filenames: bool = False
    require_serial: bool = True


HOOKS = (
    Hook(
        id="modelops-validate",
        name="validate modelops specs, policies and deployments",
        description="Schema, templates, placeholders and policy rules of pipelines/ and policies/; the "
                    "versions deployments/ name hold verified stage tags.",
        entry="modelops-ci validate",
        files=SPEC_FILES,
    ),
    Hook(
        id="modelops-compile-check",
        name="check the compiled DVC pipeline is fresh",
        description="Fails with a diff when dvc.yaml or compiled/ differ from what the specs compile to.",
        entry="modelops-ci compile --check",
        files=r"^(pipelines/|policies/|compiled/|dvc\.yaml$)",
    ),
)


def render() -> str:
    """The text of .pre-commit-hooks.yaml."""
    import yaml

    header = "# Generated from modelops_ci/hooks.py: python -m modelops_ci.hooks > .pre-commit-hooks.yaml\n"
    return header + yaml.safe_dump([asdict(h) for h in HOOKS], sort_keys=False, width=120)


def render_local_config() -> str:
    """A .pre-commit-config.yaml that runs the catalogue's hooks with the installed modelops-ci.

    `language: system` needs no network: the repo made by `init` already has the tool.
    """
    import yaml

    local = [{"id": h.id, "name": h.name, "entry": h.entry, "language": "system", "files": h.files,
              "pass_filenames": h.pass_filenames, "require_serial": h.require_serial} for h in HOOKS]
    header = ("# pre-commit hooks for this ModelOps repo: pip install pre-commit && pre-commit install\n"
              "# They use the modelops-ci installed in your environment (modelops-ci init wrote this).\n")
    return header + yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}, sort_keys=False,
                                   width=120)


if __name__ == "__main__":
    print(render(), end="")
