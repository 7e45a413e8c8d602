"""Paired tests of two models on the same rows: McNemar (accuracy) and DeLong (ROC AUC).

Pure functions on arrays; scipy supplies the distributions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Below this many discordant pairs the chi-squared approximation is poor: use the exact binomial.
EXACT_DISCORDANT = 25


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired correctness: `b` rows only model A got right, `c` only model B."""

    b: int
    c: int
    statistic: float
    p_value: float
    exact: bool


def mcnemar(correct_a: Any, correct_b: Any) -> McNemar:
    """Do two models' accuracies differ on the same rows? Only the discordant rows count.

    Exact binomial test (statistic: the smaller discordant count) when there are fewer than
    EXACT_DISCORDANT discordant rows, otherwise chi-squared with continuity correction;
    the same numbers as statsmodels' `mcnemar(table, exact=...)`.
    """
    from scipy import stats

    a = np.asarray(correct_a, dtype=bool).reshape(-1)
    b_ = np.asarray(correct_b, dtype=bool).reshape(-1)
    if a.shape != b_.shape:
        raise ValueError(f"{a.size} rows for model A but {b_.size} for model B")
    b, c = int(np.sum(a & ~b_)), int(np.sum(~a & b_))
    if b + c < EXACT_DISCORDANT:
        statistic = float(min(b, c))
        p_value = min(1.0, 2 * float(stats.binom.cdf(statistic, b + c, 0.5)))
        return McNemar(b, c, statistic, p_value, exact=True)
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemar(b, c, float(statistic), float(stats.chi2.sf(statistic, 1)), exact=False)


@dataclass(frozen=True)
class DeLong:
    """DeLong's test for the ROC AUCs of two models scored on the same rows."""

    auc_a: float
    auc_b: float
    variance: np.ndarray  # 2 x 2 covariance of (AUC A, AUC B)

    @property
    def difference(self) -> float:
        """AUC A - AUC B."""
        return self.auc_a - self.auc_b

    @property
    def se(self) -> float:
        v = self.variance
        return float(np.sqrt(max(0.0, v[0, 0] + v[1, 1] - 2 * v[0, 1])))

    @property
    def z(self) -> float:
        if self.se == 0:  # identical rankings: no difference at all (pROC's special case too)
            return 0.0 if self.difference == 0 else float(np.sign(self.difference) * np.inf)
        return self.difference / self.se

    @property
    def p_value(self) -> float:
        """Two-sided p-value of AUC A = AUC B."""
        from scipy import stats

        return float(2 * stats.norm.sf(abs(self.z)))

    def ci(self, confidence: float) -> tuple[float, float]:
        """Normal confidence interval of AUC A - AUC B."""
        from scipy import stats

        half = float(stats.norm.ppf(0.5 + confidence / 2)) * self.se
        return self.difference - half, self.difference + half


def delong(y_true: Any, score_a: Any, score_b: Any) -> DeLong:
    """DeLong, DeLong & Clarke-Pearson (1988), computed as Sun & Xu (2014): O(n log n) by midranks.

    With m positives X and n negatives Y, the placement of positive i is
    V10_i = (rank of X_i among all - rank among positives) / n, of negative j
    V01_j = 1 - (rank of Y_j among all - rank among negatives) / m (midranks: ties count half);
    AUC = mean(V10), and cov(AUCs) = cov(V10) / m + cov(V01) / n.
    """
    from scipy.stats import rankdata

    y = np.asarray(y_true).reshape(-1).astype(bool)
    scores = np.vstack([np.asarray(score_a, dtype=float).reshape(-1),
                        np.asarray(score_b, dtype=float).reshape(-1)])
    if scores.shape[1] != y.size:
        raise ValueError(f"{scores.shape[1]} scores for {y.size} labels")
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError("ROC AUC needs both classes")
    positives, negatives = scores[:, y], scores[:, ~y]
    ranks_all = rankdata(np.hstack([positives, negatives]), axis=1)
    ranks_pos = rankdata(positives, axis=1)
    ranks_neg = rankdata(negatives, axis=1)
    v10 = (ranks_all[:, :m] - ranks_pos) / n
    v01 = 1.0 - (ranks_all[:, m:] - ranks_neg) / m
    auc = v10.mean(axis=1)
    variance = _cov(v10) / m + _cov(v01) / n
    return DeLong(float(auc[0]), float(auc[1]), variance)


def _cov(placements: np.ndarray) -> np.ndarray:
    """2 x 2 sample covariance of two rows (zero for a single observation)."""
    if placements.shape[1] < 2:
        return np.zeros((2, 2))
    covariance: np.ndarray = np.cov(placements)
    return covariance
