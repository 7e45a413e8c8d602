"""`modelops-ci compile`: the example repo compiled to DVC, checked by DVC itself, byte-stable,
`--check` as CI runs it, stale files removed, and nothing written when a spec is wrong."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.helpers.examples import ARRIVALS, CORE, FAMILIES, FINANCE_GATES, FORECAST_GATES, PIPELINES, compile_ok
from tests.helpers.paths import BIN
from tests.helpers.repos import git


def dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(repo.parent / "dvc-site")}
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, capture_output=True, text=True,
                          check=False, env=env)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# -- DVC itself reads the graph -------------------------------------------------------------


def test_dvc_accepts_the_compiled_graph(example_repo: Path) -> None:
    git("init", "-q", cwd=example_repo)
    dvc(example_repo, "init", "-q")
    compile_ok(example_repo)

    listed = {line.split()[0] for line in dvc(example_repo, "stage", "list", "--all").splitlines()}
    expected = {"summary"}
    expected |= {f"compiled/credit-risk/dvc.yaml:{s}" for s in (*CORE, *FINANCE_GATES, "gates")}
    for name in ARRIVALS:
        expected |= {f"compiled/{name}/dvc.yaml:{s}" for s in (*CORE, *FORECAST_GATES, "gates")}
    expected |= {f"compiled/{name}/dvc.yaml:batch" for name in FAMILIES}  # one stage for all its series
    expected |= {f"compiled/depots/dvc.yaml:{s}" for s in ("ingest", "build", "solve", "evaluate", "gate-feasibility",
                                                           "gate-violations", "gate-optimality", "gate-solve-time",
                                                           "gate-compare", "gates")}
    assert listed == expected

    edges = set(re.findall(r'"([^"]+)" -> "([^"]+)";', dvc(example_repo, "dag", "--dot")))

    def edge(name: str, a: str, b: str) -> tuple[str, str]:
        return (f"compiled/{name}/dvc.yaml:{a}", "summary" if b == "summary"
                else f"compiled/{name}/dvc.yaml:{b}")

    for name in PIPELINES:
        for a, b in [("ingest", "split"), ("split", "train"), ("train", "evaluate"),
                     ("split", "evaluate"), ("evaluate", "gate-performance"),
                     ("gate-performance", "gates"), ("gates", "summary")]:
            assert edge(name, a, b) in edges, (name, a, b)
    for name in FAMILIES:
        assert edge(name, "batch", "summary") in edges
    for a, b in [("ingest", "build"), ("build", "solve"), ("solve", "evaluate"), ("build", "evaluate"),
                 ("evaluate", "gate-feasibility"), ("gate-solve-time", "gates"), ("gates", "summary")]:
        assert edge("depots", a, b) in edges, (a, b)
    # the forecaster's predictions are the decision model's scenarios: DVC runs it first
    assert ("compiled/arrivals-uk/dvc.yaml:evaluate", "compiled/depots/dvc.yaml:ingest") in edges
    for a, b in [("split", "gate-drift"), ("gate-drift", "gates"),
                 ("evaluate", "gate-fairness"), ("train", "gate-performance"),
                 ("evaluate", "gate-compare"), ("ingest", "gate-data-contract"),
                 ("gate-fairness", "gates"), ("gate-compare", "gates"),
                 ("gate-data-contract", "gates")]:
        assert edge("credit-risk", a, b) in edges, (a, b)
    assert not any("arrivals" in a and "credit-risk" in b for a, b in edges)

    status = json.loads(dvc(example_repo, "status", "--json"))
    assert set(status) == expected  # nothing has run yet: every stage is out of date
    assert {"changed outs": {"reports/credit-risk/gates/fairness.json": "deleted"}} in status[
        "compiled/credit-risk/dvc.yaml:gate-fairness"]


def test_dvc_sees_a_removed_pipeline_go(example_repo: Path) -> None:
    git("init", "-q", cwd=example_repo)
    dvc(example_repo, "init", "-q")
    compile_ok(example_repo)
    (example_repo / "pipelines/credit-risk.yaml").unlink()

    compile_ok(example_repo)

    listed = dvc(example_repo, "stage", "list", "--all")
    assert "credit-risk" not in listed
    assert "compiled/arrivals-uk/dvc.yaml:gate-performance" in listed
