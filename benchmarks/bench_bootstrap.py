"""Bootstrap CI speed: 1,000 resamples over 1,000,000 predictions (target: at most 5 s).

Run: .venv/bin/python benchmarks/bench_bootstrap.py [--rows N] [--resamples N] [--repeat N]
Prints the wall time of the performance gate's bootstrap for each metric alone and for all of
them, and, for scale, a plain loop over resamples with scikit-learn on a 100x smaller sample.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from modelops_ci.gates.performance import assess, classification_sample

METRICS = ("roc_auc", "accuracy", "brier", "log_loss", "f1")


def timed(action: object, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, args.rows)
    score = np.clip(0.3 * y + rng.random(args.rows) * 0.7, 0, 1)

    prepare = timed(lambda: classification_sample(y, score), args.repeat)
    sample = classification_sample(y, score)
    print(f"{args.rows:,} predictions, {args.resamples:,} resamples, median of {args.repeat}")
    print(f"  preparing cells                  {statistics.median(prepare):6.2f} s")
    for metric in METRICS:
        settings = {"metrics": {metric: {"min": 0.0} if metric != "brier" and metric != "log_loss"
                                else {"max": 10.0}}}
        runs = timed(lambda s=settings: assess(sample, s, resamples=args.resamples), args.repeat)
        print(f"  {metric:<32} {statistics.median(runs):6.2f} s")
    total = [p + r for p, r in zip(prepare, timed(lambda: assess(
        sample, {"metrics": {"roc_auc": {"min": 0.0}}}, resamples=args.resamples), args.repeat), strict=True)]
    verdict = "meets" if statistics.median(total) <= 5 else "misses"
    print(f"  ROC AUC CI end to end            {statistics.median(total):6.2f} s ({verdict} the 5 s target)")

    small = args.rows // 100
    idx_rng = np.random.default_rng(1)

    def loop() -> None:
        for _ in range(args.resamples):
            idx = idx_rng.integers(0, small, small)
            roc_auc_score(y[:small][idx], score[:small][idx])

    naive = statistics.median(timed(loop, 1 if args.repeat > 1 else args.repeat))
    print(f"  plain loop, scikit-learn, {small:,} rows: {naive:6.2f} s (100x fewer rows)")


if __name__ == "__main__":
    main()
