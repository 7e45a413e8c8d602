"""What a report says in plain words: the verdict as a headline, and per gate one sentence a
business owner can read (its most serious finding, and how many more there are). The statistics
are the formats' job (markdown.py, html.py); the sentences here are unescaped.

What the sentences read, beyond the fields every gate has (see spec/schemas/gates.json); all of it
is optional, and a report without it falls back to the gate's reason (figures.py picks what the
formats draw from the same details):

fairness gate
  details.by_group: [{"feature", "group", "metric", "value", "ci": [low, high] | null, "n",
      "included" (false: too few rows, left out of the disparities)}]: one row per group of a
      sensitive feature (or an intersection, feature "region & age_band", group "north & [0, 40)")
      and per-group rate ("selection_rate", "true_positive_rate", "false_positive_rate"): drawn as
      bars with CI error bars.
  details.positive: what a positive prediction means, e.g. "Status = good"; or details.outcome: what
      it does to a person, as a verb phrase that takes the group as object, e.g. "approves".
  checks: one per disparity metric and feature, statistic = the disparity, ci, threshold = the policy
      bound, details = {"metric": "demographic_parity_ratio", "feature", "lowest_group",
      "highest_group" (labels "feature=value", as in the gate's `groups`), "lowest_rate",
      "highest_rate", "rate"} (or "worst_group"/"best_group" as bare values); and one per feature
      named "<feature>: groups" with details.insufficient [{"group", "n"}] and min_group_size.
drift gate
  details.max_drifted_share: the policy's dataset-level share rule.
  checks: one per feature (name = column) with details.kind "numeric" | "categorical", details.test
      ("ks", "chi2", ...), details.drifted (bool; else warn/fail counts as drifted), and for the plots
      one of (counts or shares; a dozen to a few dozen points is plenty):
        "histogram": {"edges": [k+1 numbers], "reference": [k counts], "current": [k counts]}
        "ecdf": {"x": [m increasing numbers], "reference": [m shares of rows <= x], "current": [m]}
        "category_counts": {"labels": [k names], "reference": [k counts], "current": [k counts]}
      drawn as overlaid distributions and ECDFs (numeric) or side-by-side shares (categorical),
      drifted features first, else the few with the smallest p-values; the checks "multivariate"
      (statistic = the classifier's AUC) and "prediction" (details.mean_reference, mean_current)
      are said in words, and "prediction" may carry a histogram or ecdf too.
  details.adverse: {"outcome": the adverse outcome, e.g. "Status = bad", "confidence", "views": [{"name",
      "reference_group", "model" and "labels" (each {"adverse_rate_ratio" (highest over lowest),
      "adverse_rate_difference", "favourable_rate_ratio", "favourable_rate_difference",
      "highest_adverse_group", "lowest_adverse_group", "odds_ratio", "odds_ratio_ci",
      "odds_ratio_group"}), "groups": [{"group", "n", "model_adverse_rate", "labels_adverse_rate",
      "model_odds_ratio", "model_odds_ratio_ci", "labels_odds_ratio", "labels_odds_ratio_ci"}]}]}:
      the adverse outcome on the model's predictions beside the same on the labels (said by
      `adverse_sentences`, tabled by the formats).
compare gate
  details.against (stage), details.champion ({"version"} or null: none yet), details.same_model;
      checks with details {"metric", "challenger", "champion"} and threshold {"margin"}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelops_ci.gates.result import SEVERITY, Check, GateResult
from modelops_ci.gates.verdict import GatesReport
from modelops_ci.report.format import capitalised, clip, gate_title, num, plain_group

MAX_SENTENCE = 600
MAX_LISTED = 3


@dataclass(frozen=True)
class Finding:
    """What one gate found, in plain words (unescaped: each format escapes it)."""

    gate: str
    status: str
    advisory: bool
    text: str

    @property
    def blocks(self) -> bool:
        return not self.advisory and self.status in ("fail", "error")

    @property
    def title(self) -> str:
        return gate_title(self.gate)


def findings(report: GatesReport) -> list[Finding]:
    return [Finding(g.gate, g.status, g.advisory, clip(plain_gate(g), MAX_SENTENCE)) for g in report.gates]


def headline(report: GatesReport) -> str:
    """The verdict as a business owner reads it, e.g. `Not ready for production: ...`; a family's
    says how many of its series failed against how many its policy allows."""
    if report.family:
        return f"{verdict_title(report)}: {clip(report.reason, MAX_SENTENCE)}"
    found = findings(report)
    if not report.passed:
        blocking = [f for f in found if f.blocks]
        return f"Not ready for production: {blocking[0].text if blocking else clip(report.reason, MAX_SENTENCE)}"
    if not found:
        return "Ready for production: no gates are required for this pipeline, so nothing was checked"
    to_review = sum(f.status != "pass" for f in found)
    note = f" ({to_review} advisory finding{'s' if to_review > 1 else ''} to review)" if to_review else ""
    gates = "its one required gate" if len(found) == 1 else f"all {len(found)} required gates"
    return f"Ready for production: {gates} passed{note}"


def because(report: GatesReport) -> str:
    """The headline without its verdict, as a sentence: `The model approves ...`."""
    return capitalised(headline(report).split(": ", 1)[-1])


def verdict_title(report: GatesReport) -> str:
    return "Ready for production" if report.passed else "Not ready for production"


def plain_gate(gate: GateResult) -> str:
    """One sentence about what the gate found, without statistics jargon."""
    if gate.status == "error":
        return f"the {gate_title(gate.gate).lower()} check could not be run: {gate.reason}"
    phrase = _PHRASES.get(gate.gate, _generic)
    return phrase(gate)


def ordered_checks(gate: GateResult) -> list[Check]:
    """Worst first, otherwise as the gate listed them."""
    return sorted(gate.checks, key=lambda c: -SEVERITY[c.status])


def other_findings(gate: GateResult) -> list[str]:
    """The findings after the first, each in plain words (the gate's sentence counts them)."""
    if gate.status == "error" or gate.status == "pass":
        return []
    if gate.gate == "fairness":
        return _fairness_findings(gate)[1:]
    if gate.gate in ("data_contract", "compare") or gate.gate not in _PHRASES:
        return [c.reason for c in ordered_checks(gate) if c.status != "pass"][1:]
    return []


def _listed(sentences: list[str]) -> str:
    more = len(sentences) - MAX_LISTED
    return "; ".join(sentences[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def _and_more(sentence: str, more: int) -> str:
    """The most serious finding, and how many more the details hold."""
    return sentence + (f"; and {more} more finding{'s' if more > 1 else ''}" if more > 0 else "")


def _chosen(gate: GateResult) -> list[Check]:
    checks = ordered_checks(gate)
    return [c for c in checks if c.status != "pass"] or checks


def _generic(gate: GateResult) -> str:
    failing = [c for c in ordered_checks(gate) if c.status != "pass"]
    return _and_more(failing[0].reason, len(failing) - 1) if failing else gate.reason


# --- performance and compare ---------------------------------------------------------------------


def _performance(gate: GateResult) -> str:
    chosen = _chosen(gate)
    return _listed([_performance_sentence(c) for c in chosen]) if chosen else gate.reason


def _performance_sentence(check: Check) -> str:
    from modelops_ci.gates.performance import LABELS

    bound, stat = check.threshold or {}, check.statistic
    low, high = check.ci or (None, None)
    label = LABELS.get(check.name, check.name)
    if check.status == "error" or stat is None:
        return check.reason
    if "min" in bound:
        if check.status == "pass":
            return f"{label} is reliably at least {bound['min']:g} (measured {num(stat)})"
        return f"{label} may be below the required {bound['min']:g} (measured {num(stat)}, " \
               f"possibly as low as {num(low)})"
    if "max" in bound:
        if check.status == "pass":
            return f"{label} is reliably at most {bound['max']:g} (measured {num(stat)})"
        return f"{label} may be above the allowed {bound['max']:g} (measured {num(stat)}, " \
               f"possibly as high as {num(high)})"
    return check.reason


def _compare(gate: GateResult) -> str:
    details = gate.details
    against = str(details.get("against") or "production")
    if "champion" in details and details["champion"] is None:
        allowed = "the policy allows a first one" if gate.status == "pass" else \
            "the policy does not allow a first one"
        return f"there is no {against} model to compare with yet, and {allowed}"
    if details.get("same_model"):
        return f"this is the model already in {against}"
    champion = details.get("champion")
    version = f"{against} {champion['version']}" if isinstance(champion, dict) and champion.get("version") \
        else against
    chosen = _chosen(gate)
    if not chosen:
        return gate.reason
    return _and_more(_compare_sentence(chosen[0], version), len([c for c in chosen if c.status != "pass"]) - 1)


def _compare_sentence(check: Check, version: str) -> str:
    from modelops_ci.gates.performance import LABELS

    details, margin = check.details, (check.threshold or {}).get("margin")
    new, old = details.get("challenger"), details.get("champion")
    if check.name == "mcnemar" and check.status == "warn":
        return f"the new model is significantly less accurate than {version}"
    if check.status == "error" or not isinstance(new, int | float) or not isinstance(old, int | float) \
            or not isinstance(margin, int | float):
        return check.reason
    label = LABELS.get(str(details.get("metric")), str(details.get("metric")))
    verdict = "is not worse than" if check.status == "pass" else "may be worse than"
    return f"the new model's {label} ({num(new)}) {verdict} {version}'s ({num(old)}) by more than " \
           f"the allowed {margin:g}"


# --- fairness ------------------------------------------------------------------------------------


def _fairness(gate: GateResult) -> str:
    checks = ordered_checks(gate)
    if not checks:
        return gate.reason
    found = _fairness_findings(gate)
    if found:
        return _and_more(found[0], len(found) - 1)
    compared = [c for c in checks if not _sizes_check(c)]
    features = list(dict.fromkeys(str(c.details.get("feature") or "") for c in compared))
    across = f" across {', '.join(f for f in features if f)}" if any(features) else ""
    return f"no group is treated differently beyond the policy's limits ({len(compared)} comparisons{across})"


def _fairness_findings(gate: GateResult) -> list[str]:
    """Every check that did not pass in words, the most serious first (a disparity before a small group)."""
    outcome, positive = gate.details.get("outcome"), gate.details.get("positive")
    verb = str(outcome) if outcome else f"predicts “{positive}” for" if positive else \
        "predicts the positive outcome for"
    notable = sorted((c for c in ordered_checks(gate) if c.status != "pass"), key=_seriousness)
    return [group_sizes_sentence(c) if _sizes_check(c) else fairness_sentence(c, verb, positive) for c in notable]


def _seriousness(check: Check) -> tuple[int, bool, bool]:
    """Worst status first; then a disparity beyond the policy on its estimate; small groups last."""
    stat = check.statistic
    meets = stat is not None and _meets(check.threshold or {}, float(stat))
    return -SEVERITY[check.status], _sizes_check(check), meets


def _sizes_check(check: Check) -> bool:
    return check.name.endswith(": groups")


def group_sizes_sentence(check: Check) -> str:
    """e.g. `3 Marital groups (divorced, separated, widow) have fewer than 50 people in the hold-out ...`."""
    small = check.details.get("insufficient")
    if check.status == "error" or not isinstance(small, list) or not small:
        return check.reason
    feature = check.name[: -len(": groups")]
    names = [plain_group(bare_group(str(g.get("group", "")), feature)) for g in small if isinstance(g, dict)]
    listed = ", ".join(names[:MAX_LISTED]) + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")
    size = check.details.get("min_group_size")
    fewer = f"fewer than {size} people" if isinstance(size, int) else "too few people"
    count = f"{len(names)} {feature} group{'s' if len(names) > 1 else ''}"
    return f"{count} ({listed}) {'have' if len(names) > 1 else 'has'} {fewer} in the hold-out: too few to judge, " \
           f"so {'they are' if len(names) > 1 else 'it is'} left out of the comparison"


def fairness_sentence(check: Check, outcome: str, positive: Any = None) -> str:
    """e.g. `the model approves “single” (Marital) at 61% of the rate for “married” (policy: at least 80%)`."""
    details = check.details
    metric = str(details.get("metric") or check.name)
    feature = details.get("feature")
    worst, best = _culprits(details, str(feature or ""))
    stat = check.statistic
    if worst is None or best is None or stat is None or check.status == "error":
        return check.reason
    w, b = f"“{worst}”" + (f" ({feature})" if feature else ""), f"“{best}”"
    ratio = metric.endswith("_ratio")
    value = _ratio_or_points(ratio)
    rates = details.get("lowest_rate"), details.get("highest_rate")
    apart = all(isinstance(r, int | float) for r in rates) and not ratio
    if worst == best:  # every compared group has the same rate
        text = f"the {feature + ' ' if feature else ''}groups compared have equal rates on this hold-out"
    elif metric.startswith("demographic_parity") and ratio:
        text = f"the model {outcome} {w} at {value(stat)} of the rate for {b}"
    elif metric.startswith("demographic_parity") and apart:
        text = f"the model {outcome} {w} {rates[0]:.0%} of the time and {b} {rates[1]:.0%}, {value(stat)} apart"
    elif metric.startswith("demographic_parity"):
        text = f"the model {outcome} {w} and {b} at rates {value(stat)} apart"
    elif metric.startswith(("equal_opportunity", "equalized_odds")):
        text = _error_rates_sentence(metric, details, positive, w, b, value, float(stat))
    else:
        text = f"{metric.replace('_', ' ')} between {w} and {b} is {num(stat)}"
    bound = check.threshold or {}
    if check.status == "warn":
        side = "within" if _meets(bound, float(stat)) else "outside"
        return (f"{text}{_policy(bound, value)}: {side} the policy on the estimate, but the data cannot "
                "confirm it (flagged for review)")
    return text + _caveat(check, value) + _policy(bound, value)


def _error_rates_sentence(metric: str, details: dict[str, Any], positive: Any, w: str, b: str,
                          value: Callable[[float], str], stat: float) -> str:
    ratio = metric.endswith("_ratio")
    rate = details.get("rate") or ("true_positive_rate" if metric.startswith("equal_opportunity") else None)
    rates = details.get("lowest_rate"), details.get("highest_rate")
    if rate in ("true_positive_rate", "false_positive_rate") and positive and all(
            isinstance(r, int | float) for r in rates):
        among = f"among people whose actual outcome was {'' if rate == 'true_positive_rate' else 'not '}“{positive}”"
        does = "predicts it" if rate == "true_positive_rate" else "still predicts it"
        if ratio:
            return f"{among}, the model {does} for {w} at {value(stat)} of the rate for {b}"
        return f"{among}, the model {does} for {w} {rates[0]:.0%} of the time and for {b} {rates[1]:.0%}, " \
               f"{value(stat)} apart"
    if metric.startswith("equal_opportunity"):
        return (f"among truly positive cases, the model finds {w} at {value(stat)} of the rate for {b}" if ratio
                else f"among truly positive cases, the model finds {w} and {b} at rates {value(stat)} apart")
    return (f"the model's hit or false-alarm rate for {w} is only {value(stat)} of that for {b}" if ratio
            else f"the model's hit or false-alarm rates for {w} and {b} differ by {value(stat)}")


def _culprits(details: dict[str, Any], feature: str) -> tuple[str | None, str | None]:
    """The groups with the lowest and highest rate, as plain values."""
    if details.get("worst_group") is not None and details.get("best_group") is not None:
        return plain_group(str(details["worst_group"])), plain_group(str(details["best_group"]))
    low, high = details.get("lowest_group"), details.get("highest_group")
    if low is None or high is None:
        return None, None
    return plain_group(bare_group(str(low), feature)), plain_group(bare_group(str(high), feature))


def bare_group(label: str, feature: str) -> str:
    """`age_band=[0, 30)` -> `[0, 30)`; an intersection's `a=x & b=y` -> `x & y`."""
    parts = feature.split(" & ") if feature else []
    values = label.split(" & ")
    if parts and len(values) == len(parts) and all(v.startswith(f"{p}=") for p, v in zip(parts, values, strict=True)):
        return " & ".join(v[len(p) + 1:] for p, v in zip(parts, values, strict=True))
    return label


def _meets(bound: dict[str, float], value: float) -> bool:
    return ("min" not in bound or value >= bound["min"]) and ("max" not in bound or value <= bound["max"])


def _ratio_or_points(ratio: bool) -> Callable[[float], str]:
    if ratio:
        return lambda x: f"{x:.0%}"
    return lambda x: f"{abs(x) * 100:.2g} percentage points"


def _caveat(check: Check, value: Callable[[float], str]) -> str:
    """A failed check whose point estimate looks fine failed on its CI: say how bad it may be."""
    bound, stat = check.threshold or {}, check.statistic
    low, high = check.ci or (None, None)
    if check.status == "pass" or stat is None:
        return ""
    if "min" in bound and stat >= bound["min"] and low is not None:
        return f", possibly as low as {value(low)}"
    if "max" in bound and stat <= bound["max"] and high is not None:
        return f", possibly as much as {value(high)}"
    return ""


def _policy(bound: dict[str, float], value: Callable[[float], str]) -> str:
    parts = [f"at least {value(bound['min'])}" if "min" in bound else "",
             f"at most {value(bound['max'])}" if "max" in bound else ""]
    words = " and ".join(p for p in parts if p)
    return f" (policy: {words})" if words else ""


def adverse_views(gate: GateResult) -> tuple[str, list[dict[str, Any]]]:
    """The fairness gate's adverse outcome and its views (see details.adverse above), or ("", [])."""
    adverse = gate.details.get("adverse")
    if not isinstance(adverse, dict) or not isinstance(adverse.get("views"), list):
        return "", []
    views = [v for v in adverse["views"] if isinstance(v, dict) and isinstance(v.get("model"), dict)
             and isinstance(v.get("labels"), dict)]
    return str(adverse.get("outcome") or "the adverse outcome"), views


def adverse_sentences(gate: GateResult) -> list[str]:
    """Per view, e.g. `Marital: the model gives “Status = bad” to “separated” 2.1 times as often as to
    “married” (48% against 23%), where the data itself has 1.8 times: the model widens the gap`."""
    outcome, views = adverse_views(gate)
    return [sentence for view in views if (sentence := _adverse_sentence(view, outcome))]


def _adverse_sentence(view: dict[str, Any], outcome: str) -> str:
    model, labels = view["model"], view["labels"]
    feature = str(view.get("name") or "")
    high, low = model.get("highest_adverse_group"), model.get("lowest_adverse_group")
    gap, data_gap = model.get("adverse_rate_difference"), labels.get("adverse_rate_difference")
    if not isinstance(gap, int | float) or not isinstance(data_gap, int | float) or high is None or low is None:
        return ""
    worst, best = plain_group(bare_group(str(high), feature)), plain_group(bare_group(str(low), feature))
    rates = {str(row.get("group")): row.get("model_adverse_rate") for row in view.get("groups") or []}
    ratio = model.get("adverse_rate_ratio")
    often = f"{ratio:.2f} times as often as" if isinstance(ratio, int | float) else "more often than"
    said = f"{feature}: the model gives “{outcome}” to “{worst}” {often} to “{best}”"
    if isinstance(rates.get(str(high)), int | float) and isinstance(rates.get(str(low)), int | float):
        said += f" ({rates[str(high)]:.0%} against {rates[str(low)]:.0%})"
    return f"{said}; {_widens(float(gap), float(data_gap))}"


def _widens(gap: float, data_gap: float) -> str:
    """The model's gap in adverse rates against the one already in the labels."""
    points = f"{gap * 100:.1f} percentage points apart, against {data_gap * 100:.1f} in the data itself"
    if abs(gap - data_gap) < 0.01:
        return f"{points}: the model keeps the gap about as it is"
    return f"{points}: the model {'widens' if gap > data_gap else 'narrows'} the gap"


# --- drift ---------------------------------------------------------------------------------------


def _drift(gate: GateResult) -> str:
    checks = ordered_checks(gate)
    features = [c for c in checks if c.details.get("kind") in ("numeric", "categorical")]
    others = [c for c in checks if c not in features and c.status != "pass" and not _share_rule(c)]
    changed = [c.name for c in sorted((c for c in features if drifted(c)), key=p_value)]
    share = gate.details.get("max_drifted_share")
    if features and changed:
        names = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        text = (f"{len(changed)} of {len(features)} input features changed significantly since the reference "
                f"data ({names})")
        if isinstance(share, int | float):
            side = "more than" if len(changed) / len(features) > share else "within what"
            text += f", {side} the policy allows (at most {share:.0%} of them)"
    elif features:
        text = f"none of the {len(features)} input features changed significantly since the reference data"
    else:
        return _generic(gate)
    return "; ".join([text, *(_drift_other(c) for c in others)])


def _drift_other(check: Check) -> str:
    """The classifier test and prediction drift in words."""
    stat = check.statistic
    if check.status == "error":
        return check.reason
    if check.name == "multivariate" and stat is not None:
        return f"a model can tell the new rows from the reference rows (AUC {stat:.2f}, where 0.5 is chance), " \
               "so the data changed as a whole"
    before, after = check.details.get("mean_reference"), check.details.get("mean_current")
    if check.name == "prediction" and isinstance(before, int | float) and isinstance(after, int | float):
        return f"the model's scores shifted (average {num(before)} before, {num(after)} now)"
    return check.reason


def p_value(check: Check) -> float:
    """The check's p-value, 1 when it has none (so it sorts last)."""
    return float(check.p_value) if check.p_value is not None else 1.0


def _share_rule(check: Check) -> bool:
    """The dataset-level check of the share of drifted features: the sentence above says it."""
    return check.name == "dataset" or "max_drifted_share" in (check.threshold or {})


def drifted(check: Check) -> bool:
    flag = check.details.get("drifted")
    return bool(flag) if isinstance(flag, bool) else check.status in ("warn", "fail")


_PHRASES: dict[str, Callable[[GateResult], str]] = {
    "performance": _performance, "compare": _compare, "fairness": _fairness, "drift": _drift,
}
