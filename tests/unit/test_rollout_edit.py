"""The one edit each roll-out decision makes to the deployment file, and nothing else."""

from __future__ import annotations

import pytest
import yaml

from modelops_ci.errors import UserError
from modelops_ci.rollout.edit import edited

TEXT = """\
# Desired serving state of stage 'production'.
apiVersion: modelops/v1
kind: Deployment
metadata: {name: production}
spec:
  stage: production
  models:
    loans:
      champion: v1.0.0
      challenger: v1.1.0
      weight: 10
      steps: [{weight: 10, pause: 10m}, {weight: 50, pause: 10m}, {weight: 100}]
      commits: {v1.0.0: aaaa, v1.1.0: bbbb}
    scores:
      champion: v2.0.0
"""


def entry(text: str, name: str = "loans") -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(text)["spec"]["models"][name]
    return loaded


def test_advance_moves_the_weight_and_records_when() -> None:
    after = edited(TEXT, "deployments/production.yaml", "loans", "advance", weight=50, now=1700000000.25)
    assert entry(after) == {**entry(TEXT), "weight": 50, "since": 1700000000.25}
    assert entry(after, "scores") == entry(TEXT, "scores")
    assert after.startswith("# Desired serving state of stage 'production'.\n")


def test_abort_sets_the_challengers_weight_to_zero_and_keeps_it_named() -> None:
    after = entry(edited(TEXT, "deployments/production.yaml", "loans", "abort", weight=50, now=5.0))
    assert (after["champion"], after["challenger"], after["weight"], after["since"]) == ("v1.0.0", "v1.1.0", 0, 5.0)


def test_promote_makes_the_challenger_the_champion_and_drops_the_old_pin() -> None:
    after = entry(edited(TEXT, "deployments/production.yaml", "loans", "promote", weight=100, now=7.0))
    assert after["champion"] == "v1.1.0"
    assert "challenger" not in after and "weight" not in after
    assert after["commits"] == {"v1.1.0": "bbbb"}


def test_a_model_the_file_does_not_deploy_is_a_clear_error() -> None:
    with pytest.raises(UserError, match=r"deployments/production\.yaml: deploys no model 'cars'"):
        edited(TEXT, "deployments/production.yaml", "cars", "abort", weight=0, now=1.0)
