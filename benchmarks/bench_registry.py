"""Benchmark reading the *verified* registry at 10,000 signed tags, against `gto show`.

Run with the project's venv: `.venv/bin/python benchmarks/bench_registry.py [--tags N] [--repeat N]`.

The repository holds `--tags` registry tags (rounded to whole names of 50: 20 registrations and
30 stage assignments, each version through dev, staging and production in order), every one an
SSH-signed annotated tag whose evidence block matches its commit, under a policy and an
allowed_signers file on main, so every tag verifies, as in a real registry. They are made without
a `git tag` per tag: one `ssh-keygen -Y sign` call signs every payload, one `git hash-object` writes
every tag object, one `git update-ref --stdin` makes every ref.

Measured, each as a subprocess (start-up and imports count) unless it says in-process:
- `modelops-ci registry show --json` cold (no remembered verdicts: every signature checked and
  every evidence recomputed) and warm (remembered verdicts; the rules between tags judged again);
  target warm <= 1 s;
- the champion of one name (what the compare gate reads), in-process, warm and cold; target <= 0.3 s;
- `gto show --json` on the same repository (it checks no signature), and whether both agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelops_ci.registry import evidence

BIN = Path(sys.executable).parent
SHOW_TARGET = 1.0
CHAMPION_TARGET = 0.3
STAGES = ("dev", "staging", "production")
VERSIONS_PER_NAME = 20
PROMOTED_PER_NAME = 10  # versions taken through the three stages: 30 stage tags
TAGS_PER_NAME = VERSIONS_PER_NAME + PROMOTED_PER_NAME * len(STAGES)
EPOCH = 1_700_000_000
POLICY = ("apiVersion: modelops/v1\nkind: Policy\nmetadata: {name: bench}\nspec:\n"
          "  selector: {names: ['*']}\n  stages: [dev, staging, production]\n")
GATES = json.dumps({"verdict": "pass", "gates": []})
METRICS = json.dumps({"roc_auc": 0.81})


def _data(text: str) -> str:
    return f"data {len(text.encode())}\n{text}\n"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _lock(name: str) -> str:
    outs = {f"data/{name}/train.parquet": _md5(f"data {name}"), f"models/{name}/model.skops": _md5(name),
            f"models/{name}/model.json": _md5(f"card {name}")}
    lines = ["schema: '2.0'", "stages:", "  train:", "    cmd: train", "    outs:"]
    for path, digest in outs.items():
        lines += [f"    - path: {path}", "      hash: md5", f"      md5: {digest}"]
    return "\n".join(lines) + "\n"


def _files(names: list[str], public_key: str) -> dict[str, str]:
    files = {"policies/bench.yaml": POLICY, "policies/allowed_signers": f'bench namespaces="git" {public_key}\n'}
    for name in names:
        files[f"compiled/{name}/params.yaml"] = "labels: {}\n"
        files[f"compiled/{name}/dvc.lock"] = _lock(name)
        files[f"reports/{name}/gates.json"] = GATES
        files[f"reports/{name}/metrics.json"] = METRICS
    return files


def _commits(repo: Path, names: list[str], public_key: str) -> list[str]:
    """VERSIONS_PER_NAME commits on main: the first adds every pipeline's files, each one after
    changes model.txt (so each version has its own commit)."""
    stream = []
    for index in range(VERSIONS_PER_NAME):
        stream.append(f"commit refs/heads/main\nmark :{index + 1}\n"
                      f"committer Bench <bench@example.com> {EPOCH + index} +0000\n{_data(f'model {index}')}")
        if index:
            stream.append(f"from :{index}\n")
        files = _files(names, public_key) if index == 0 else {}
        for path, text in {**files, "model.txt": str(index)}.items():
            stream.append(f"M 644 inline {path}\n{_data(text)}")
    marks = repo / "marks"
    subprocess.run(["git", "fast-import", "--quiet", f"--export-marks={marks}"], cwd=repo,
                   input="".join(stream).encode(), check=True)
    by_mark = dict(line.split() for line in marks.read_text().splitlines())
    return [by_mark[f":{index + 1}"] for index in range(VERSIONS_PER_NAME)]


def _events(name: str) -> list[tuple[str, int, str | None, str]]:
    """(tag, commit index, stage, version) of one name, oldest first."""
    events = [(f"{name}@v1.{i}.0", i, None, f"v1.{i}.0") for i in range(VERSIONS_PER_NAME)]
    counter = 0
    for k in range(PROMOTED_PER_NAME):
        for stage in STAGES:
            counter += 1
            events.append((f"{name}#{stage}#{counter}", 2 * k, stage, f"v1.{2 * k}.0"))
    return events


def build(root: Path, tags: int) -> Path:
    """A repository on main with `tags` signed registry tags that verify (see the module docstring)."""
    repo = root / "registry"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    key = root / "bench_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)], check=True)
    public = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    names = [f"model-{n:04d}" for n in range(max(1, tags // TAGS_PER_NAME))]
    commits = _commits(repo, names, public)
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=repo, check=True)
    digest = evidence.policy_digest(repo, commits[0])  # the policies are the same at every commit
    payloads = root / "payloads"
    payloads.mkdir()
    clock, made = EPOCH + 1000, []
    for name in names:
        lock = evidence.output_digests(evidence.parse_lock(_lock(name).encode()))
        base = evidence.Evidence(
            pipeline=name, version="", commit="", data={p: h for p, h in lock.items() if p.startswith("data/")},
            model={p: h for p, h in lock.items() if p.startswith("models/")}, metrics=json.loads(METRICS),
            gates_digest=hashlib.sha256(GATES.encode()).hexdigest(), verdict="pass", policy_digest=digest)
        for tag, index, stage, version in _events(name):
            clock += 1
            claimed = replace(base, version=version, commit=commits[index], stage=stage)
            title = f"Promote {name} {version} to {stage}" if stage else f"Register {name} {version}"
            payload = (f"object {commits[index]}\ntype commit\ntag {tag}\ntagger Bench <bench@example.com> "
                       f"{clock} +0000\n\n{evidence.message(title, claimed)}")
            path = payloads / f"{len(made)}.txt"
            path.write_text(payload, encoding="utf-8")
            made.append((tag, path))
    _sign_and_store(repo, key, made)
    return repo


def _sign_and_store(repo: Path, key: Path, made: list[tuple[str, Path]]) -> None:
    paths = [str(path) for _, path in made]
    for start in range(0, len(paths), 2000):
        subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", "git", *paths[start:start + 2000]],
                       check=True, capture_output=True)
    objects = []
    for _, path in made:
        tagged = path.with_suffix(".tag")
        tagged.write_bytes(path.read_bytes() + Path(f"{path}.sig").read_bytes())
        objects.append(str(tagged))
    written = subprocess.run(["git", "hash-object", "-t", "tag", "-w", "--stdin-paths"], cwd=repo, check=True,
                             input="\n".join(objects) + "\n", capture_output=True, text=True).stdout.split()
    updates = "".join(f"create refs/tags/{tag} {oid}\n" for (tag, _), oid in zip(made, written, strict=True))
    subprocess.run(["git", "update-ref", "--stdin"], cwd=repo, input=updates, text=True, check=True)
    subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True)


def timed(command: list[str], cwd: Path, repeat: int) -> tuple[list[float], str]:
    times, out = [], ""
    env = {**os.environ, "GTO_LOG_LEVEL": "ERROR"}
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True, env=env)
        times.append(time.perf_counter() - start)
        out = done.stdout
    return times, out


def champion_times(repo: Path, name: str, repeat: int) -> list[float]:
    """In-process: the champion of `name`, `repeat` times (the first on an empty cache is cold)."""
    from modelops_ci.registry import state

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        found, _ = state.champion(repo, name, "production")
        times.append(time.perf_counter() - start)
        assert found is not None, f"{name} has no verified production champion"
    return times


def agree(ours: str, theirs: str) -> bool:
    mine = {a["name"]: a for a in json.loads(ours)["artifacts"]}
    gto = json.loads(theirs)
    return set(mine) == set(gto) and all(
        gto[n]["version"] == mine[n]["latest"]
        and {s: v for s, v in gto[n]["stage"].items() if v} == {s: h["version"] for s, h in mine[n]["stages"].items()}
        for n in gto)


def _gto_command() -> list[str] | None:
    found = BIN / "gto"
    exe = str(found) if found.exists() else shutil.which("gto")
    return [exe, "show", "--json"] if exe else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000, help="registry tags to create")
    parser.add_argument("--repeat", type=int, default=5, help="warm runs of registry show (median reported)")
    parser.add_argument("--gto-repeat", type=int, default=1, help="runs of gto show (it is slow)")
    args = parser.parse_args()
    show = [str(BIN / "modelops-ci"), "registry", "show", "--json"]
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as folder:
        start = time.perf_counter()
        repo = build(Path(folder), args.tags)
        count = len(subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True, check=True)
                    .stdout.split())
        print(f"built {count} signed annotated tags in {time.perf_counter() - start:.1f} s")

        (first,) = champion_times(repo, "model-0000", 1)  # nothing remembered yet: cold
        cold, our_out = timed(show, repo, 1)
        refused = json.loads(our_out)["unverified"]
        print(f"modelops-ci registry show --json, cold (every tag verified): {cold[0]:.1f} s; "
              f"{count - len(refused)} verified, {len(refused)} refused")
        warm, our_out = timed(show, repo, args.repeat)
        median = statistics.median(warm)
        print(f"modelops-ci registry show --json, warm (remembered verdicts): median {median:.3f} s, "
              f"min {min(warm):.3f} s ({args.repeat} runs; target <= {SHOW_TARGET} s: "
              f"{'met' if median <= SHOW_TARGET else 'MISSED'})")
        best = statistics.median(champion_times(repo, "model-0000", args.repeat))
        print(f"champion of one name ({TAGS_PER_NAME} tags), in-process: cold {first:.3f} s, warm median "
              f"{best:.3f} s (target <= {CHAMPION_TARGET} s: {'met' if best <= CHAMPION_TARGET else 'MISSED'})")

        gto = _gto_command()
        if gto is None:
            print("gto show: not installed (pip install gto)")
            return
        theirs, gto_out = timed(gto, repo, args.gto_repeat)
        print(f"gto show --json (checks no signature): median {statistics.median(theirs):.2f} s "
              f"({args.gto_repeat} run(s)); same state: {agree(our_out, gto_out)}")


if __name__ == "__main__":
    main()
