"""Fairness: whether the model treats groups of people alike, by each sensitive feature and by their
intersection, with fairlearn's MetricFrame for the per-group rates and a seeded bootstrap CI on each
disparity. A disparity passes only when the CI's conservative bound clears the policy's threshold.

Decisions:
- Views. Each sensitive feature is one view of the data. The intersection of all of them (e.g.
  region x age band) is one more view when the policy sets `intersectional: true`, and by default
  whenever two or more features are declared (`intersectional: false` turns it off). Being unable to
  assess a view fails closed (`error`) for a feature and for an intersection the policy asks for; a
  default intersection whose groups are too small is only a `warn`. A disparity beyond the policy is
  a `fail` in any view.
- Small groups. A group with fewer than `min_group_size` rows (default 30) is "insufficient data":
  it stays in the per-group table with its counts and that status, the view's `groups` check names
  it (`warn`), and the disparities are over the other groups. With fewer than two groups left the
  view cannot be assessed. A missing value of a sensitive feature is a group of its own, "(missing)".
- Undefined is not zero. A group with no actual positives has no true positive rate (no actual
  negatives: no false positive rate), where fairlearn would report 0: the disparities built on that
  rate are `error` for the view, naming the group. A ratio whose groups all have a rate of 0 is 0/0.
- Disparities are fairlearn's `between_groups` ones; equalized odds takes the worse of TPR and FPR.
- Bootstrap: rows are cells keyed by (intersection group, y_true, y_pred), each view's groups are
  unions of those cells, so one multinomial draw gives every view's confusion counts. A resample in
  which a disparity is undefined (a group drew no positives) counts as the worst case (ratio 0,
  difference 1): it holds no evidence of fairness, and it keeps the CI conservative.
- The CI is the percentile one, as for performance. A gap between noisy group rates only widens when
  resampled, so with small groups the interval leans to the unfair side of the estimate (it may even
  exclude it): the side the decision is made on. With enough rows per group it brackets the estimate.
- For the report, each group's rates (those the policy's metrics compare) come with a Wilson interval
  (scipy's `binomtest`) in `details.by_group`: a picture of the groups, not a decision.
- Adverse outcomes, for a reviewer (figures in `details.adverse`, not decisions): per view, the
  adverse outcome's rate (a denial when the favourable outcome is an approval) by group, its ratio
  stated as lenders quote it (highest over lowest: "denied 2.1 times as often"; the inverse of
  fairlearn's min/max ratio of that rate) and its difference, beside the favourable rate's
  (fairlearn's demographic parity ratio and difference); each group's odds ratio of the adverse
  outcome against a reference group (the one the data itself treats best: the lowest adverse rate
  in the labels) with Woolf's log-odds CI (Haldane-Anscombe's +0.5 in every cell when one is empty;
  statsmodels' shift_zeros would replace only the empty cell); and all of it measured twice, on the
  model's predictions and on the labels (the disparity already in the data), so the report can say
  whether the model widens or narrows it. Only groups with at least `min_group_size` rows count.
- The gate's reason is its most serious finding, briefly (a disparity before a small-group note), and
  how many more there are; each check keeps its full reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.gates import bootstrap
from modelops_ci.gates.result import SEVERITY, CannotEvaluate, Check, GateResult, Status, worst

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.context import GateContext

RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_GROUP_SIZE = 30
DEFAULT_METRICS: dict[str, dict[str, float]] = {
    "demographic_parity_ratio": {"min": 0.8},
    "equalized_odds_difference": {"max": 0.1},
}
MISSING = "(missing)"
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")
RATES_OF = {
    "demographic_parity": ("selection_rate",),
    "equal_opportunity": ("true_positive_rate",),
    "equalized_odds": ("true_positive_rate", "false_positive_rate"),
}
METRICS = tuple(f"{family}_{kind}" for family in RATES_OF for kind in ("ratio", "difference"))
WORST_CASE = {"ratio": 0.0, "difference": 1.0}
TP, FP, FN, TN = range(4)  # the last axis of confusion counts
LISTED = 5  # groups named in a reason; the details list them all


@dataclass(frozen=True)
class Sample:
    """Hold-out labels and predictions (0/1), and each row's group in every sensitive feature."""

    y_true: np.ndarray
    y_pred: np.ndarray
    features: dict[str, np.ndarray]
    outcome: str = "positive"  # what a positive is, for reasons: e.g. "default = yes"
    adverse: str = "negative"  # what the other outcome is: e.g. "default = no"

    @property
    def n(self) -> int:
        return len(self.y_true)


@dataclass(frozen=True)
class View:
    """One way of splitting people into groups: one sensitive feature, or several intersected."""

    features: tuple[str, ...]
    required: bool = True

    @property
    def name(self) -> str:
        return " & ".join(self.features)


@dataclass
class ViewGroups:
    """A view's groups, their confusion counts and fairlearn's rates, and which are large enough."""

    view: View
    values: list[tuple[str, ...]]  # each group's value of each feature of the view
    counts: np.ndarray  # (G, 4): TP, FP, FN, TN per group
    rates: dict[str, np.ndarray]  # rate -> (G,), NaN where undefined
    accuracy: np.ndarray  # (G,)
    included: np.ndarray  # (G,) bool: at least min_group_size rows
    slot: np.ndarray  # (cells,): group * 4 + outcome, where each bootstrap cell's rows are counted

    def label(self, group: int) -> str:
        return " & ".join(f"{f}={v}" for f, v in zip(self.view.features, self.values[group], strict=True))

    def spoken(self, group: int) -> str:
        return " & ".join(f"{f} '{v}'" for f, v in zip(self.view.features, self.values[group], strict=True))

    def sizes(self) -> np.ndarray:
        sizes: np.ndarray = self.counts.sum(axis=1)
        return sizes


@dataclass(frozen=True)
class Settings:
    confidence: float
    min_group_size: int
    metrics: dict[str, dict[str, float]]
    intersectional: bool | None  # None: the default (on with two or more features, not required)
    defaults: bool = False  # the metrics are this gate's defaults, not the policy's
    inconclusive_warns: bool = False  # a CI straddling the threshold warns instead of failing


# -- input ---------------------------------------------------------------------------------------


def make_sample(y_true: Any, y_pred: Any, sensitive: Mapping[str, Any], outcome: str = "positive",
                adverse: str = "negative") -> Sample:
    """Check and hold the inputs; raises CannotEvaluate saying what is wrong with them."""
    y = _binary(y_true, "labels")
    p = _binary(y_pred, "predictions")
    if len(p) != len(y):
        raise CannotEvaluate(f"{len(p)} predictions for {len(y)} labels")
    if len(y) == 0:
        raise CannotEvaluate("the hold-out has no rows")
    if not sensitive:
        raise CannotEvaluate("no sensitive features are declared: list them under spec.data.sensitive")
    features = {str(name): _group_values(values) for name, values in sensitive.items()}
    for name, values in features.items():
        if len(values) != len(y):
            raise CannotEvaluate(f"sensitive feature '{name}' has {len(values)} values for {len(y)} rows")
    return Sample(y, p, features, outcome, adverse)


def _binary(values: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise CannotEvaluate(f"the {what} are not numbers (0 or 1)") from None
    bad = int(np.sum(~np.isfinite(array)))
    if bad:
        raise CannotEvaluate(f"{bad} of {len(array)} {what} are NaN or infinite")
    if not np.isin(array, (0, 1)).all():
        raise CannotEvaluate(f"the {what} must be 0 or 1")
    return array.astype(np.int64)


def _group_values(values: Any) -> np.ndarray:
    import pandas as pd

    column = pd.Series(np.asarray(values, dtype=object).reshape(-1), dtype=object)
    labels: np.ndarray = column.where(column.notna(), MISSING).astype(str).to_numpy(dtype=object)
    return labels


def read_settings(settings: Mapping[str, Any]) -> Settings:
    metrics = dict(settings.get("metrics") or {})
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise CannotEvaluate(f"unknown fairness metric(s) {', '.join(unknown)}: use {', '.join(METRICS)}")
    intersectional = settings.get("intersectional")
    return Settings(
        confidence=float(settings.get("confidence", DEFAULT_CONFIDENCE)),
        min_group_size=int(settings.get("min_group_size", DEFAULT_MIN_GROUP_SIZE)),
        metrics=metrics or DEFAULT_METRICS,
        intersectional=None if intersectional is None else bool(intersectional),
        defaults=not metrics,
        inconclusive_warns=bool(settings.get("inconclusive_warns", False)),
    )


def plan_views(features: list[str], intersectional: bool | None) -> list[View]:
    """One view per feature, and the intersection when asked for or by default (two or more features)."""
    if intersectional and len(features) < 2:
        raise CannotEvaluate("an intersectional assessment needs at least two sensitive features; "
                             f"only {', '.join(features)} is declared")
    views = [View((name,)) for name in features]
    if len(features) >= 2 and intersectional is not False:
        views.append(View(tuple(features), required=bool(intersectional)))
    return views


# -- groups and rates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Population:
    """The sample as bootstrap cells keyed by (intersection group, y_true, y_pred): every statistic
    here is a function of each group's confusion counts, so the cells lose nothing."""

    features: tuple[str, ...]
    groups: list[tuple[str, ...]]  # each intersection group's value of every feature
    cells: bootstrap.Cells

    @property
    def cell_group(self) -> np.ndarray:
        group: np.ndarray = self.cells.means[:, 0].astype(np.int64)
        return group

    @property
    def cell_outcome(self) -> np.ndarray:
        """TP, FP, FN or TN: each cell's place on the last axis of confusion counts."""
        y, p = self.cells.means[:, 1] == 1, self.cells.means[:, 2] == 1
        outcome: np.ndarray = np.select([y & p, ~y & p, y & ~p], [TP, FP, FN], TN)
        return outcome


def population(sample: Sample) -> Population:
    import pandas as pd

    factorized = [pd.factorize(values, sort=True) for values in sample.features.values()]
    codes = np.column_stack([np.asarray(code) for code, _ in factorized])
    group_codes, row_group = np.unique(codes, axis=0, return_inverse=True)
    groups = [tuple(str(factorized[j][1][c]) for j, c in enumerate(row)) for row in group_codes]
    keys = np.column_stack([row_group.reshape(-1), sample.y_true, sample.y_pred])
    # the keys are their cells' (exact, integer) means: each cell then knows its group and outcome
    return Population(tuple(sample.features), groups, bootstrap.make_cells(keys.astype(float), keys))


def view_groups(people: Population, view: View, min_group_size: int) -> ViewGroups:
    columns = [people.features.index(f) for f in view.features]
    values, of_group = np.unique([[g[c] for c in columns] for g in people.groups], axis=0, return_inverse=True)
    cell_group = of_group.reshape(-1)[people.cell_group]
    cells = people.cells
    slot = cell_group * 4 + people.cell_outcome
    counts = np.bincount(slot, weights=cells.counts, minlength=len(values) * 4).reshape(-1, 4)
    groups = [tuple(str(v) for v in row) for row in values]
    rates, accuracy = by_group(people, view, groups, cell_group, counts)
    return ViewGroups(view, groups, counts, rates, accuracy, counts.sum(axis=1) >= min_group_size, slot)


def by_group(people: Population, view: View, groups: list[tuple[str, ...]], cell_group: np.ndarray,
             counts: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """fairlearn's per-group selection rate, TPR, FPR and accuracy, in the order of `groups`; a rate
    whose denominator is 0 is NaN (fairlearn reports 0).

    MetricFrame runs on the cells, each weighted by its rows: the same rates as on the rows (tests
    check it), in milliseconds rather than seconds on 100k rows."""
    import pandas as pd
    from fairlearn.metrics import (  # type: ignore[import-untyped]
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    metrics = {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
               "false_positive_rate": false_positive_rate, "accuracy": accuracy_score}
    weight = {"sample_weight": people.cells.counts}
    frame = MetricFrame(
        metrics=metrics, y_true=people.cells.means[:, 1], y_pred=people.cells.means[:, 2],
        sensitive_features=pd.DataFrame({f: [groups[g][i] for g in cell_group] for i, f in enumerate(view.features)}),
        sample_params={name: weight for name in metrics},
    )
    # by_group lists every combination of values, the empty ones as NaN: look up the real groups only
    table = frame.by_group.loc[[g if len(g) > 1 else g[0] for g in groups]]
    rates = {name: table[name].to_numpy(dtype=float) for name in RATES}
    rates["true_positive_rate"] = np.where(counts[:, TP] + counts[:, FN] > 0, rates["true_positive_rate"], np.nan)
    rates["false_positive_rate"] = np.where(counts[:, FP] + counts[:, TN] > 0, rates["false_positive_rate"], np.nan)
    return rates, table["accuracy"].to_numpy(dtype=float)


def rates_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Selection rate, TPR and FPR from confusion counts (... x G x 4); NaN where undefined."""
    tp, fp, fn, tn = (counts[..., i] for i in (TP, FP, FN, TN))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"selection_rate": (tp + fp) / (tp + fp + fn + tn),
                "true_positive_rate": tp / (tp + fn), "false_positive_rate": fp / (fp + tn)}


def disparity(metric: str, rates: Mapping[str, np.ndarray]) -> np.ndarray:
    """fairlearn's between-groups disparity over the last axis (groups): min/max or max - min of the
    metric's rate; for equalized odds the worse of TPR and FPR. NaN where a rate is undefined."""
    family, kind = metric.rsplit("_", 1)
    parts = [_compare(rates[rate], kind) for rate in RATES_OF[family]]
    combined: np.ndarray = np.min(parts, axis=0) if kind == "ratio" else np.max(parts, axis=0)
    return combined


def _compare(rate: np.ndarray, kind: str) -> np.ndarray:
    high, low = rate.max(axis=-1), rate.min(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = low / high if kind == "ratio" else high - low
    return result


def bootstrap_disparity(groups: ViewGroups, metric: str, cells: bootstrap.Cells, resamples: int,
                        seed: int) -> tuple[np.ndarray, int]:
    """The disparity in each resample (undefined ones at their worst case), and how many were undefined."""
    kind = metric.rsplit("_", 1)[1]
    position = np.cumsum(groups.included) - 1  # of each group among the included ones
    group, outcome = np.divmod(groups.slot, 4)
    slot = np.where(groups.included[group], position[group] * 4 + outcome, -1)
    add = slot_sum(slot, int(groups.included.sum()) * 4)

    def statistic(w: np.ndarray, _: bootstrap.Cells) -> np.ndarray:
        return disparity(metric, rates_from_counts(add(w).reshape(len(w), -1, 4)))

    values = bootstrap.distribution(cells, statistic, resamples, seed)
    undefined = ~np.isfinite(values)
    return np.where(undefined, WORST_CASE[kind], values), int(undefined.sum())


def slot_sum(slot: np.ndarray, slots: int) -> Callable[[np.ndarray], np.ndarray]:
    """w (b x cells) -> (b x slots): each cell's weight added into its slot (slot -1: left out).
    A sum over sorted columns rather than a product with a (cells x slots) 0/1 matrix, which an
    intersection of many groups would make too large."""
    cells = np.flatnonzero(slot >= 0)
    cells = cells[np.argsort(slot[cells], kind="stable")]
    ordered = slot[cells]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(cells) else np.zeros(0, np.int64)

    def add(w: np.ndarray) -> np.ndarray:
        out = np.zeros((len(w), slots))
        if len(cells):
            out[:, ordered[starts]] = np.add.reduceat(w[:, cells], starts, axis=1)
        return out

    return add


# -- checks --------------------------------------------------------------------------------------


def groups_check(groups: ViewGroups, min_group_size: int) -> Check:
    """Whether the view has two or more groups large enough to compare, naming the ones left out."""
    view, sizes = groups.view, groups.sizes()
    small = [i for i in range(len(sizes)) if not groups.included[i]]
    listed = ", ".join(f"{groups.spoken(i)} ({_rows(int(sizes[i]))})" for i in small[:LISTED])
    listed += f" and {len(small) - LISTED} more" if len(small) > LISTED else ""
    details = {"insufficient": [{"group": groups.label(i), "n": int(sizes[i])} for i in small],
               "min_group_size": min_group_size}
    kept = int(groups.included.sum())
    status: Status
    if len(sizes) < 2:
        status = "error"
        reason = (f"{view.name}: every row is in one group ({groups.spoken(0)}), so there is no other group "
                  "to compare it with; check that the hold-out holds every group")
    elif kept < 2:
        status = "error"
        reason = (f"{view.name}: only {kept} of {len(sizes)} groups has at least {min_group_size} rows, so "
                  f"fairness between groups cannot be assessed; insufficient data: {listed}. Collect more "
                  "data, merge small groups, or lower min_group_size in the policy")
    elif small:
        status = "warn"
        reason = (f"{view.name}: left out as insufficient data (fewer than {min_group_size} rows): {listed}; "
                  f"the disparities compare the other {kept} groups")
    else:
        status = "pass"
        reason = f"{view.name}: {len(sizes)} groups, each with at least {min_group_size} rows"
    if status == "error" and not view.required:
        status = "warn"
        reason += " (the intersectional view is not required by the policy, so this only warns)"
    return Check(f"{view.name}: groups", status, reason, n=int(sizes.sum()), details=details)


def _rows(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"


LABELS = {m: m.replace("_", " ") for m in METRICS}


def rate_words(rate: str, outcome: str) -> str:
    return {"selection_rate": f"the rate of predicted '{outcome}'",
            "true_positive_rate": f"the share of actual '{outcome}' cases predicted as such (true positive rate)",
            "false_positive_rate": f"the share of other cases wrongly predicted '{outcome}' (false positive rate)",
            }[rate]


def undefined_reason(groups: ViewGroups, metric: str, outcome: str) -> str | None:
    """Why the metric has no value on this view (a rate with a zero denominator), or None."""
    family, kind = metric.rsplit("_", 1)
    included = np.flatnonzero(groups.included)
    for rate in RATES_OF[family]:
        values = groups.rates[rate][included]
        empty = [groups.spoken(int(i)) for i, v in zip(included, values, strict=True) if not np.isfinite(v)]
        if empty:
            lacking = f"actual '{outcome}' cases" if rate == "true_positive_rate" else f"actual non-'{outcome}' cases"
            return (f"{rate.replace('_', ' ')} is undefined for {', '.join(empty)}: no {lacking} in the hold-out "
                    "(it is not 0); collect more data for the group or require demographic parity only")
        if kind == "ratio" and np.max(values) == 0:
            return f"{rate.replace('_', ' ')} is 0 in every group, so their ratio is undefined (0/0)"
    return None


def disparity_check(groups: ViewGroups, metric: str, bound: dict[str, float], cells: bootstrap.Cells,
                    settings: Settings, outcome: str, resamples: int, seed: int) -> Check:
    """One disparity on one view, decided on the bootstrap CI's conservative bound."""
    name, label = f"{groups.view.name}: {metric}", f"{groups.view.name}: {LABELS[metric]}"
    included = np.flatnonzero(groups.included)
    n = int(groups.sizes()[included].sum())
    why = undefined_reason(groups, metric, outcome)
    if why:
        return Check(name, "error", f"{label} cannot be computed: {why}", threshold=bound, n=n)
    rates = {rate: values[included] for rate, values in groups.rates.items()}
    estimate = float(disparity(metric, rates))
    values, undefined = bootstrap_disparity(groups, metric, cells, resamples, seed)
    low, high = bootstrap.percentile_ci(values, settings.confidence)
    rate, lowest, highest = _culprits(metric, rates)
    details = {"metric": metric, "feature": groups.view.name, "rate": rate,
               "lowest_group": groups.label(int(included[lowest])),
               "highest_group": groups.label(int(included[highest])),
               "lowest_rate": float(rates[rate][lowest]), "highest_rate": float(rates[rate][highest]),
               "undefined_resamples": undefined, "groups": [groups.label(int(i)) for i in included]}
    ci_text = f"{settings.confidence:.0%} CI {low:.2f} to {high:.2f}"
    if _within(bound, low, high):
        reason = f"{label} is {estimate:.2f} ({ci_text}), within the policy ({_terms(bound)})"
        return Check(name, "pass", reason, statistic=estimate, ci=(low, high), threshold=bound, n=n,
                     details=details)
    words = rate_words(rate, outcome)
    low_name, high_name = groups.spoken(int(included[lowest])), groups.spoken(int(included[highest]))
    if metric.endswith("ratio"):
        said = f"{words} for {low_name} is {estimate:.2f} times that for {high_name} ({ci_text})"
    else:
        said = (f"{words} is {rates[rate][lowest]:.2f} for {low_name} and {rates[rate][highest]:.2f} for "
                f"{high_name}, a gap of {estimate:.2f} ({ci_text})")
    verb = "requires" if "min" in bound else "allows"
    unsure = "; the estimate meets it, but there are too few rows to be sure" if _within(
        bound, estimate, estimate) else ""
    # Inconclusive: part of the CI meets the policy. As in adverse-impact practice, a policy may
    # block only disparities that are significant and send inconclusive ones to review.
    inconclusive = _overlaps(bound, low, high)
    status: Status = "warn" if inconclusive and settings.inconclusive_warns else "fail"
    review = "; not significant either way: flagged for review" if status == "warn" else ""
    reason = f"{groups.view.name}: {said}; policy {verb} {_terms(bound)}{unsure}{review}"
    return Check(name, status, reason, statistic=estimate, ci=(low, high), threshold=bound, n=n, details=details)


def _overlaps(bound: dict[str, float], low: float, high: float) -> bool:
    """Whether some of [low, high] lies within the bound."""
    return ("min" not in bound or high >= bound["min"]) and ("max" not in bound or low <= bound["max"])


def _within(bound: dict[str, float], low: float, high: float) -> bool:
    """Whether [low, high] clears the bound: the lower end for a `min`, the upper for a `max`."""
    return ("min" not in bound or low >= bound["min"]) and ("max" not in bound or high <= bound["max"])


def _culprits(metric: str, rates: Mapping[str, np.ndarray]) -> tuple[str, int, int]:
    """The rate behind the disparity (for equalized odds the worse one), its lowest and highest group."""
    family, kind = metric.rsplit("_", 1)
    candidates = RATES_OF[family]
    scores = [float(_compare(rates[r], kind)) for r in candidates]
    rate = candidates[int(np.argmin(scores) if kind == "ratio" else np.argmax(scores))]
    return rate, int(np.argmin(rates[rate])), int(np.argmax(rates[rate]))


def _terms(bound: dict[str, float]) -> str:
    parts = [f"at least {bound['min']:g}"] if "min" in bound else []
    parts += [f"at most {bound['max']:g}"] if "max" in bound else []
    return " and ".join(parts)


# -- the gate ------------------------------------------------------------------------------------


def assess(sample: Sample, settings: Mapping[str, Any], seed: int = 0, resamples: int = RESAMPLES) -> GateResult:
    """The fairness gate on a sample: per-group table, group-size checks, one check per disparity and view."""
    try:
        chosen = read_settings(settings)
        views = plan_views(list(sample.features), chosen.intersectional)
    except CannotEvaluate as exc:
        raise exc.within("cannot assess fairness", n=sample.n) from None
    people = population(sample)
    cells = people.cells
    every = [view_groups(people, v, chosen.min_group_size) for v in views]
    checks: list[Check] = []
    for groups in every:
        size_check = groups_check(groups, chosen.min_group_size)
        checks.append(size_check)
        if groups.included.sum() >= 2:
            checks += [disparity_check(groups, metric, bound, cells, chosen, sample.outcome, resamples, seed)
                       for metric, bound in sorted(chosen.metrics.items())]
    status = worst([c.status for c in checks])
    return GateResult("fairness", status, _gate_reason(checks, chosen, every), confidence=chosen.confidence,
                      n=sample.n, groups=_group_counts(every), checks=checks,
                      details={**_details(every, chosen, resamples, seed, sample.outcome),
                               "adverse": adverse_figures(every, chosen.confidence, sample.adverse)})


def _gate_reason(checks: list[Check], chosen: Settings, every: list[ViewGroups]) -> str:
    """The most serious finding in brief (errors in full: they say what to do), and how many more: a
    disparity before a small-group note, one beyond the policy on its estimate before one within it."""
    notable = sorted((c for c in checks if c.status != "pass"), key=lambda c: (
        -SEVERITY[c.status], c.name.endswith(": groups"),
        c.statistic is not None and _within(c.threshold or {}, c.statistic, c.statistic)))
    if notable:
        views = {g.view.name: g for g in every}
        more = len(notable) - 1
        return _brief(notable[0], chosen, views) + (f"; and {more} more (see the checks)" if more else "")
    terms = ", ".join(f"{LABELS[m]} {_terms(b)}" for m, b in sorted(chosen.metrics.items()))
    views_named = ", ".join(g.view.name for g in every)
    return f"no disparity beyond the policy across {views_named} ({terms}, at {chosen.confidence:.0%} confidence)"


def _brief(check: Check, chosen: Settings, views: dict[str, ViewGroups]) -> str:
    """A disparity's check in one short clause, e.g. `age_band: demographic parity ratio 0.82, '[0, 30)'
    vs '[50, 120)' (95% CI 0.76 to 0.87); policy: at least 0.8`; any other check's own reason."""
    details, bound = check.details, check.threshold or {}
    groups = views.get(str(details.get("feature")))
    if check.status == "error" or groups is None or check.statistic is None or check.ci is None:
        return check.reason
    value = {groups.label(i): " & ".join(groups.values[i]) for i in range(len(groups.values))}
    low, high = check.ci
    said = (f"{groups.view.name}: {LABELS[details['metric']]} {check.statistic:.2f}, "
            f"'{value[details['lowest_group']]}' vs '{value[details['highest_group']]}' "
            f"({chosen.confidence:.0%} CI {low:.2f} to {high:.2f}); policy: {_terms(bound)}")
    if check.status == "warn":
        return said + "; inconclusive: flagged for review"
    return said + ("; the estimate meets it, but too few rows to be sure" if _within(
        bound, check.statistic, check.statistic) else "")


def _group_counts(every: list[ViewGroups]) -> dict[str, int]:
    return {g.label(i): int(n) for g in every for i, n in enumerate(g.sizes())}


def _details(every: list[ViewGroups], chosen: Settings, resamples: int, seed: int, outcome: str) -> dict[str, Any]:
    return {
        "positive": outcome,
        "min_group_size": chosen.min_group_size,
        "metrics": chosen.metrics,
        "default_metrics": chosen.defaults,
        "intersectional": "required" if chosen.intersectional else (
            "off" if chosen.intersectional is False else "default"),
        "resamples": resamples,
        "seed": seed,
        "views": [{"name": g.view.name, "features": list(g.view.features), "required": g.view.required,
                   "groups": group_table(g)} for g in every],
        "by_group": group_rates(every, chosen.metrics, chosen.confidence),
    }


# -- adverse outcomes (figures for the report, not decisions) -------------------------------------

SOURCES = ("model", "labels")  # the predictions, and the outcomes the data records


def favourable_counts(counts: np.ndarray, source: str) -> np.ndarray:
    """Per group, the rows with the favourable outcome: predicted (model) or recorded (labels)."""
    favourable: np.ndarray = counts[:, TP] + (counts[:, FP] if source == "model" else counts[:, FN])
    return favourable


def odds_ratio(adverse: int, favourable: int, ref_adverse: int, ref_favourable: int,
               confidence: float) -> tuple[float, float, float]:
    """The odds ratio of the adverse outcome (a group against the reference) and Woolf's log-odds CI;
    with an empty cell every cell gets +0.5 (Haldane-Anscombe), so both stay finite."""
    from scipy import stats

    cells = np.array([adverse, favourable, ref_adverse, ref_favourable], dtype=float)
    if (cells == 0).any():
        cells += 0.5
    a, b, c, d = cells
    log_or = float(np.log(a * d / (b * c)))
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * float(np.sqrt((1 / cells).sum()))
    return float(np.exp(log_or)), float(np.exp(log_or - half)), float(np.exp(log_or + half))


def adverse_figures(every: list[ViewGroups], confidence: float, adverse: str) -> dict[str, Any]:
    """`details.adverse`: per view (with two or more groups large enough), the adverse outcome's
    disparities on the model's predictions and on the labels, and each group's odds ratio."""
    views = [_adverse_view(groups, confidence) for groups in every if groups.included.sum() >= 2]
    return {"outcome": adverse, "odds_ratio_ci": "woolf", "confidence": confidence, "views": views}


def _adverse_view(groups: ViewGroups, confidence: float) -> dict[str, Any]:
    included = np.flatnonzero(groups.included)
    counts = groups.counts[included].astype(int)
    sizes = counts.sum(axis=1)
    favourable = {source: favourable_counts(counts, source) for source in SOURCES}
    reference = int(np.argmax(favourable["labels"] / sizes))  # the lowest adverse rate in the data
    rows = []
    for i in range(len(included)):
        row: dict[str, Any] = {"group": groups.label(int(included[i])), "n": int(sizes[i])}
        for source in SOURCES:
            fav, ref_fav = int(favourable[source][i]), int(favourable[source][reference])
            row[f"{source}_adverse_rate"] = 1 - fav / int(sizes[i])
            if i != reference:
                ratio, low, high = odds_ratio(int(sizes[i]) - fav, fav, int(sizes[reference]) - ref_fav, ref_fav,
                                              confidence)
                row[f"{source}_odds_ratio"], row[f"{source}_odds_ratio_ci"] = ratio, [low, high]
        rows.append(row)
    summary = {source: _adverse_disparities(favourable[source] / sizes, rows, source) for source in SOURCES}
    return {"name": groups.view.name, "reference_group": groups.label(int(included[reference])),
            **summary, "groups": rows}


def _adverse_disparities(favourable: np.ndarray, rows: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """The favourable rate's ratio (min/max) and difference, the adverse rate's ratio (max/min: "denied
    k times as often") and difference, and the largest odds ratio against the reference."""
    adverse = 1 - favourable
    high, low = int(np.argmax(adverse)), int(np.argmin(adverse))
    with np.errstate(invalid="ignore", divide="ignore"):
        favourable_ratio = float(favourable.min() / favourable.max())
        adverse_ratio = float(adverse[high] / adverse[low])
    compared = [r for r in rows if f"{source}_odds_ratio" in r]
    worst = max(compared, key=lambda r: float(r[f"{source}_odds_ratio"]))
    return {"favourable_rate_ratio": _number(favourable_ratio),
            "favourable_rate_difference": float(favourable.max() - favourable.min()),
            "adverse_rate_ratio": _number(adverse_ratio),
            "adverse_rate_difference": float(adverse[high] - adverse[low]),
            "highest_adverse_group": rows[high]["group"], "lowest_adverse_group": rows[low]["group"],
            "odds_ratio": worst[f"{source}_odds_ratio"], "odds_ratio_ci": worst[f"{source}_odds_ratio_ci"],
            "odds_ratio_group": worst["group"]}


def group_rates(every: list[ViewGroups], metrics: Mapping[str, Any], confidence: float) -> list[dict[str, Any]]:
    """For the report's bars: per view, rate (those the metrics compare) and group, the rate with its
    Wilson interval, the group's rows (`n`), the rows the rate is a share of (`of`) and whether the
    disparities include the group (`included`: it has at least min_group_size rows)."""
    from scipy import stats

    used = {rate for metric in metrics for rate in RATES_OF[metric.rsplit("_", 1)[0]]}
    rows = []
    for groups in every:
        for rate in (r for r in RATES if r in used):
            for i, (tp, fp, fn, tn) in enumerate(groups.counts.astype(int).tolist()):
                hits, of = {"selection_rate": (tp + fp, tp + fp + fn + tn), "true_positive_rate": (tp, tp + fn),
                            "false_positive_rate": (fp, fp + tn)}[rate]
                ci = None
                if of:
                    wilson = stats.binomtest(hits, of).proportion_ci(confidence, method="wilson")
                    ci = [float(wilson.low), float(wilson.high)]
                rows.append({"feature": groups.view.name, "group": " & ".join(groups.values[i]), "metric": rate,
                             "value": _number(groups.rates[rate][i]), "ci": ci, "n": tp + fp + fn + tn, "of": of,
                             "included": bool(groups.included[i])})
    return rows


def group_table(groups: ViewGroups) -> list[dict[str, Any]]:
    """One JSON-safe row per group: counts, rates (None where undefined), and its status."""
    rows = []
    for i, (tp, fp, fn, tn) in enumerate(groups.counts.astype(int).tolist()):
        notes = []
        if not groups.included[i]:
            notes.append(f"{tp + fp + fn + tn} rows: fewer than the minimum group size, left out of the disparities")
        if tp + fn == 0:
            notes.append("no actual positives: true positive rate undefined")
        if fp + tn == 0:
            notes.append("no actual negatives: false positive rate undefined")
        rows.append({
            "group": groups.label(i), "values": dict(zip(groups.view.features, groups.values[i], strict=True)),
            "n": tp + fp + fn + tn, "positives": tp + fn, "negatives": fp + tn, "predicted_positive": tp + fp,
            "selection_rate": _number(groups.rates["selection_rate"][i]),
            "true_positive_rate": _number(groups.rates["true_positive_rate"][i]),
            "false_positive_rate": _number(groups.rates["false_positive_rate"][i]),
            "accuracy": _number(groups.accuracy[i]),
            "status": "ok" if groups.included[i] else "insufficient data", "notes": notes,
        })
    return rows


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def sample_of(ctx: GateContext) -> Sample:
    """The hold-out predictions of the pipeline, with its declared sensitive columns."""
    from modelops_ci.steps.frames import sensitive_columns

    if ctx.params.get("task") != "classification":
        raise CannotEvaluate(f"the fairness gate needs a classification model, not {ctx.params.get('task')}")
    predictions: pd.DataFrame = ctx.frame("predictions")
    features = sensitive_columns(ctx.params.get("data") or {})
    missing = [c for c in ["y_true", "y_pred", *features] if c not in predictions.columns]
    if missing:
        raise CannotEvaluate(f"column(s) {', '.join(missing)} not in {ctx.step.layout.predictions}: run "
                             f"`modelops-ci step evaluate {ctx.name}` again (are they in the test data?)")
    target = (ctx.params.get("data") or {}).get("target") or {}
    positive = target.get("positive") or _learnt_positive(ctx)
    outcome = f"{target['column']} = {positive}" if positive is not None else "positive"
    adverse = f"not {outcome}" if positive is not None else "negative"
    y_true, y_pred = predictions["y_true"], predictions["y_pred"]
    favorable = target.get("favorable")
    if favorable is not None and str(favorable) != str(positive):
        # Rates compare the good outcome (a loan granted), not the model's positive class (a default):
        # the four-fifths rule is about who gets the favourable decision.
        y_true, y_pred = 1 - y_true, 1 - y_pred
        adverse, outcome = outcome, f"{target['column']} = {favorable}"
    return make_sample(y_true, y_pred, {f: predictions[f] for f in features}, outcome, adverse)


def _learnt_positive(ctx: GateContext) -> str | None:
    """The class the model predicts as 1 when the spec names none (train takes the last in sorted
    order): its card says which, so `favorable` is compared with the class really used."""
    learnt = ctx.card().get("positive") if ctx.has_card() else None
    return None if learnt is None else str(learnt)


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    try:
        sample = sample_of(ctx)
    except CannotEvaluate as exc:
        raise exc.within("cannot assess fairness") from None
    return assess(sample, settings, seed=ctx.step.seed)
