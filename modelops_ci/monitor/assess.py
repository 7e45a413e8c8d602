"""One window's health against the model's reference: input drift with the drift gate's statistics
(per-feature tests, the correction across features, the share rule), prediction drift, missing and
unseen values, and the volume. Read from the window's profile (monitor/sketch.py), so a window
merged from many (a day of hours) is assessed the same way as one hour, without its rows.

A window with fewer than `min_samples` rows is inconclusive: it neither alerts nor clears one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from modelops_ci.gates.drift import DEFAULT_ALPHA, DEFAULT_CORRECTION, DEFAULT_SHARE, univariate
from modelops_ci.gates.result import Check
from modelops_ci.monitor.sketch import RANK_ERROR, WindowProfile

if TYPE_CHECKING:
    from modelops_ci.gates.profile import NumericSummary, Profile
    from modelops_ci.monitor.estimate import Estimate

DEFAULT_MIN_SAMPLES = 500
WindowStatus = Literal["pass", "drift", "inconclusive", "error"]


@dataclass(frozen=True)
class Settings:
    alpha: float = DEFAULT_ALPHA
    correction: str = DEFAULT_CORRECTION
    max_drifted_share: float = DEFAULT_SHARE
    min_samples: int = DEFAULT_MIN_SAMPLES
    classifier_test: bool = False  # also the drift gate's classifier test, on the window's raw rows


DEFAULTS = Settings()

@dataclass(frozen=True)
class Assessment:
    """What one window showed: `drift` when the share rule fails (the alert's cause)."""

    model: str
    version: str
    start: float
    end: float
    rows: int
    status: WindowStatus
    reason: str
    checks: list[Check] = field(default_factory=list)  # per feature, then "dataset" and "prediction"
    drifted: list[str] = field(default_factory=list)
    prediction_shifted: bool = False
    performance: tuple[Estimate, ...] = ()  # estimated from the scores, and realised from labels when known

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "start": self.start, "end": self.end,
                "rows": self.rows, "status": self.status, "reason": self.reason, "drifted": self.drifted,
                "prediction_shifted": self.prediction_shifted, "checks": [c.to_json() for c in self.checks],
                "performance": [e.to_json() for e in self.performance]}


def assess(window: WindowProfile, reference: Profile, settings: Settings = DEFAULTS,
           reference_scores: NumericSummary | None = None) -> Assessment:
    """The window against the reference profile (and, when both have them, its scores against the
    reference's scores on held-out rows)."""
    def judged(status: WindowStatus, reason: str, checks: list[Check] | None = None,
               drifted: list[str] | None = None, shifted: bool = False) -> Assessment:
        return Assessment(window.model, window.version, window.start, window.end, window.rows, status, reason,
                          checks or [], drifted or [], shifted)

    absent = [name for name in reference.features if name not in window.features]
    if absent:
        return judged("error", f"the window has no {', '.join(absent)}: the reference has them; log every feature "
                      "the model was trained on")
    if window.rows < settings.min_samples:
        return judged("inconclusive", f"{window.rows:,} rows, fewer than min_samples {settings.min_samples:,}: "
                      "not judged")
    checks = _feature_checks(window, reference)
    dataset = univariate.decide(checks, settings.alpha, settings.correction, settings.max_drifted_share)
    everything = [*checks, dataset]
    shifted = False
    if reference_scores is not None and window.scores is not None:
        prediction = _prediction_check(window, reference_scores, settings.alpha)
        shifted = prediction.status == "warn"
        everything.append(prediction)
    broken = [c for c in checks if c.status == "error"]
    if broken:
        return judged("error", f"cannot assess drift: {broken[0].reason}", everything)
    drifted = list(dataset.details["drifted"])
    status: WindowStatus = "drift" if dataset.status == "fail" else "pass"
    reason = dataset.reason + ("; the model's scores shifted" if shifted else "")
    return judged(status, reason, everything, drifted, shifted)


def _feature_checks(window: WindowProfile, reference: Profile) -> list[Check]:
    numeric = [univariate.numeric_drift_summarised(name, summary, window.numeric[name].summary(), RANK_ERROR)
               for name, summary in reference.numeric.items()]
    categorical = [univariate.categorical_drift(name, summary, window.categorical[name].summary())
                   for name, summary in reference.categorical.items()]
    return [*numeric, *categorical]


def _prediction_check(window: WindowProfile, reference_scores: NumericSummary, alpha: float) -> Check:
    """The window's scores against the reference's: a shift is a warning, it follows from the inputs'."""
    assert window.scores is not None
    check = univariate.numeric_drift_summarised("prediction", reference_scores, window.scores.summary(), RANK_ERROR)
    if check.status == "error" or check.p_value is None:
        return check
    shifted = check.p_value <= alpha
    check.status = "warn" if shifted else "pass"
    check.threshold = {"alpha": alpha}
    verdict = "shifted" if shifted else "no significant shift"
    check.reason = f"the model's scores: {verdict} (KS D={check.statistic or 0:.3g}, p={check.p_value:.2g})"
    return check
