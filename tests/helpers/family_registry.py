"""A small batched family for registry tests, with signing keys: four regional quarterly series in
one CSV panel (`spec.batch: true`), a policy requiring the performance gate (stages dev -> production, ci-bot
signs dev), trained with `modelops-ci run` and committed on main, the DVC cache and remote with it.

Build it once per session and copy it per test (the run takes ~10 s):

    family = family_repo(family_template, tmp_path / "repo")
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.cli import run_exe
from tests.helpers.family import panel_csv, panel_rows
from tests.helpers.registry import ALLOWED_SIGNERS, KEYS, SshKey, allowed_signers, head, make_key
from tests.helpers.repos import git, write
from tests.helpers.templates import build_once, session_folder

FAMILY = "regions"
REGIONS = ("east", "north", "south", "west")
SERIES = tuple(f"{FAMILY}-{region}" for region in REGIONS)
FAMILY_SPEC = f"""\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: {FAMILY}
  labels: {{domain: shops}}
spec:
  task: forecast
  batch: true
  data:
    source: {{path: data/panel.csv}}
    time: quarter
    target: {{column: units}}
    features: {{drop: [region]}}
  split: {{kind: temporal, test_periods: 12}}
  model: {{estimator: sklearn.linear_model.Ridge, params: {{alpha: 1.0}}, lags: [1, 4], season: 4}}
  metrics: [mae, mase]
  foreach:
    from: pipelines/series/{FAMILY}.csv
    column: region
  do:
    data:
      filter:
        region: ${{item}}
"""
FAMILY_POLICY = """\
apiVersion: modelops/v1
kind: Policy
metadata: {name: shops}
spec:
  selector: {labels: {domain: shops}}
  gates:
    performance: {confidence: 0.9, metrics: {mase: {max: 2.5}}}
  family: {max_failed: 0}
  stages: [dev, production]
  promotion:
    dev: {signers: [ci-bot]}
    production: {signers: [release-managers], approvals: 1}
"""


@dataclass(frozen=True)
class FamilyRepo:
    """The trained family repo (git, DVC outputs, cache and remote) and the keys its tests sign with."""

    root: Path
    commit: str
    keys: dict[str, SshKey]

    def key_path(self, name: str = "ci-bot") -> Path:
        return self.keys[name].private


def regional_panel() -> str:
    """Fifteen years of quarterly units per region."""
    return panel_csv(panel_rows(REGIONS, 60, season=4, start=2005), "region,quarter,units")


def build_family_repo(root: Path, keys_dir: Path) -> None:
    """git + DVC repo with the family, its policy and allowed_signers, `run` and committed on main."""
    from modelops_ci.commands.init import DVC_CONFIG

    root.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    (root / ".dvc" / "config").write_text(DVC_CONFIG)
    keys = {name: make_key(keys_dir, name) for name in KEYS}
    files = {".gitignore": ".modelops/\n", "data/panel.csv": regional_panel(),
             f"pipelines/series/{FAMILY}.csv": "region\n" + "".join(f"{r}\n" for r in REGIONS),
             f"pipelines/{FAMILY}.yaml": FAMILY_SPEC, "policies/shops.yaml": FAMILY_POLICY,
             ALLOWED_SIGNERS: allowed_signers(keys)}
    for relative, text in files.items():
        write(root, relative, text)
    for args in (("compile",), ("run", FAMILY)):
        done = run_exe(*args, cwd=root)
        assert done.exit_code == 0, done.stdout + done.stderr
    git("add", "-A", cwd=root)
    git("commit", "-qm", f"run {FAMILY}", cwd=root)


def family_template(factory: pytest.TempPathFactory) -> Path:
    """The one folder per session where the family repo is built on first use, shared by the xdist
    workers: one build, whichever worker needs it first."""
    return session_folder(factory, "family-trained")


def family_repo(template_dir: Path, dest: Path) -> FamilyRepo:
    """A full copy at `dest` of the trained family repo (built on first use): git, DVC outputs, the
    DVC cache and the local remote, as a CI checkout after `dvc pull`."""
    source, keys_dir = template_dir / "repo", template_dir / "keys"

    def build() -> None:
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(keys_dir, ignore_errors=True)
        build_family_repo(source, keys_dir)

    build_once(template_dir, build)
    shutil.copytree(source, dest, symlinks=True)
    keys = {name: SshKey(name, keys_dir / name, " ".join((keys_dir / f"{name}.pub").read_text().split()[:2]))
            for name in KEYS}
    return FamilyRepo(dest, head(dest), keys)


def cached_file(root: Path, path: str) -> Path:
    """Where DVC's cache holds the file `path` of the family's committed model folder."""
    from modelops_ci.layout import Layout
    from modelops_ci.registry.dvc_cache import CACHE, folder_listing
    from modelops_ci.registry.evidence import output_digests, parse_lock

    folder = Layout(FAMILY).series_models
    lock = parse_lock((root / Layout(FAMILY).lock).read_bytes())
    listing = folder_listing(root, output_digests(lock)[folder])
    assert listing is not None, f"{folder} is not in the DVC cache of {root}"
    md5 = listing[str(Path(path).relative_to(folder))]
    return root.joinpath(*CACHE, md5[:2], md5[2:])
