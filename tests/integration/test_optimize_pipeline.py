"""A decision pipeline (`task: optimize`) run through real DVC stages: scenarios that solve, that the
formulation refuses or crashes on, that must stay infeasible; the same model under OR-Tools in a
process that never imports highspy; and what `validate` says of a spec that mixes the two kinds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import run_cli, run_exe
from tests.helpers.repos import git, make_ml_repo, write

FORMULATION = '''
import highspy

from modelops_ci.optimize.formulation import require_positive


def build(scenario):
    """Pick items within the capacity, reaching at least the scenario's `need` of value."""
    if "boom" in set(scenario.rows["item"]):
        raise RuntimeError("the catalogue has no price for boom")
    require_positive(scenario.rows, ["weight"])
    model = highspy.Highs()
    model.silent()
    take = [model.addBinary(name=f"take[{item}]") for item in scenario.rows["item"]]
    rows = scenario.rows
    model.addConstr(sum(w * x for w, x in zip(rows["weight"], take)) <= scenario.params["capacity"], name="capacity")
    model.addConstr(sum(v * x for v, x in zip(rows["value"], take)) >= float(rows["need"].max()), name="need")
    model.maximize(sum(v * x for v, x in zip(rows["value"], take)))
    return model
'''
ITEMS = """scenario,item,weight,value,need
small,a,5,3,0
small,b,4,4,0
small,c,6,5,0
small,d,3,6,0
negative,a,5,3,0
negative,b,-1,4,0
broken,boom,1,1,0
impossible,a,5,3,100
impossible,b,4,4,100
"""
SPEC = """apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: {name}
  labels: {{domain: planning}}
spec:
  task: optimize
  data:
    source: {{path: data/items.csv}}
    scenario: scenario
  model:
    formulation: plans.knapsack:build
    params: {{capacity: 10}}
    solver: {solver}
    options: {{time_limit: 20, mip_gap: 0, threads: 1, seed: 3}}
  expect:
    infeasible: [impossible]
"""
POLICY = """apiVersion: modelops/v1
kind: Policy
metadata: {name: planning}
spec:
  selector: {labels: {domain: planning}}
  gates:
    feasibility: {}
    violations: {max: 1.0e-6}
  stages: [dev]
"""


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A repo with the same knapsack model solved by HiGHS and by OR-Tools, run once."""
    repo = make_ml_repo(tmp_path_factory.mktemp("optimize") / "repo")
    for name in ("loans", "sales"):
        (repo / "pipelines" / f"{name}.yaml").unlink()
    write(repo, "plans/__init__.py", "")
    write(repo, "plans/knapsack.py", FORMULATION)
    write(repo, "data/items.csv", ITEMS)
    write(repo, "pipelines/plan.yaml", SPEC.format(name="plan", solver="highs"))
    write(repo, "pipelines/plan-ortools.yaml", SPEC.format(name="plan-ortools", solver="ortools"))
    write(repo, "policies/planning.yaml", POLICY)
    assert run_exe("compile", cwd=repo).exit_code == 0
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "plans", cwd=repo)
    result = run_exe("run", "--all", cwd=repo)
    return repo, result.stdout + result.stderr


def _results(repo: Path, name: str) -> dict[str, dict[str, object]]:
    loaded = json.loads((repo / f"reports/{name}/scenarios.json").read_text())
    return {r["scenario"]: r for r in loaded["scenarios"]}


@pytest.mark.parametrize("name", ["plan", "plan-ortools"])
def test_each_scenario_ends_on_its_own_and_bad_ones_say_why(planned: tuple[Path, str], name: str) -> None:
    repo, output = planned
    results = _results(repo, name)
    assert list(results) == ["small", "negative", "broken", "impossible"]
    small = results["small"]
    assert small["status"] == "optimal" and small["objective"] == pytest.approx(11.0)  # c + d: weight 9, value 11
    assert small["violation"] is not None and small["violation"] <= 1e-9
    assert results["negative"]["status"] == "error"
    assert results["negative"]["error"] == "weight is -1 in row 2: it must be positive"
    assert results["broken"]["error"] == "the formulation raised RuntimeError: the catalogue has no price for boom"
    assert (results["impossible"]["status"], results["impossible"]["expected"]) == ("infeasible", "infeasible")
    decisions = pd.read_parquet(repo / f"reports/{name}/solutions.parquet")
    taken = set(decisions[(decisions["scenario"] == "small") & (decisions["value"] > 0.5)]["variable"])
    assert taken == {"take[c]", "take[d]"}
    gates = json.loads((repo / f"reports/{name}/gates.json").read_text())
    status = {g["gate"]: g["status"] for g in gates["gates"]}
    assert status == {"feasibility": "error", "violations": "pass"}  # two scenarios could not be judged
    assert "negative" in output and "broken" in output


def test_the_card_names_the_formulation_its_digest_the_solver_and_the_scenario_set(planned: tuple[Path, str]) -> None:
    import hashlib

    repo, _ = planned
    card = json.loads((repo / "models/plan/formulation.json").read_text())
    other = json.loads((repo / "models/plan-ortools/formulation.json").read_text())
    code = repo / "plans/knapsack.py"
    assert card["formulation"]["formulation"] == "plans.knapsack:build"
    assert card["formulation"]["sha256"] == other["formulation"]["sha256"] != hashlib.sha256(b"").hexdigest()
    assert card["solver"]["name"] == "highs" and other["solver"]["name"] == "ortools"
    assert card["scenarios"] == {"count": 4, "sha256": other["scenarios"]["sha256"]}
    assert code.read_text() == FORMULATION


@pytest.mark.parametrize(("name", "loaded", "absent"), [("plan-ortools", "ortools", "highspy"),
                                                         ("plan", "highspy", "ortools")])
def test_each_solver_runs_in_a_process_that_never_imports_the_other(planned: tuple[Path, str], name: str,
                                                                    loaded: str, absent: str) -> None:
    """OR-Tools 9.15 and highspy 1.15 crash when imported in one process."""
    repo, _ = planned
    probe = ("import sys; from pathlib import Path; from modelops_ci.steps import run_step; "
             f"run_step(Path('.'), 'solve', {name!r}); print({loaded!r} in sys.modules, {absent!r} in sys.modules)")
    found = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True)
    assert found.stdout.splitlines()[-1].split() == ["True", "False"]  # HiGHS 1.16 prints a banner before it


def test_validate_refuses_a_spec_mixing_ml_and_decision_fields(planned: tuple[Path, str]) -> None:
    repo, _ = planned
    spec = SPEC.format(name="mixed", solver="highs").replace("  expect:", "  split: {kind: random}\n  expect:")
    write(repo, "pipelines/mixed.yaml", spec)
    try:
        result = run_cli("validate", cwd=repo)
    finally:
        (repo / "pipelines/mixed.yaml").unlink()
    assert result.exit_code == 2
    assert "pipelines/mixed.yaml:" in result.stderr and "has no split" in result.stderr


def test_the_registry_evidence_carries_the_formulation_solver_and_scenario_set(planned: tuple[Path, str]) -> None:
    """What a tag of a decision model claims, read from git at the commit (so `verify` re-reads it)."""
    import hashlib

    from modelops_ci.registry import evidence

    repo, _ = planned
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "run the plans", cwd=repo)
    commit = git("rev-parse", "HEAD", cwd=repo).strip()
    card_file = repo / "models/plan/formulation.json"
    card = json.loads(card_file.read_text())
    claimed = evidence.collect(repo, "plan", commit, version="v1.0.0")
    assert claimed.decision == {"formulation": card["formulation"], "solver": card["solver"],
                                "scenarios": card["scenarios"]}
    assert claimed.decision["solver"]["version"] and claimed.decision["scenarios"]["count"] == 4
    assert claimed.model["models/plan/formulation.json"] == hashlib.md5(card_file.read_bytes()).hexdigest()
    assert evidence.parse(evidence.message("plan v1.0.0", claimed)) == claimed
    card["solver"]["version"] = "0.0.1"  # a commit whose card says another solver: another claim
    card_file.write_text(json.dumps(card))
    git("commit", "-qam", "another solver", cwd=repo)
    later = evidence.collect(repo, "plan", git("rev-parse", "HEAD", cwd=repo).strip(), version="v1.0.1")
    assert later.decision["solver"]["version"] == "0.0.1" and later.decision != claimed.decision


LP_MODEL = """\\ a production plan: two products sharing machine hours
Maximize
 profit: 3 chairs + 5 tables
Subject To
 hours: 1 chairs + 2 tables <= 14
 wood: 3 chairs + 1 tables <= 18
Bounds
 0 <= chairs <= 100
 0 <= tables <= 100
General
 chairs tables
End
"""
BOUNDS = """scenario,row,column,lower,upper
normal,,,,
short of wood,wood,,,9
a big order,,chairs,10,
"""


def test_a_model_file_is_a_formulation_whose_bounds_each_scenario_sets(planned: tuple[Path, str]) -> None:
    repo, _ = planned
    write(repo, "models/plan.lp", LP_MODEL)
    write(repo, "data/bounds.csv", BOUNDS)
    spec = (SPEC.format(name="from-file", solver="highs")
            .replace("source: {path: data/items.csv}", "source: {path: data/bounds.csv}")
            .replace("formulation: plans.knapsack:build\n    params: {capacity: 10}", "file: models/plan.lp")
            .replace("    infeasible: [impossible]", "    infeasible: [a big order]"))
    write(repo, "pipelines/from-file.yaml", spec)
    try:
        assert run_cli("compile", cwd=repo).exit_code == 0
        for step in ("ingest", "build", "solve", "evaluate"):
            done = run_cli("step", step, "from-file", cwd=repo)
            assert done.exit_code == 0, done.stderr
        results = _results(repo, "from-file")
    finally:
        (repo / "pipelines/from-file.yaml").unlink()
    # normal: 4 chairs + 5 tables (hours 14, wood 17) = 37; wood 9: 7 tables (hours 14, wood 7) = 35
    assert results["normal"]["objective"] == pytest.approx(37.0)
    assert results["short of wood"]["objective"] == pytest.approx(35.0)
    assert (results["a big order"]["status"], results["a big order"]["expected"]) == ("infeasible", "infeasible")
    card = json.loads((repo / "models/from-file/formulation.json").read_text())
    assert card["formulation"] == {"file": "models/plan.lp",
                                   "sha256": __import__("hashlib").sha256(LP_MODEL.encode()).hexdigest()}


def test_a_solver_that_is_not_installed_stops_the_step_with_exit_2_naming_the_package(
        planned: tuple[Path, str], tmp_path: Path) -> None:
    """This venv's packages, OR-Tools left out (links to every other entry of site-packages): a real
    environment without the solver, nothing of ours patched."""
    import sysconfig

    from tests.helpers.paths import PROJECT

    repo, _ = planned
    site = Path(sysconfig.get_paths()["purelib"])
    without = tmp_path / "site-packages"
    without.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith("ortools"):
            (without / entry.name).symlink_to(entry)
    stdlib = [p for p in sys.path if p and not p.startswith(str(site)) and "__editable__" not in p]
    probe = (f"import sys; sys.path[:] = {[*stdlib, str(PROJECT), str(without)]!r}; "
             "from modelops_ci.cli.main import main; main(['step', 'solve', 'plan-ortools'])")
    done = subprocess.run([sys.executable, "-I", "-c", probe], cwd=repo, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert "the solver 'ortools' is not installed: pip install ortools" in done.stderr
    assert "Traceback" not in done.stderr
