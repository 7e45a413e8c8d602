"""A registry repo built by hand rather than by running pipelines: a commit holds only what the
evidence reads (compiled/<p>/dvc.lock, params.yaml, reports/<p>/gates.json and metrics.json,
policies/), which keeps the tests that use it to seconds."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from modelops_ci.registry.signing import SigningKey
from tests.helpers.cli import run_cli
from tests.helpers.repos import git, write

NAME = "loans"


STAGES = ("dev", "staging", "production")


DVC_YAML = "stages:\n  train:\n    cmd: modelops-ci step train loans\n"


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def card(index: int) -> str:
    """The model card of the index-th model: what model.json holds (its sha256 links to MLflow)."""
    return json.dumps({"sha256": hashlib.sha256(f"model {index}".encode()).hexdigest(), "task": "classification"})


def lock(name: str, index: int) -> str:
    outs = {f"data/{name}/train.parquet": md5(f"data {index}"),
            f"models/{name}/model.skops": md5(f"model {index}"),
            f"models/{name}/model.json": md5(card(index))}
    lines = ["schema: '2.0'", "stages:", "  train:", "    cmd: train", "    outs:"]
    for path, digest in outs.items():
        lines += [f"    - path: {path}", "      hash: md5", f"      md5: {digest}"]
    return "\n".join(lines) + "\n"


def policy(name: str, stages: tuple[str, ...]) -> str:
    return (f"apiVersion: modelops/v1\nkind: Policy\nmetadata: {{name: {name}-policy}}\nspec:\n"
            f"  selector: {{names: [{name}]}}\n  stages: [{', '.join(stages)}]\n")


@dataclass
class Registry:
    """A work repo with one commit per model version, its bare remote and a signing key."""

    repo: Path
    remote: Path
    key: Path
    commits: list[str] = field(default_factory=list)

    @property
    def signing(self) -> SigningKey:
        return SigningKey("ssh", str(self.key))

    def cli(self, *args: str | Path) -> tuple[int, str, str]:
        result = run_cli(*args, "-C", self.repo)
        return result.exit_code, result.stdout, result.stderr

    def remote_tags(self) -> dict[str, str]:
        listing = git("ls-remote", "--tags", "--refs", str(self.remote), cwd=self.repo)
        return {ref.removeprefix("refs/tags/"): oid for oid, ref in (line.split("\t") for line in listing.splitlines())}

    def add_model(self, name: str = NAME, verdict: str = "pass", stages: tuple[str, ...] = STAGES) -> str:
        """Commit the next model version of `name` (its outputs, gate verdict and policy)."""
        index = len(self.commits)
        write(self.repo, f"compiled/{name}/dvc.yaml", DVC_YAML)
        write(self.repo, f"compiled/{name}/params.yaml",
              f"governance:\n  policies: [{name}-policy]\n  stages: [{', '.join(stages)}]\n")
        write(self.repo, f"compiled/{name}/dvc.lock", lock(name, index))
        write(self.repo, f"reports/{name}/gates.json", json.dumps({"verdict": verdict, "gates": []}))
        write(self.repo, f"reports/{name}/metrics.json", json.dumps({"roc_auc": 0.8 + index / 100}))
        write(self.repo, f"policies/{name}.yaml", policy(name, stages))
        cached = self.repo / ".dvc" / "cache" / "files" / "md5" / md5(card(index))[:2] / md5(card(index))[2:]
        write(cached.parent, cached.name, card(index))
        git("add", "-A", cwd=self.repo)
        git("commit", "-qm", f"{name} model {index}", cwd=self.repo)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=self.repo)
        commit = git("rev-parse", "HEAD", cwd=self.repo).strip()
        self.commits.append(commit)
        return commit


def make_ssh_key(folder: Path, name: str = "signer") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def make_registry(tmp_path: Path, models: int = 3, principal: str = "ci-bot") -> Registry:
    """A registry repo with `models` committed model versions of `loans`, pushed to a bare remote."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=tmp_path)
    repo = tmp_path / "work"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    git("remote", "add", "origin", str(remote), cwd=repo)
    key = make_ssh_key(tmp_path / "keys")
    write(repo, ".gitignore", ".dvc/cache/\n.modelops/\n")
    write(repo, "policies/allowed_signers", f"{principal} {key.with_suffix('.pub').read_text().strip()}\n")
    registry = Registry(repo, remote, key)
    for _ in range(models):
        registry.add_model()
    return registry
