"""Small spec texts several test modules build on (line numbers in their assertions refer to these)."""

from __future__ import annotations

SHOWN = "pipelines/demo.yaml"
HEAD = "apiVersion: modelops/v1\nkind: Pipeline\nmetadata:\n  name: demo\n"
SPEC = """\
spec:
  task: classification
  data:
    source:
      path: data/train.csv
    target:
      column: y
  split:
    kind: random
    test_size: 0.2
  model:
    estimator: sklearn.linear_model.LogisticRegression
  metrics: [accuracy]
"""
VALID = HEAD + SPEC  # a complete, valid pipeline
