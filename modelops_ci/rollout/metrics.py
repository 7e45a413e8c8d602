"""The roll-out's metrics, one function each, measured on one interval of the challenger's traffic.

Each gives pass | fail | inconclusive | skipped with its value, its bound and a plain reason:
inconclusive when the interval lacks what the metric needs (no answers, too few labels), skipped
when it cannot apply (agreement in a canary, input drift without a reference profile). The
statistics are the gates' own: the drift gate's per-feature tests (`gates.drift.assess`), its KS and
chi-squared tests for predictions, and the performance gate's metrics.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelops_ci.gates.result import CannotEvaluate
from modelops_ci.rollout.traffic import Side, Traffic, Window, as_numbers
from modelops_ci.spec.deployment import METRICS

if TYPE_CHECKING:
    from modelops_ci.gates.bootstrap import Cells
    from modelops_ci.gates.performance import Sample
    from modelops_ci.gates.profile import Profile

MetricStatus = Literal["pass", "fail", "inconclusive", "skipped"]
DEFAULT_ALPHA = 0.05  # the drift gate's default
DEFAULT_MIN_LABELS = 50
NEEDS_SCORES = {"roc_auc", "brier", "log_loss"}  # classifier metrics the served classes cannot give
MIN_PREDICTIONS = 5  # rows a side for a prediction-drift test (the drift gate's minimum)
RESAMPLES = 300  # per side and interval, for the 95% CI of a drop
BINS = 32  # quantile bins of scores (or of labels and errors) in the bootstrap's cells


@dataclass(frozen=True)
class MetricResult:
    """One metric on one interval."""

    name: str
    status: MetricStatus
    reason: str
    value: float | None = None
    bound: dict[str, Any] = field(default_factory=dict)
    n: int | None = None  # answers or rows it was measured on
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What every metric may read: the traffic, the roll-out's mode, the champion's reference profile
    and the model card (task, numeric, categorical, positive)."""

    traffic: Traffic
    mode: str
    profile: Profile | None = None
    card: Mapping[str, Any] | None = None


Measure = Callable[[Context, Window, dict[str, Any]], MetricResult]


def error_rate(ctx: Context, window: Window, bound: dict[str, Any]) -> MetricResult:
    """Share of the challenger's answers with status >= 500; a 4xx is the caller's fault and counts
    neither as an error nor as an answer."""
    side = ctx.traffic.challenger
    n = int(side.judged[window.challenger].sum())
    if n == 0:
        return _no_answers("error_rate", bound)
    errors = int((side.status[window.challenger] >= 500).sum())
    rate = errors / n
    what = f"error rate {rate:.1%} ({errors:,} of {n:,} challenger answers with status >= 500)"
    return judge("error_rate", rate, bound, what, n, _percent)


def latency_p99_ms(ctx: Context, window: Window, bound: dict[str, Any]) -> MetricResult:
    side = ctx.traffic.challenger
    judged = side.judged[window.challenger]
    n = int(judged.sum())
    if n == 0:
        return _no_answers("latency_p99_ms", bound)
    latencies = side.latency_ms[window.challenger][judged]
    p99 = float(np.percentile(latencies, 99))
    what = f"p99 latency {_ms(p99)} over {n:,} challenger answers"
    return judge("latency_p99_ms", p99, bound, what, n, _ms)


def agreement(ctx: Context, window: Window, bound: dict[str, Any]) -> MetricResult:
    """Share of rows where the champion and the shadow answered the same request alike (equal
    answers: for a regressor, the same number)."""
    if ctx.mode != "shadow":
        return MetricResult("agreement", "skipped", "not measurable in a canary: each request is answered by "
                            "one version only, so no row has both answers; prediction_drift compares their "
                            "answers' distributions instead", bound=bound)
    theirs, mine = ctx.traffic.champion, ctx.traffic.challenger
    champion = dict(zip(_ids(theirs, window.champion), _lists(theirs, window.champion), strict=True))
    same = rows = 0
    for request, answers in zip(_ids(mine, window.challenger), _lists(mine, window.challenger), strict=True):
        other = champion.get(request)
        if other is None or len(other) != len(answers):
            continue
        rows += len(answers)
        same += sum(mine == theirs for mine, theirs in zip(answers, other, strict=True))
    if rows == 0:
        return MetricResult("agreement", "inconclusive", "no request in this interval was answered by both the "
                            "champion and the shadow", bound=bound, n=0)
    share = same / rows
    what = f"agreement {share:.1%} ({same:,} of {rows:,} rows answered alike by champion and shadow)"
    return judge("agreement", share, bound, what, rows, _percent)


def prediction_drift(ctx: Context, window: Window, bound: dict[str, Any]) -> MetricResult:
    """The challenger's scores (classifiers; else its predictions) against the champion's in the same
    interval: KS for numbers, chi-squared for classes; the p-value against `alpha`."""
    from modelops_ci.gates import profile
    from modelops_ci.gates.drift import univariate

    alpha = float(bound.get("alpha", DEFAULT_ALPHA))
    shown = {**bound, "alpha": alpha}
    challenger, champion = ctx.traffic.challenger, ctx.traffic.champion
    column = "score" if _has_scores(challenger, window.challenger) else "prediction"
    mine, theirs = (_rows(side, column, records) for side, records in
                    ((challenger, window.challenger), (champion, window.champion)))
    if min(len(mine), len(theirs)) < MIN_PREDICTIONS:
        return MetricResult("prediction_drift", "inconclusive", f"{len(mine):,} challenger and {len(theirs):,} "
                            f"champion {column}s in this interval; at least {MIN_PREDICTIONS} a side are needed",
                            bound=shown, n=len(mine))
    mine_numbers, theirs_numbers = as_numbers(mine), as_numbers(theirs)
    if np.isfinite(mine_numbers).all() and np.isfinite(theirs_numbers).all():
        # At most 4,096 points, as in a stored profile: the KS statistic within 1/4,096, and fast.
        reference = profile.numeric_summary(theirs_numbers, profile.GRID)
        check = univariate.numeric_drift(column, reference, mine_numbers)
        test = f"KS D={check.statistic:.3g}"
    else:
        check = univariate.categorical_drift(column, _categories(theirs), _categories(mine))
        test = f"chi-squared {check.statistic:.3g}"
    p_value = float(check.p_value) if check.p_value is not None else 1.0
    shifted = p_value <= alpha
    verdict = f"shifted (p at most alpha {alpha:g})" if shifted else f"no significant shift (alpha {alpha:g})"
    sizes = f"{len(mine):,} vs {len(theirs):,} rows"
    reason = f"the challenger's {column}s against the champion's ({sizes}): {test}, p={p_value:.2g}: {verdict}"
    return MetricResult("prediction_drift", "fail" if shifted else "pass", reason, value=p_value, bound=shown,
                        n=len(mine), details={"column": column, "test": check.details.get("test"),
                                              "statistic": check.statistic, "n_champion": len(theirs)})


def input_drift(ctx: Context, window: Window, bound: dict[str, Any]) -> MetricResult:
    """The challenger's rows against the champion's reference profile, by the drift gate's per-feature
    tests and share rule (`max`: the share of drifted features allowed; the gate's default otherwise).
    The gate's classifier test is left out: it trains a model, too slow to run for every interval."""
    import pandas as pd

    from modelops_ci.gates import drift

    if ctx.profile is None:
        return MetricResult("input_drift", "skipped", "no reference profile of the champion was given",
                            bound=bound)
    alpha = float(bound.get("alpha", DEFAULT_ALPHA))
    settings = {"alpha": alpha, "max_drifted_share": float(bound.get("max", drift.DEFAULT_SHARE)),
                "multivariate": False, "prediction": False}
    shown = {**bound, "alpha": alpha}
    side = ctx.traffic.challenger
    parsed = side.parsed("features")
    rows = [row for row in parsed.flat[parsed.rows_in(window.challenger)] if isinstance(row, dict)]
    frame = pd.DataFrame({name: [row.get(name) for row in rows] for name in ctx.profile.features})
    try:
        result = drift.assess(ctx.profile, frame, settings)
    except CannotEvaluate as exc:
        return MetricResult("input_drift", "inconclusive", f"input drift cannot be tested: {exc.reason}",
                            bound=shown, n=len(rows))
    drifted = list(result.details.get("drifted") or [])
    share = len(drifted) / max(1, len(ctx.profile.features))
    details = {"drifted": drifted, "features": len(ctx.profile.features)}
    if result.status == "error":
        return MetricResult("input_drift", "inconclusive", result.reason, value=share, bound=shown, n=len(rows),
                            details=details)
    status: MetricStatus = "fail" if result.status == "fail" else "pass"
    reason = f"the challenger's {len(rows):,} input rows against the champion's reference: {result.reason}"
    return MetricResult("input_drift", status, reason, value=share, bound=shown, n=len(rows), details=details)


def performance(ctx: Context, window: Window, bound: dict[str, Any]) -> MetricResult:
    """On rows with labels: the champion's metric minus the challenger's (the other way round for a
    loss such as MAE), so a positive drop is how much worse the challenger is; against `max_drop`.

    Judged on the drop's bootstrap CI, as the performance gate judges a metric: a few hundred labels
    leave a few points of noise in an accuracy, and noise must not abort a healthy challenger. It
    fails when the CI lies above `max_drop`, passes when it lies at or below, else is inconclusive."""
    if ctx.card is None:
        return MetricResult("performance", "skipped", "no model card was given: the task and the "
                            "positive class are unknown", bound=bound)
    if bound.get("max_drop") is None:
        return _unbounded("performance", "max_drop", bound)
    classifier = ctx.card.get("task") == "classification"
    metric = str(bound.get("metric") or ("accuracy" if classifier else "mae"))
    min_labels = int(bound.get("min_labels", DEFAULT_MIN_LABELS))
    shown = {**bound, "metric": metric, "min_labels": min_labels}
    sides = (("champion", ctx.traffic.champion, window.champion),
             ("challenger", ctx.traffic.challenger, window.challenger))
    found: list[Labelled] = []
    for seed, (role, side, records) in enumerate(sides):
        truth, predicted, scores = _labelled(ctx.traffic, side, records)
        if len(truth) < min_labels:
            return MetricResult("performance", "inconclusive", f"{len(truth):,} labelled rows for the "
                                f"{role} in this interval, fewer than min_labels {min_labels}",
                                bound=shown, n=len(truth))
        try:
            value, spread = _measured(metric, classifier, ctx.card.get("positive"), truth, predicted,
                                      scores, seed)
        except CannotEvaluate as exc:
            return MetricResult("performance", "inconclusive", f"{_label(metric)} of the {role} cannot "
                                f"be computed: {exc.reason}", bound=shown, n=len(truth))
        found.append(Labelled(value, spread, len(truth)))
    return _drop(metric, found[0], found[1], shown)


@dataclass(frozen=True)
class Labelled:
    """A metric of one version on its labelled rows, and its bootstrap distribution."""

    value: float
    spread: np.ndarray
    n: int


def _drop(metric: str, champion: Labelled, challenger: Labelled, bound: dict[str, Any]) -> MetricResult:
    """How much worse the challenger is, with its CI, against `max_drop`."""
    from modelops_ci.gates import bootstrap
    from modelops_ci.gates.compare import LOSSES
    from modelops_ci.gates.performance import DEFAULT_CONFIDENCE

    sign = -1.0 if metric in LOSSES else 1.0
    drop = sign * (champion.value - challenger.value)
    spread = sign * (champion.spread - challenger.spread)
    low, high = bootstrap.percentile_ci(spread, DEFAULT_CONFIDENCE)
    limit = float(bound["max_drop"])
    status: MetricStatus = "inconclusive"
    verdict = f"may be worse by more than the max_drop {limit:g}: more labels will tell"
    if low > limit:
        status, verdict = "fail", f"worse by more than the max_drop {limit:g}"
    elif high <= limit:
        status, verdict = "pass", f"within the max_drop {limit:g}"
    measured = (f"{_label(metric)} {challenger.value:.3g} for the challenger ({challenger.n:,} labelled "
                f"rows) against {champion.value:.3g} for the champion ({champion.n:,})")
    ci = f"{DEFAULT_CONFIDENCE:.0%} CI {low:.3g} to {high:.3g}"
    details = {"metric": metric, "champion": champion.value, "challenger": challenger.value,
               "ci": [low, high], "n_champion": champion.n}
    return MetricResult("performance", status, f"{measured}: a drop of {drop:.3g} ({ci}), {verdict}",
                        value=drop, bound=bound, n=challenger.n, details=details)


def _label(metric: str) -> str:
    from modelops_ci.gates.performance import LABELS

    return LABELS.get(metric, metric)


MEASURES: dict[str, Measure] = {
    "error_rate": error_rate, "latency_p99_ms": latency_p99_ms, "agreement": agreement,
    "prediction_drift": prediction_drift, "input_drift": input_drift, "performance": performance,
}


def judge(name: str, value: float, bound: dict[str, Any], what: str, n: int,
          show: Callable[[float], str]) -> MetricResult:
    """`value` against the bound its metric takes (`max` or `min`, as `METRICS` says)."""
    kind = METRICS[name]
    limit = bound.get(kind)
    if limit is None:
        return _unbounded(name, kind, bound, value, n)
    shown = show(float(limit))
    if kind == "max":
        ok = value <= float(limit)
        verdict = f"at most the max {shown}" if ok else f"above the max {shown}"
    else:
        ok = value >= float(limit)
        verdict = f"at least the min {shown}" if ok else f"below the min {shown}"
    status: MetricStatus = "pass" if ok else "fail"
    return MetricResult(name, status, f"{what}: {verdict}", value=value, bound=bound, n=n)


def _unbounded(name: str, kind: str, bound: dict[str, Any], value: float | None = None,
               n: int | None = None) -> MetricResult:
    how = f"set analysis.metrics.{name}.{kind} in the deployment file"
    return MetricResult(name, "skipped", f"no `{kind}` bound: {how}", value=value, bound=bound, n=n)


def _no_answers(name: str, bound: dict[str, Any]) -> MetricResult:
    return MetricResult(name, "inconclusive", "no challenger answers in this interval", bound=bound, n=0)


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _ms(value: float) -> str:
    return f"{value:.3g} ms"


def _ids(side: Side, records: slice) -> list[str]:
    return side.request_ids(records)


def _lists(side: Side, records: slice) -> list[list[Any]]:
    parsed = side.parsed("prediction")
    return parsed.lists[parsed.records_in(records)]


def _rows(side: Side, column: str, records: slice) -> list[Any]:
    parsed = side.parsed(column)
    return [value for value in parsed.flat[parsed.rows_in(records)] if value is not None]


def _has_scores(side: Side, records: slice) -> bool:
    rows = side.parsed("score").rows_in(records)
    return bool(rows.stop > rows.start)


def _categories(values: list[Any]) -> Any:
    import pandas as pd

    from modelops_ci.gates import profile

    return profile.categorical_summary(pd.Series([str(v) for v in values], dtype="string"))


def _labelled(traffic: Traffic, side: Side, records: slice) -> tuple[list[Any], list[Any], list[Any]]:
    """The true labels known for the side's answered rows in `records`, with the prediction and the
    score (None when not logged) of each."""
    predictions, scores = side.parsed("prediction"), side.parsed("score")
    chosen = predictions.records_in(records)
    answers, probabilities = predictions.lists[chosen], scores.lists[chosen]
    labels = list(map(traffic.labels().get, side.request_ids(records)))
    joined = [i for i, (known, rows) in enumerate(zip(labels, answers, strict=True))
              if known is not None and len(known) == len(rows)]
    truth = list(itertools.chain.from_iterable(labels[i] or [] for i in joined))
    predicted = list(itertools.chain.from_iterable(answers[i] for i in joined))
    scored = list(itertools.chain.from_iterable(_aligned(probabilities[i], answers[i]) for i in joined))
    if None not in truth:
        return truth, predicted, scored
    keep = [i for i, label in enumerate(truth) if label is not None]
    return [truth[i] for i in keep], [predicted[i] for i in keep], [scored[i] for i in keep]


def _aligned(probabilities: list[Any], answers: list[Any]) -> list[Any]:
    """A record's scores, or None for each row when they do not match its answers."""
    return probabilities if len(probabilities) == len(answers) else [None] * len(answers)


def _measured(metric: str, classifier: bool, positive: Any, truth: list[Any], predicted: list[Any],
              scores: list[Any], seed: int) -> tuple[float, np.ndarray]:
    """The performance gate's value of `metric` on these rows, and its bootstrap distribution."""
    from modelops_ci.gates import bootstrap, performance

    if not classifier:
        sample = performance.regression_sample(as_numbers(truth), as_numbers(predicted))
    else:
        sample = _classification(metric, positive, truth, predicted, scores)
    value = performance.point(sample, metric)
    if not np.isfinite(value):
        raise CannotEvaluate(f"{metric} is undefined on these rows (one class only?)")
    cells = _coarse_cells(sample, classifier)
    return value, bootstrap.distribution(cells, performance.metric(sample, metric), RESAMPLES, seed)


def _coarse_cells(sample: Sample, classifier: bool) -> Cells:
    """The rows grouped into at most a few hundred cells for the bootstrap, as the gates group them
    above `bootstrap.EXACT_ROWS` rows but coarser: drawing a resample costs per cell, and this runs
    for every interval. Exact for metrics of the classes (accuracy, precision, ...); scores and
    errors are binned by quantile."""
    from modelops_ci.gates import bootstrap

    rows, columns = sample.rows, sample.columns
    if classifier:
        keys = np.column_stack([rows.means[:, columns["y"]], rows.means[:, columns["p"]],
                                bootstrap.quantile_bins(rows.order[:, 0], BINS)])
    else:
        keys = np.column_stack([bootstrap.quantile_bins(rows.means[:, columns["y"]], BINS),
                                bootstrap.quantile_bins(rows.means[:, columns["absolute"]], BINS)])
    return bootstrap.make_cells(rows.means, keys, rows.order)


def _classification(metric: str, positive: Any, truth: list[Any], predicted: list[Any],
                    scores: list[Any]) -> Sample:
    from modelops_ci.gates import performance

    if positive is None:
        raise CannotEvaluate("the model card names no positive class")
    # As evaluate compares them: labels and classes as text, against the card's positive class.
    y = np.asarray([str(v) == str(positive) for v in truth], dtype=float)
    decisions = np.asarray([str(v) == str(positive) for v in predicted], dtype=float)
    probabilities = as_numbers(scores)
    if not np.isfinite(probabilities).all():
        if metric in NEEDS_SCORES:
            raise CannotEvaluate("it needs the positive-class probabilities, and the log has none for some rows")
        probabilities = decisions
    return performance.classification_sample(y, probabilities, decisions)
