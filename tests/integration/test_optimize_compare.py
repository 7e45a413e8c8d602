"""A decision model against its champion: the champion's formulation, read from its verified tag's
commit, solves the current scenarios in a worktree, and the paired objective decides."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.registry import evidence_message, make_key, policy_yaml, sign_tag, signer_line
from tests.helpers.repos import git, make_ml_repo, write

FORMULATION = '''
import highspy


def build(scenario):
    """Pick items of the most value within the capacity."""
    rows = scenario.rows
    model = highspy.Highs()
    model.silent()
    take = [model.addBinary(name=f"take[{item}]") for item in rows["item"]]
    model.addConstr(sum(w * x for w, x in zip(rows["weight"], take)) <= scenario.params["capacity"], name="capacity")
    model.maximize(sum(v * x for v, x in zip(rows["value"], take)))
    return model
'''
ITEMS = "scenario,item,weight,value\n" + "".join(
    f"s{s},i{i},{1 + (3 * i + s) % 7},{2 + (5 * i + 2 * s) % 9}\n" for s in range(8) for i in range(8))
SPEC = """apiVersion: modelops/v1
kind: Pipeline
metadata: {{name: plan}}
spec:
  task: optimize
  data:
    source: {{path: data/items.csv}}
    scenario: scenario
  model:
    formulation: plans.knapsack:build
    params: {{capacity: {capacity}}}
    options: {{time_limit: 20, mip_gap: 0.0001, seed: 5}}
  gates:
    compare: {{against: production, allow_first: true}}
"""
STEPS = ("build", "solve", "evaluate")


def _gate(repo: Path) -> dict[str, Any]:
    done = run_cli("step", "gate-compare", "plan", cwd=repo)
    assert done.exit_code == 0, done.stderr
    report: dict[str, Any] = json.loads((repo / "reports/plan/gates/compare.json").read_text())
    return report


def _rerun(repo: Path, capacity: int, *, first: bool = False) -> None:
    write(repo, "pipelines/plan.yaml", SPEC.format(capacity=capacity))
    assert run_cli("compile", cwd=repo).exit_code == 0
    for step in ("ingest", *STEPS) if first else STEPS:
        done = run_cli("step", step, "plan", cwd=repo)
        assert done.exit_code == 0, done.stderr


def _objectives(repo: Path) -> dict[str, float]:
    results = json.loads((repo / "reports/plan/scenarios.json").read_text())["scenarios"]
    return {r["scenario"]: r["objective"] for r in results}


def test_a_formulation_is_compared_with_the_champions_on_the_current_scenarios(tmp_path: Path) -> None:
    repo = make_ml_repo(tmp_path / "repo")
    for name in ("loans", "sales"):
        (repo / "pipelines" / f"{name}.yaml").unlink()
    write(repo, "plans/__init__.py", "")
    write(repo, "plans/knapsack.py", FORMULATION)
    write(repo, "data/items.csv", ITEMS)
    write(repo, "pipelines/plan.yaml", SPEC.format(capacity=10))
    key = make_key(repo.parent / "keys", "ci-bot")
    write(repo, "policies/allowed_signers", signer_line(key, "ci-bot") + "\n")
    write(repo, "policies/test.yaml", policy_yaml(pipeline="plan", signers={}, approvals={}, gates=()))
    _rerun(repo, capacity=10, first=True)
    stages = [f"compiled/plan/dvc.yaml:{step}" for step in ("ingest", *STEPS)]
    subprocess.run([sys.executable, "-m", "dvc", "commit", "-f", *stages], cwd=repo, check=True, capture_output=True)
    assert "no champion" in _gate(repo)["reason"]
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "plan v1", cwd=repo)
    v1 = git("rev-parse", "HEAD", cwd=repo).strip()
    for tag, stage in (("plan@v1.0.0", None), ("plan#staging#1", "staging"), ("plan#production#2", "production")):
        sign_tag(repo, tag, v1, evidence_message(repo, v1, version="v1.0.0", stage=stage, pipeline="plan"),
                 key.signing_key)
    champion = _objectives(repo)
    # the registry's readers take a decision model unchanged: verify and audit
    verified = run_cli("verify", "plan@v1.0.0", "plan#staging#1", "plan#production#2", cwd=repo)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    audited = run_cli("audit", "plan", "--json", cwd=repo)
    assert audited.exit_code == 0, audited.stderr
    assert "models/plan/formulation.json" in audited.stdout and "plan#production#2" in audited.stdout

    same = _gate(repo)  # the same formulation, solver and options: the same decisions, not solved again
    assert same["status"] == "pass" and same["details"]["champion"]["tag"] == "plan#production#2"
    assert same["details"]["same_model"] is True and same["n"] == 8

    _rerun(repo, capacity=6)  # a tighter formulation: less value in every scenario where it binds
    worse = _gate(repo)
    assert worse["status"] == "fail" and worse["reason"].startswith("against production v1.0.0: the objective is +")
    ours = _objectives(repo)
    expected = sum((champion[s] - ours[s]) / abs(champion[s]) for s in ours) / len(ours)  # maximising: less is worse
    assert worse["checks"][0]["statistic"] == pytest.approx(expected)
    assert worse["checks"][0]["ci"][0] > 0  # surely worse, not noise

    _rerun(repo, capacity=14)  # a looser one is better: the difference is negative and the gate passes
    better = _gate(repo)
    assert better["status"] == "pass" and better["checks"][0]["ci"][1] < 0
    assert "same_model" not in better["details"]  # solved by the champion's formulation, not skipped
    assert (repo / "data/plan/dataset.parquet").is_file() and git("worktree", "list", cwd=repo).count("\n") == 1
    _serves_the_verified_formulation(repo, champion)


def _serves_the_verified_formulation(repo: Path, champion: dict[str, float]) -> None:
    """`serve` answers POST /v1/models/plan/solve with the production version's formulation and params
    (capacity 10, from its commit, whatever the checkout's spec says now), logged like an answer."""
    import csv

    import httpx

    from modelops_ci.serve import predlog
    from tests.helpers.deployed import deployment
    from tests.helpers.servers import model_server

    write(repo, "deployments/production.yaml", deployment("    plan:\n      champion: v1.0.0\n", "production"))
    with (repo / "data/items.csv").open() as handle:
        items = [r for r in csv.DictReader(handle) if r["scenario"] == "s3"]
    rows = [{"item": r["item"], "weight": float(r["weight"]), "value": float(r["value"])} for r in items]
    log = repo.parent / "solve.sqlite"
    with model_server(repo, "production", log) as up:
        server = up.wait("/readyz")
        solved = httpx.post(f"{server.url}/v1/models/plan/solve", json={"rows": rows},
                            headers={"X-Request-Id": "plan-1"}, timeout=60)
        missing = httpx.post(f"{server.url}/v1/models/plan/solve", json={"rows": [{"item": "a", "weight": 1.0}]},
                             timeout=60)
        predicted = httpx.post(f"{server.url}/v1/models/plan/predict", json={"rows": rows}, timeout=60)
    assert solved.status_code == 200, solved.text
    result = solved.json()["result"]
    assert solved.json()["version"] == "v1.0.0" and result["status"] == "optimal"
    assert result["objective"] == pytest.approx(champion["s3"])  # the champion's params, not the checkout's
    assert result["violation"] <= 1e-9 and all(name.startswith("take[") for name in result["decision"])
    assert missing.status_code == 422 and "value" in missing.json()["error"]  # as predict refuses bad rows
    assert predicted.status_code == 400 and "is a decision model" in predicted.json()["error"]
    logged = predlog.read(log)
    answer = logged[logged["request_id"] == "plan-1"].iloc[0]
    assert answer["status"] == 200 and json.loads(answer["prediction"])["objective"] == pytest.approx(champion["s3"])

    (repo / "plans/knapsack.py").write_text(FORMULATION.replace("most value", "most value (edited)"))
    with model_server(repo, "production", repo.parent / "edited.sqlite") as up:
        up.wait("/healthz")
        readiness = httpx.get(f"{up.url}/readyz", timeout=30)
    assert readiness.status_code == 503  # the version is not served: the checkout's code is not the verified one
    assert "not the code this version was verified with" in json.dumps(readiness.json())
