"""Small spec texts several test modules build on (line numbers in their assertions refer to these)."""

from __future__ import annotations

import textwrap

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

LOANS_SPEC = """\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: loans
  labels: {domain: test}
spec:
  task: classification
  data:
    source: {path: data/raw/loans.csv}
    target: {column: default, positive: "yes"}
    features:
      numeric: [income, debt, age]
      categorical: [region]
    sensitive: [region, {derive: age_band, from: age, bins: [0, 40, 120]}]
  split: {kind: stratified, test_size: 0.3, seed: 7}
  model:
    estimator: sklearn.linear_model.LogisticRegression
    params: {C: 1.0, max_iter: 500}
  metrics: [roc_auc, accuracy, brier]
"""

SALES_SPEC = """\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: sales
spec:
  task: forecast
  data:
    source: {path: data/raw/sales.csv}
    time: quarter
    target: {column: units}
  split: {kind: temporal, test_periods: 4}
  model: {estimator: sklearn.linear_model.Ridge, params: {alpha: 1.0}, lags: [1, 4], season: 4}
  metrics: [mae, smape, mase]
"""


STAGES = "[dev, staging, production]"


def pipeline_yaml(name: str = "credit", *, labels: str = "{domain: finance}",
                  task: str = "classification", metrics: str = "[roc_auc, accuracy, brier]",
                  sensitive: str | None = "[sex, age_band]", drift: str | None = "{reference: train}",
                  gates: str = "") -> str:
    """A small, complete pipeline; `gates` is the YAML under `spec.gates` (indented 4)."""
    text = textwrap.dedent(f"""\
        apiVersion: modelops/v1
        kind: Pipeline
        metadata:
          name: {name}
          labels: {labels}
        spec:
          task: {task}
          data:
            source: {{path: data/{name}.csv}}
            target: {{column: y}}
        """)
    if sensitive is not None:
        text += f"    sensitive: {sensitive}\n"
    text += ("  split: {kind: random, test_size: 0.25, seed: 1}\n"
             "  model: {estimator: sklearn.linear_model.LogisticRegression}\n"
             f"  metrics: {metrics}\n")
    if drift is not None:
        text += f"  drift: {drift}\n"
    if gates:
        text += "  gates:\n" + textwrap.indent(textwrap.dedent(gates), "    ")
    return text


def policy_yaml(name: str, selector: str, gates: str = "", *, stages: str = STAGES,
                promotion: str = "") -> str:
    """A policy; `selector`, `gates` and `promotion` are the YAML under those keys."""
    text = textwrap.dedent(f"""\
        apiVersion: modelops/v1
        kind: Policy
        metadata:
          name: {name}
        spec:
          selector:
        """)
    text += textwrap.indent(textwrap.dedent(selector), "    ")
    if gates:
        text += "  gates:\n" + textwrap.indent(textwrap.dedent(gates), "    ")
    text += f"  stages: {stages}\n"
    if promotion:
        text += "  promotion:\n" + textwrap.indent(textwrap.dedent(promotion), "    ")
    return text


def position(text: str, before: str, value: str) -> tuple[int, int]:
    """1-based line and column of `value` where it follows `before` in `text` (unique)."""
    assert text.count(before + value) == 1, f"{before + value!r} is not unique in the file"
    offset = text.index(before + value) + len(before)
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


PERFORMANCE_GATE = "performance: {confidence: 0.9, metrics: {roc_auc: {min: 0.6}}}"


def loans_policy(*gates: str, name: str = "test", stages: str = "dev, production", promotion: str = "") -> str:
    """A Policy that selects the `loans` pipeline by name; each of `gates` is one gate's YAML (a line,
    or a block), `promotion` the YAML under spec.promotion."""
    text = f"apiVersion: modelops/v1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n  selector: {{names: [loans]}}\n"
    if gates:
        text += "  gates:\n" + "".join(textwrap.indent(gate + "\n", "    ") for gate in gates)
    text += f"  stages: [{stages}]\n"
    if promotion:
        text += "  promotion:\n" + textwrap.indent(promotion, "    ")
    return text
