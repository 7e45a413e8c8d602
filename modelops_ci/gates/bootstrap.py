"""Seeded, vectorised bootstrap over "cells" of rows.

Every metric the gates use is a function of weighted sums of per-row quantities ("moments":
correct, squared error, positive, ...) — except ROC AUC, which also needs the order of scores.
A bootstrap resample is then a vector of counts over rows, drawn at once for many resamples from
a multinomial distribution, and a metric for all resamples is one matrix product. Up to
`EXACT_ROWS` rows each row is its own cell (the exact bootstrap); above, rows are grouped into
cells of equal keys (label, prediction, score quantile bin) and each cell contributes its mean
moments — the same expectation, with a binning error far below the sampling error at that size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

EXACT_ROWS = 20_000
SCORE_BINS = 4096
BATCH_CELLS = 4_000_000  # resamples x cells per batch: bounds memory at ~32 MB of float64


@dataclass(frozen=True)
class Cells:
    """Rows grouped into cells: how many rows each holds, their mean moments, and a sort key."""

    counts: np.ndarray  # (K,)
    means: np.ndarray  # (K, m)
    order: np.ndarray  # (K, j): score keys per cell, for rank statistics (ROC AUC)

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def make_cells(moments: np.ndarray, keys: np.ndarray | None = None,
               order: np.ndarray | None = None) -> Cells:
    """Group rows (n x m moments) by `keys` (n x k); `order` holds per-row score keys to sort by."""
    n = moments.shape[0]
    order = np.zeros((n, 0)) if order is None else order.reshape(n, -1)
    if keys is None:
        return Cells(np.ones(n), moments.astype(float), order.astype(float))
    columns = np.asarray(keys, dtype=np.int64).reshape(n, -1)
    flat = np.ravel_multi_index(columns.T, columns.max(axis=0) + 1)  # one integer key per row
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)

    def cell_means(values: np.ndarray) -> np.ndarray:
        sums = [np.bincount(inverse, weights=column, minlength=len(counts)) for column in values.T]
        return np.column_stack(sums) / counts[:, None] if sums else np.zeros((len(counts), 0))

    return Cells(counts.astype(float), cell_means(moments.astype(float)), cell_means(order.astype(float)))


def quantile_bins(values: np.ndarray, bins: int = SCORE_BINS) -> np.ndarray:
    """Bin index of each value by its quantile (ties stay together)."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right")


def weights(cells: Cells, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Batches of bootstrap count matrices (b x K); rows of all batches together: `resamples`."""
    rng = np.random.default_rng(seed)
    share = cells.counts / cells.counts.sum()
    batch = max(1, BATCH_CELLS // max(1, len(share)))
    left = resamples
    while left > 0:
        size = min(batch, left)
        yield rng.multinomial(cells.n, share, size=size).astype(float)
        left -= size


Statistic = Callable[[np.ndarray, Cells], np.ndarray]


def distribution(cells: Cells, statistic: Statistic, resamples: int, seed: int) -> np.ndarray:
    """The statistic over `resamples` bootstrap resamples (weights b x K -> values b)."""
    return np.concatenate([statistic(w, cells) for w in weights(cells, resamples, seed)])


def percentile_ci(values: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def weighted_auc(w: np.ndarray, positive_rate: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of each resample (rows of `w`), ties counted half; cells keyed by `score`."""
    order = np.argsort(score, kind="stable")
    score, w, rate = score[order], w[:, order], positive_rate[order]
    positives, negatives = w * rate, w * (1 - rate)
    # cells with equal scores are one rank group
    starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])
    pos_group = np.add.reduceat(positives, starts, axis=1)
    neg_group = np.add.reduceat(negatives, starts, axis=1)
    below = np.cumsum(neg_group, axis=1) - neg_group
    total = pos_group.sum(axis=1) * neg_group.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = (pos_group * (below + 0.5 * neg_group)).sum(axis=1) / total
    return result
