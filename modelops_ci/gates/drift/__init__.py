"""Drift: does the current data come from the same distribution as the reference?

In CI the reference is the training split and the current data the test split; for monitoring the
current data is a new batch (`drift.current`) and the reference may be a stored profile
(`drift.reference: path/to/profile.npz`, see `profile.py`).

Per feature, one test of "same distribution" and effect sizes beside it:
- numeric: two-sample Kolmogorov-Smirnov (scipy's exact `ks_2samp` p-value up to 10,000 rows a
  side, the Kolmogorov limit with Stephens' correction above); Wasserstein-1 distance in reference
  standard deviations; PSI on reference deciles;
- categorical: chi-squared test of the 2 x k table (scipy's `chi2_contingency`), Jensen-Shannon
  distance (base 2) and PSI; categories the reference never had stay in the table (they are drift)
  and are named;
- both: a missing-rate change (Fisher's exact test on missing/present counts); NaN is missing.
  When both tests apply, the feature's p-value is the Bonferroni combination (2 x the smaller).

The features' p-values are corrected together (Benjamini-Hochberg by default); a feature drifted
when its corrected p-value is at most `alpha`. The gate fails when the share of drifted features
exceeds `max_drifted_share`, or when a classifier tells current rows from reference rows (held-out
ROC AUC, Mann-Whitney p-value at most `alpha / 2`: the two routes share alpha). The classifier sees
at most 20,000 rows a side.

Prediction drift: the model's scores on rows it never learned from, the evaluate step's held-out
predictions on the test split, are the reference; the model scores the current batch (up to 20,000
rows) and the two are compared with the KS test. A shift is a warning: it follows from the
features'. Scores on the training split are no reference (they are overfit), so in CI, where the
current data is the test split itself, prediction drift is skipped; it applies to a new batch.

The parts: `univariate` (per-feature tests and the correction), `multivariate` (the classifier test
and prediction drift), `pictures` (plot data for the report), `inputs` (what the gate reads). The
gate's reason stays one line: the share rule's sentence, and the classifier and prediction checks in
brief.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_ci.gates.drift import inputs, multivariate, pictures, univariate
from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, Status, worst

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.context import GateContext
    from modelops_ci.gates.drift.multivariate import Predictor, Unavailable
    from modelops_ci.gates.profile import Profile

GATE = "drift"
DEFAULT_ALPHA = 0.05
DEFAULT_CORRECTION = "fdr_bh"
DEFAULT_SHARE = 0.3
MIN_ROWS = 5


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    predictor = inputs.predictor(ctx, settings)
    reference, sources = inputs.reference_profile(ctx)
    current, sources["current"] = inputs.current_data(ctx)
    return assess(reference, current, settings, seed=ctx.step.seed, predictor=predictor, sources=sources)


def assess(reference: Profile, current: pd.DataFrame, settings: dict[str, Any], *, seed: int = 0,
           predictor: Predictor | Unavailable | None = None, sources: dict[str, str] | None = None) -> GateResult:
    """The drift gate on a reference profile and the current rows (pure: no files)."""
    alpha = float(settings.get("alpha", DEFAULT_ALPHA))
    correction = str(settings.get("correction", DEFAULT_CORRECTION))
    max_share = float(settings.get("max_drifted_share", DEFAULT_SHARE))
    problem = _unusable(reference, current)
    if problem:
        raise CannotEvaluate(problem, alpha=alpha, n=len(current))
    checks = univariate.compare(reference, current)
    dataset = univariate.decide(checks, alpha, correction, max_share)
    pictures.add_pictures(reference, current, checks)
    extra, skipped = multivariate.extra_checks(reference, current, checks, settings, alpha, seed, predictor)
    everything = [*checks, dataset, *extra]
    status = worst([c.status for c in everything])
    details = {"correction": correction, "max_drifted_share": max_share, "drifted": dataset.details["drifted"],
               "features": len(checks), "skipped": skipped, **(sources or {})}
    return GateResult(GATE, status, _reason(status, checks, dataset, extra), alpha=alpha, n=len(current),
                      groups={"reference": reference.rows, "current": len(current)}, checks=everything,
                      details=details)


def _unusable(reference: Profile, current: pd.DataFrame) -> str | None:
    if not reference.features:
        return "no features to compare: declare data.features or drift.features"
    absent = [name for name in reference.features if name not in current.columns]
    if absent:
        return f"columns missing from the current data: {', '.join(absent)} (the reference has them)"
    for rows, side in ((reference.rows, "reference"), (len(current), "current")):
        if rows < MIN_ROWS:
            empty = "has no rows" if rows == 0 else f"has only {rows} rows"
            return f"the {side} data {empty}; at least {MIN_ROWS} are needed to test drift"
    return None


def _reason(status: Status, checks: list[Check], dataset: Check, extra: list[Check]) -> str:
    """One line: the first fault in full (it says what to do) and how many more; else the share rule's
    sentence and the other checks in brief (on a failure, the failing ones only)."""
    if status == "error":
        broken = [c for c in [*checks, *extra] if c.status == "error"]
        more = f"; and {len(broken) - 1} more (see the checks)" if len(broken) > 1 else ""
        return f"cannot assess drift: {broken[0].reason}{more}"
    shown = [c for c in extra if c.status == "fail"] if status == "fail" else extra
    return "; ".join([dataset.reason, *(_brief(c) for c in shown)])


def _brief(check: Check) -> str:
    if check.status == "error" or check.statistic is None or check.p_value is None:
        return check.reason
    alpha = (check.threshold or {}).get("alpha")
    tested = f"p={check.p_value:.2g}" + (f", alpha {alpha:g}" if alpha is not None else "")
    if check.name == "multivariate":
        verdict = "tells" if check.status == "fail" else "cannot tell"
        return f"a classifier {verdict} current rows from reference rows (AUC {check.statistic:.3f}, {tested})"
    verdict = "shifted" if check.status != "pass" else "did not shift significantly"
    return f"the model's scores {verdict} (KS {tested})"
