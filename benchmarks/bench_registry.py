"""Benchmark `modelops-ci registry show` against `gto show` on a repository with 10,000 registry tags.

Run with the project's venv: `.venv/bin/python benchmarks/bench_registry.py [--tags N] [--repeat N]`.

The repository is written in one `git fast-import` stream (seconds for 10k annotated tags; they
are unsigned: reading does not check signatures). Names each get versions on successive commits
and stage tags with increasing N and tagger dates, so GTO (which orders by date) and modelops-ci
(which orders by N) must agree, and the benchmark checks that they do. Both tools run as
subprocesses, so start-up and imports count. Target: `registry show` <= 0.5 s at 10k tags.
Measured with loose refs (as `git tag` leaves them) and packed (as a clone or `git gc` has them);
GTO runs on the packed repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET = 0.5
STAGES = ("dev", "staging", "production")
VERSIONS_PER_NAME = 20
TAGS_PER_NAME = 50  # 20 registrations + 30 stage assignments
EPOCH = 1_700_000_000


def _data(text: str) -> str:
    return f"data {len(text.encode())}\n{text}\n"


def build(root: Path, tags: int) -> Path:
    """A git repo with `tags` annotated registry tags (rounded to whole names), via fast-import."""
    repo = root / "registry"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    names = max(1, tags // TAGS_PER_NAME)
    stream = []
    for index in range(VERSIONS_PER_NAME):
        stream.append(f"commit refs/heads/main\nmark :{index + 1}\n"
                      f"committer Bench <bench@example.com> {EPOCH + index} +0000\n{_data(f'model {index}')}"
                      f"M 644 inline model.txt\n{_data(str(index))}")
    clock = EPOCH + 1000
    for n in range(names):
        name = f"model-{n:04d}"
        events = [(f"{name}@v1.{i}.0", i + 1) for i in range(VERSIONS_PER_NAME)]
        for counter in range(1, TAGS_PER_NAME - VERSIONS_PER_NAME + 1):
            stage = STAGES[counter % len(STAGES)]
            events.append((f"{name}#{stage}#{counter}", (counter * 7) % VERSIONS_PER_NAME + 1))
        for tag, mark in events:
            clock += 1
            stream.append(f"tag {tag}\nfrom :{mark}\ntagger Bench <bench@example.com> {clock} +0000\n"
                          f"{_data(f'registry: {tag}')}")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input="".join(stream).encode(), check=True)
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=repo, check=True)
    return repo


def _modelops_command() -> list[str]:
    """`modelops-ci registry show --json`; through a shim while cli.py does not wire the commands yet."""
    exe = str(BIN / "modelops-ci")
    wired = subprocess.run([exe, "registry", "--help"], capture_output=True, check=False).returncode == 0
    if wired:
        return [exe, "registry", "show", "--json"]
    shim = ("import sys; from modelops_ci.cli import cli, main; "
            "from modelops_ci.cli_registry import register_commands; register_commands(cli); main(sys.argv[1:])")
    return [sys.executable, "-c", shim, "registry", "show", "--json"]


def _gto_command() -> list[str] | None:
    found = BIN / "gto"
    exe = str(found) if found.exists() else shutil.which("gto")
    return [exe, "show", "--json"] if exe else None


def timed(command: list[str], cwd: Path, repeat: int) -> tuple[list[float], str]:
    times, out = [], ""
    env = {**os.environ, "GTO_LOG_LEVEL": "ERROR"}
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True, env=env)
        times.append(time.perf_counter() - start)
        out = done.stdout
    return times, out


def agree(ours: str, theirs: str) -> bool:
    mine = {a["name"]: a for a in json.loads(ours)["artifacts"]}
    gto = json.loads(theirs)
    return set(mine) == set(gto) and all(
        gto[n]["version"] == mine[n]["latest"]
        and {s: v for s, v in gto[n]["stage"].items() if v} == {s: h["version"] for s, h in mine[n]["stages"].items()}
        for n in gto)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000, help="registry tags to create")
    parser.add_argument("--repeat", type=int, default=5, help="runs of registry show (median reported)")
    parser.add_argument("--gto-repeat", type=int, default=1, help="runs of gto show (it is slow)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as folder:
        start = time.perf_counter()
        repo = build(Path(folder), args.tags)
        count = len(subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True, check=True)
                    .stdout.split())
        print(f"built {count} annotated tags in {time.perf_counter() - start:.1f} s")

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from modelops_ci.registry import tags

        start = time.perf_counter()
        tags.state(tags.read(repo))
        print(f"in-process read + replay: {time.perf_counter() - start:.3f} s")

        loose, _ = timed(_modelops_command(), repo, args.repeat)
        print(f"modelops-ci registry show --json, loose refs (tags made here): median "
              f"{statistics.median(loose):.3f} s, min {min(loose):.3f} s ({args.repeat} runs)")
        subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True)
        ours, our_out = timed(_modelops_command(), repo, args.repeat)
        median = statistics.median(ours)
        verdict = "met" if median <= TARGET else "MISSED"
        print(f"modelops-ci registry show --json, packed refs (a clone): median {median:.3f} s, min "
              f"{min(ours):.3f} s ({args.repeat} runs; target <= {TARGET} s: {verdict})")
        gto = _gto_command()
        if gto is None:
            print("gto show: not installed (pip install gto)")
            return
        theirs, gto_out = timed(gto, repo, args.gto_repeat)
        print(f"gto show --json: median {statistics.median(theirs):.2f} s ({args.gto_repeat} run(s))")
        print(f"ratio gto / modelops-ci: {statistics.median(theirs) / median:.0f}x; "
              f"same state: {agree(our_out, gto_out)}")


if __name__ == "__main__":
    main()
