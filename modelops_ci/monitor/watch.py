"""Every window of logged traffic assessed against its model version's reference.

A model version the caller gives no reference for (no deployment names it), a feature the rows
lack, or a feature of the wrong type is a problem named once; the other versions' windows are still
assessed, and nothing is judged from rows that could not be read. Time windows a version had no
traffic in, between its first and last, are kept as windows of 0 rows (inconclusive: the volume
is part of the picture).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelops_ci.gates.profile import NotNumericError
from modelops_ci.monitor import logged
from modelops_ci.monitor.assess import DEFAULTS, Assessment, Settings, assess
from modelops_ci.monitor.sketch import WindowProfile, merge_all
from modelops_ci.monitor.windows import Window, WindowSpec, ordered, tumbling

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.profile import NumericSummary, Profile
    from modelops_ci.monitor.estimate import Calibration, Estimate

DAY = 86400.0
CLASSIFIER_SAMPLE = 2000  # a window's rows the classifier test sees at most (~0.2 s a window here)
MIN_LABELLED = 100  # labelled rows a window needs before its realised metrics replace the estimates


@dataclass(frozen=True)
class Reference:
    """What a model version's windows are compared with: the profile of its training inputs and,
    when known, its scores on held-out rows."""

    profile: Profile
    scores: NumericSummary | None = None
    calibration: Calibration | None = None  # a classifier's, from its hold-out: performance is estimated
    positive: str | None = None  # the positive class as the log writes labels (the card's, or 1)
    task: str | None = None  # the model card's: regression and forecast get realised errors on labels


@dataclass
class Watch:
    assessments: list[Assessment] = field(default_factory=list)
    profiles: list[WindowProfile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # versions or windows that could not be assessed


def watch(rows: pd.DataFrame, references: dict[tuple[str, str], Reference], spec: WindowSpec,
          settings: Settings = DEFAULTS) -> Watch:
    """Profile and assess every window of `rows` (logged rows, monitor/logged.py)."""
    found = Watch()
    rows = ordered(rows)
    refused: set[tuple[str, str]] = set()
    for window in _with_gaps(tumbling(rows, spec), spec):
        key = (window.model, window.version)
        if key in refused:
            continue
        problem = _unwatchable(rows, key, references)
        if problem:
            refused.add(key)
            found.problems.append(problem)
            continue
        reference = references[key]
        try:
            profile = WindowProfile.build(rows.iloc[window.rows], window.model, window.version, window.start,
                                          window.end, list(reference.profile.numeric),
                                          list(reference.profile.categorical), score="score")
        except NotNumericError as exc:
            found.problems.append(f"{window.model} {window.version}: the window from {window.start:.0f}: {exc}: "
                                  "not assessed (the model's card declares it numeric)")
            continue
        found.profiles.append(profile)
        judged = assess(profile, reference.profile, settings, reference.scores)
        if settings.classifier_test and judged.status in ("pass", "drift"):
            judged = _with_classifier_test(judged, rows.iloc[window.rows], reference.profile, settings)
        found.assessments.append(replace(judged, performance=_performance(rows.iloc[window.rows], reference)))
    return found


def by_day(profiles: list[WindowProfile], references: dict[tuple[str, str], Reference],
           settings: Settings = DEFAULTS) -> list[Assessment]:
    """Each version's windows merged into UTC days (from their profiles alone: no row is read
    again) and each day assessed as one window."""
    groups: dict[tuple[str, str, int], list[WindowProfile]] = {}
    for profile in profiles:
        groups.setdefault((profile.model, profile.version, int(profile.start // DAY)), []).append(profile)
    days = []
    for (model, version, _), same in sorted(groups.items()):
        reference = references.get((model, version))
        if reference is None:
            continue
        merged = merge_all(sorted(same, key=lambda p: p.start))
        days.append(assess(merged, reference.profile, settings, reference.scores))
    return days


def _unwatchable(rows: pd.DataFrame, key: tuple[str, str], references: dict[tuple[str, str], Reference]) -> str:
    model, version = key
    if key not in references:
        known = sorted({f"{m} {v}" for m, v in references}) or ["none"]
        return (f"{model} {version} is in the log but no deployment names it (watched: {', '.join(known)}): "
                "its rows are not assessed")
    absent = logged.missing_features(rows, references[key].profile.features)
    if absent:
        return f"{model} {version}: the logged rows have no {', '.join(absent)}: its windows are not assessed"
    return ""


def _with_gaps(windows: list[Window], spec: WindowSpec) -> list[Window]:
    """Time windows, with an empty one for each window a version had no rows in between two it had."""
    if spec.by != "time":
        return windows
    filled: list[Window] = []
    for window in windows:
        previous = filled[-1] if filled else None
        if previous is not None and (previous.model, previous.version) == (window.model, window.version):
            start = previous.end
            while start < window.start:
                filled.append(Window(window.model, window.version, start, start + spec.size,
                                     slice(window.rows.start, window.rows.start)))
                start += spec.size
        filled.append(window)
    return filled


def _performance(rows: pd.DataFrame, reference: Reference) -> tuple[Estimate, ...]:
    """The window's accuracy and ROC AUC: estimated from its scores when the reference has a
    calibration, and realised beside them once MIN_LABELLED of its rows have labels."""
    import numpy as np

    from modelops_ci.gates.result import CannotEvaluate
    from modelops_ci.monitor.estimate import METRICS, estimated, realised

    if reference.task in ("regression", "forecast"):
        return _errors(rows)
    if reference.calibration is None or "score" not in rows or not len(rows):
        return ()
    import pandas as pd

    scores = pd.to_numeric(rows["score"], errors="coerce").to_numpy(dtype=float)
    found = []
    for metric in METRICS:
        try:
            found.append(estimated(reference.calibration, scores, metric))
        except CannotEvaluate:
            continue
    labels = _labels(rows, reference.positive)
    known = np.isfinite(labels) & np.isfinite(scores)
    if known.sum() >= MIN_LABELLED:
        for metric in METRICS:
            try:
                found.append(realised(labels[known], scores[known], metric,
                                      threshold=reference.calibration.threshold))
            except CannotEvaluate:
                continue
    return tuple(found)


def _with_classifier_test(judged: Assessment, rows: pd.DataFrame, reference: Profile,
                          settings: Settings) -> Assessment:
    """The drift gate's classifier two-sample test on the window's rows (at most CLASSIFIER_SAMPLE)
    against the reference's sample; it shares alpha with the share rule as in the gate, and a window
    it tells apart from the reference is drift."""
    from modelops_ci.gates.drift.multivariate import CLASSIFIER_ALPHA_SHARE, MIN_CLASSIFIER_ROWS, classifier_test

    if min(len(rows), len(reference.sample)) < MIN_CLASSIFIER_ROWS:
        return judged
    current = rows.sample(n=min(len(rows), CLASSIFIER_SAMPLE), random_state=0) if len(rows) else rows
    check = classifier_test(reference.sample, current, list(reference.numeric), list(reference.categorical),
                            settings.alpha * CLASSIFIER_ALPHA_SHARE)
    if check.status != "fail":
        return replace(judged, checks=[*judged.checks, check])
    return replace(judged, status="drift", checks=[*judged.checks, check], reason=f"{judged.reason}; {check.reason}")


def _errors(rows: pd.DataFrame) -> tuple[Estimate, ...]:
    """A regressor's realised MAE and RMSE on the window's labelled rows (MIN_LABELLED at least)."""
    import numpy as np
    import pandas as pd

    from modelops_ci.gates.result import CannotEvaluate
    from modelops_ci.monitor.estimate import ERRORS, realised_error

    if "label" not in rows or "prediction" not in rows:
        return ()
    labels = pd.to_numeric(rows["label"], errors="coerce").to_numpy(dtype=float)
    predictions = pd.to_numeric(rows["prediction"], errors="coerce").to_numpy(dtype=float)
    known = np.isfinite(labels) & np.isfinite(predictions)
    if known.sum() < MIN_LABELLED:
        return ()
    found = []
    for metric in ERRORS:
        try:
            found.append(realised_error(labels[known], predictions[known], metric))
        except CannotEvaluate:
            continue
    return tuple(found)


def _labels(rows: pd.DataFrame, positive: str | None) -> Any:
    """1 for the positive class, 0 for another, NaN where no label is known yet."""
    import numpy as np

    if "label" not in rows:
        return np.full(len(rows), np.nan)
    wanted = {"1", "1.0", "True", "true", *([positive] if positive else [])}
    return np.array([np.nan if value is None or value != value else float(str(value) in wanted)
                     for value in rows["label"].to_numpy(dtype=object)])
