"""Synthetic but real gate results (the performance gate on synthetic predictions, `gates_report`
for the verdict) and a reports/ folder of two pipelines built from them, for the report tests."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
from markdown_it import MarkdownIt

from modelops_ci.gates.performance import assess, classification_sample
from modelops_ci.gates.result import Check, GateResult
from modelops_ci.gates.verdict import GatesReport
from modelops_ci.steps.gate import gates_report


def performance_gate() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    score = np.clip(0.35 * y + rng.random(600) * 0.65, 0, 1)
    settings = {"confidence": 0.95, "metrics": {"roc_auc": {"min": 0.75}, "brier": {"max": 0.2}}}
    return assess(classification_sample(y, score), settings, resamples=200).to_json()


def fairness_gate(groups: list[str] | None = None, worst: str = "single", best: str = "married") -> dict[str, Any]:
    names = groups or ["married", "single", "separated", "widow", "divorced"]
    rates = {name: 0.41 - 0.04 * i for i, name in enumerate(names)}
    rates[worst], rates[best] = 0.25, 0.41
    sizes = {name: 300 + 97 * i for i, name in enumerate(names)}
    by_group = [{"feature": "Marital", "group": g, "metric": "selection_rate", "value": rates[g],
                 "ci": [rates[g] - 0.04, rates[g] + 0.04], "n": sizes[g]} for g in names]
    by_group += [{"feature": "age_band", "group": g, "metric": "selection_rate", "value": v, "ci": [v - 0.05, v + 0.05],
                  "n": 200} for g, v in (("0-25", 0.31), ("25-40", 0.36), ("40-60", 0.33), ("60-120", 0.34))]
    checks = [
        Check("demographic_parity_ratio[Marital]", "fail",
              f"demographic parity ratio is 0.61 (95% CI 0.52 to 0.70) between '{worst}' and '{best}': below 0.8",
              statistic=0.61, ci=(0.52, 0.70), threshold={"min": 0.8}, n=sum(sizes.values()),
              details={"metric": "demographic_parity_ratio", "feature": "Marital", "worst_group": worst,
                       "best_group": best}),
        Check("equalized_odds_difference[Marital]", "pass", "equalized odds difference is 0.05 (95% CI 0.02 to "
              "0.08): at most 0.1", statistic=0.05, ci=(0.02, 0.08), threshold={"max": 0.1},
              details={"metric": "equalized_odds_difference", "feature": "Marital", "worst_group": worst,
                       "best_group": best}),
        Check("demographic_parity_ratio[age_band]", "pass", "demographic parity ratio is 0.86 (95% CI 0.81 to "
              "0.91): at least 0.8", statistic=0.86, ci=(0.81, 0.91), threshold={"min": 0.8},
              details={"metric": "demographic_parity_ratio", "feature": "age_band", "worst_group": "0-25",
                       "best_group": "25-40"}),
    ]
    reason = f"demographic parity ratio for Marital is 0.61 (95% CI 0.52 to 0.70): below 0.8 ('{worst}')"
    return GateResult("fairness", "fail", reason, confidence=0.95, n=sum(sizes.values()), groups=sizes,
                      checks=checks, details={"by_group": by_group, "outcome": "approves"}).to_json()


def drift_gate(features: int = 12, advisory: bool = True) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    checks = []
    for i in range(features):
        moved = i % 4 == 1
        if i % 3 == 2:
            labels = ["owner", "rent", "parents", "other", "private"]
            reference = rng.integers(50, 400, len(labels))
            current = reference[::-1] if moved else reference + rng.integers(0, 20, len(labels))
            details = {"kind": "categorical", "test": "chi2", "drifted": moved,
                       "category_counts": {"labels": labels, "reference": reference.tolist(),
                                           "current": current.tolist()}}
        else:
            edges = np.linspace(0, 100, 21)
            reference = np.histogram(rng.normal(50, 15, 2000), edges)[0]
            current = np.histogram(rng.normal(60 if moved else 50, 15, 800), edges)[0]
            details = {"kind": "numeric", "test": "ks", "drifted": moved, "histogram": {
                "edges": edges.tolist(), "reference": reference.tolist(), "current": current.tolist()}}
        p = 1e-6 if moved else 0.4 + 0.01 * i
        checks.append(Check(f"feature_{i:02d}", "fail" if moved else "pass",
                            f"{'changed' if moved else 'no evidence of change'} (adjusted p = {p:.2g})",
                            statistic=0.21 if moved else 0.03, p_value=p, n=2800, details=details))
    drifted = sum(c.status == "fail" for c in checks)
    return GateResult("drift", "fail" if drifted else "pass", f"{drifted} of {features} features drifted "
                      "(FDR 0.05): above the 30% share", advisory=advisory, alpha=0.05, checks=checks,
                      details={"max_drifted_share": 0.2}).to_json()


def credit_report(**fairness: Any) -> dict[str, Any]:
    gates = [GateResult("data_contract", "pass", "all 14 columns match the contract").to_json(),
             performance_gate(), fairness_gate(**fairness), drift_gate()]
    return gates_report("credit-risk", gates, {"policies": ["finance-governance"]})


def plots_data() -> dict[str, list[dict[str, float]]]:
    roc = [{"fpr": float(x), "tpr": float(x ** 0.4)} for x in np.linspace(0, 1, 50)]
    calibration = [{"predicted": float(x), "observed": float(min(1, x * 1.1))} for x in np.linspace(0.05, 0.95, 10)]
    return {"roc": roc, "calibration": calibration}


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def make_repo(root: Path) -> Path:
    """reports/ of two pipelines as the gate and evaluate stages leave them."""
    write_json(root / "reports/credit-risk/gates.json", credit_report())
    for name, points in plots_data().items():
        write_json(root / f"reports/credit-risk/plots/{name}.json", points)
    write_json(root / "reports/credit-risk/metrics.json", {"roc_auc": 0.83, "brier": 0.145})
    passing = gates_report("arrivals-us", [GateResult("performance", "pass", "MASE is 0.7 (90% CI 0.6 to 0.8): "
                                                      "at most 1").to_json()], {"policies": ["forecasting"]})
    write_json(root / "reports/arrivals-us/gates.json", passing)
    write_json(root / "reports/arrivals-us/plots/forecast.json",
               [{"time": f"2019-{m:02d}", "actual": 100.0 + m, "forecast": 99.0 + m} for m in range(1, 13)])
    return root


def typed(report: dict[str, Any]) -> GatesReport:
    """A report as the reporters read it (load's, after the schema check)."""
    return GatesReport.from_json(report)


VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                  "wbr"})  # HTML elements that have no end tag


def to_html(text: str) -> str:
    """GitHub-like rendering: CommonMark with tables, raw HTML passed through as GitHub does."""
    return str(MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text))


class Page(HTMLParser):
    """The tags, URLs and text of a page; every tag must close the one it opened."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.open: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "action", "srcset")]
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else ''}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Page:
    found = Page()
    found.feed(page)
    found.close()
    assert found.open == [], found.open
    return found
