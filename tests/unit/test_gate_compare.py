"""Champion/challenger: GTO registry tags, McNemar and DeLong against references, the paired
bootstrap, non-inferiority decisions, bad input, and the gate end to end on a real git + DVC repo."""

from __future__ import annotations

import numpy as np
import pytest

from modelops_ci.errors import UserError
from modelops_ci.gates import bootstrap, compare, stats
from modelops_ci.gates.result import CannotEvaluate
from modelops_ci.registry import tags

# -- registry tags (GTO grammar) ---------------------------------------------------------------


@pytest.mark.parametrize(("tag", "expected"), [
    ("loans@v1.0.0", tags.RegistryTag("loans", version="v1.0.0")),
    ("loans@v2.1.3-rc.1", tags.RegistryTag("loans", version="v2.1.3-rc.1")),
    ("loans#production#3", tags.RegistryTag("loans", stage="production", counter=3)),
    ("loans#production", tags.RegistryTag("loans", stage="production")),
    ("loans#production!#4", tags.RegistryTag("loans", stage="production", cancel=True, counter=4)),
    ("loans@v1.0.0!#2", tags.RegistryTag("loans", version="v1.0.0", cancel=True, counter=2)),
    ("loans@deprecated#5", tags.RegistryTag("loans", deprecated=True, counter=5)),
    ("credit-risk#staging#1", tags.RegistryTag("credit-risk", stage="staging", counter=1)),
    ("models/x=credit-risk@v1.0.0", tags.RegistryTag("models/x:credit-risk", version="v1.0.0")),
])
def test_parse_reads_gto_tags(tag: str, expected: tags.RegistryTag) -> None:
    assert tags.parse(tag) == expected


@pytest.mark.parametrize("tag", ["v1.0.0", "loans@1.0.0", "Loans@v1.0.0", "loans@v1.0", "loans#Prod#1",
                                 "loans#production#x", "-loans@v1.0.0", "loans@v1.0.0#"])
def test_parse_ignores_other_tags(tag: str) -> None:
    assert tags.parse(tag) is None


def test_format_round_trips_and_refuses_bad_names() -> None:
    assert tags.version_tag("loans", "v1.2.3") == "loans@v1.2.3"
    assert tags.stage_tag("loans", "production", 7) == "loans#production#7"
    assert tags.parse(tags.stage_tag("a:loans", "dev", 1)) == tags.RegistryTag("a:loans", stage="dev", counter=1)
    for bad in (lambda: tags.version_tag("loans", "1.2.3"), lambda: tags.version_tag("Loans", "v1.0.0"),
                lambda: tags.stage_tag("loans", "Prod", 1), lambda: tags.stage_tag("loans", "dev", 0)):
        with pytest.raises(UserError):
            bad()


def test_next_counter_counts_per_name() -> None:
    existing = ["loans#dev#1", "loans#production#2", "loans@v1.0.0", "sales#dev#9", "loans#dev"]
    assert tags.next_counter(existing, "loans") == 3
    assert tags.next_counter(existing, "other") == 1


# -- McNemar and DeLong against references --------------------------------------------------------


@pytest.mark.parametrize(("b", "c", "same"), [(0, 0, 30), (3, 9, 50), (12, 12, 5), (1, 23, 40),
                                              (13, 12, 70), (40, 22, 100), (200, 150, 1000)])
def test_mcnemar_equals_statsmodels(b: int, c: int, same: int) -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(b * 1000 + c)
    both = rng.integers(0, same + 1)
    a = np.r_[np.ones(b), np.zeros(c), np.ones(both), np.zeros(same - both)].astype(bool)
    other = np.r_[np.zeros(b), np.ones(c), np.ones(both), np.zeros(same - both)].astype(bool)
    order = rng.permutation(len(a))
    result = stats.mcnemar(a[order], other[order])
    table = [[both, b], [c, same - both]]
    reference = mcnemar(table, exact=b + c < stats.EXACT_DISCORDANT, correction=True)
    assert (result.b, result.c) == (b, c)
    assert result.exact == (b + c < stats.EXACT_DISCORDANT)
    assert result.statistic == pytest.approx(float(reference.statistic))
    assert result.p_value == pytest.approx(float(reference.pvalue), rel=1e-12)


# pROC's aSAH data (Turck et al. 2010; 113 patients after aneurysmal subarachnoid haemorrhage):
# outcome (1 = poor), WFNS grade and S100B. pROC's roc.test documentation compares s100b with wfns:
# "DeLong's test for two correlated ROC curves: Z = -2.209, p-value = 0.02718", AUCs 0.7313686 and
# 0.8236789; its tests pin var(s100b) and var(wfns). The full-precision values below are pROC 1.18's.
ASAH_OUTCOME = ("00001101001011001011101000000000100110110000000001100010001010011101101111000110100000"
                "010000000000001111110001000")
ASAH_WFNS = ("11113254125255125225211112121134214541425511241125521251222151125214524414121421232421451"
             "154221113125225552445111")
ASAH_S100B = """0.13 0.14 0.1 0.04 0.13 0.1 0.47 0.16 0.18 0.1 0.12 0.1 0.44 0.71 0.04 0.08 0.49 0.04 0.07
0.33 0.09 0.09 0.07 0.11 0.07 0.17 0.07 0.11 0.13 0.19 0.05 0.16 0.41 0.14 0.34 0.35 0.48 0.09 0.96 0.25 0.5
0.46 0.16 0.07 0.43 0.45 0.11 0.08 0.09 0.86 0.52 0.08 0.06 0.13 2.07 0.1 0.14 0.15 0.07 0.06 0.77 0.05 0.09
0.3 0.03 0.09 0.04 0.23 0.7 0.09 0.27 0.71 0.08 0.26 0.08 0.16 0.09 0.13 0.1 0.08 0.11 0.33 0.11 0.28 0.07
0.1 0.32 0.22 0.07 0.05 0.24 0.38 0.1 0.15 0.08 0.14 0.1 0.07 0.04 0.19 0.56 0.14 0.58 0.32 0.82 0.74 0.15
0.47 0.17 0.44 0.15 0.5 0.48"""


def _asah() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.array([int(c) for c in ASAH_OUTCOME])
    wfns = np.array([float(c) for c in ASAH_WFNS])
    s100b = np.array([float(v) for v in ASAH_S100B.split()])
    assert len(y) == len(wfns) == len(s100b) == 113 and y.sum() == 41
    return y, s100b, wfns


def test_delong_reproduces_proc_on_asah() -> None:
    y, s100b, wfns = _asah()
    result = stats.delong(y, s100b, wfns)
    assert result.auc_a == pytest.approx(0.7313686, abs=5e-8)
    assert result.auc_b == pytest.approx(0.8236789, abs=5e-8)
    assert result.z == pytest.approx(-2.20898359144091, rel=1e-10)
    assert result.p_value == pytest.approx(0.0271757822291882, rel=1e-10)
    assert result.ci(0.95) == pytest.approx((-0.1742144192494776, -0.0104061769564846), rel=1e-10)
    assert result.variance[0, 0] == pytest.approx(0.00266868245717244, rel=1e-10)
    assert result.variance[1, 1] == pytest.approx(0.00146991470882363, rel=1e-10)
    assert result.variance[0, 1] == pytest.approx(0.00119615567376754, rel=1e-10)


def _slow_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, np.ndarray]:
    """DeLong et al. (1988) as written: the kernel over every (positive, negative) pair, O(n^2)."""
    pos, neg = y == 1, y == 0
    placements10, placements01, aucs = [], [], []
    for score in (a, b):
        x, z = score[pos][:, None], score[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)
        placements10.append(psi.mean(axis=1))
        placements01.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    covariance = np.cov(placements10) / pos.sum() + np.cov(placements01) / neg.sum()
    return aucs[0], aucs[1], covariance


@pytest.mark.parametrize("seed", range(6))
def test_fast_delong_equals_the_direct_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(int)
    y[:2] = [0, 1]
    a = np.round(y * rng.uniform(0, 2) + rng.normal(size=n), int(rng.integers(0, 3)))  # ties too
    b = np.round(0.5 * a + y + rng.normal(size=n), 1)
    fast = stats.delong(y, a, b)
    auc_a, auc_b, covariance = _slow_delong(y, a, b)
    assert (fast.auc_a, fast.auc_b) == pytest.approx((auc_a, auc_b), abs=1e-12)
    assert fast.variance == pytest.approx(covariance, abs=1e-14)


def test_delong_of_identical_scores_is_no_difference() -> None:
    y, s100b, _ = _asah()
    result = stats.delong(y, s100b, s100b)
    assert (result.difference, result.se, result.z, result.p_value) == (0, 0, 0, 1)


# -- the paired bootstrap and the decisions ----------------------------------------------------------


def _scores(n: int = 400, seed: int = 0, strength: tuple[float, float] = (1.5, 1.5)) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    shared = rng.normal(size=n)
    logits = [strength[i] * (2 * y - 1) + shared + 0.7 * rng.normal(size=n) for i in range(2)]
    return (y, *(1 / (1 + np.exp(-logit)) for logit in logits))


def test_each_resample_weighs_both_models_alike() -> None:
    from sklearn.metrics import roc_auc_score

    y, a, b = _scores(120)
    p = compare.pair("classification", y, a, b)
    weights = next(bootstrap.weights(p.cells[0], 20, seed=3))
    differences = compare.paired_differences(p, "roc_auc", 20, seed=3)
    expected = [roc_auc_score(y, a, sample_weight=w) - roc_auc_score(y, b, sample_weight=w) for w in weights]
    assert differences == pytest.approx(expected, abs=1e-12)


def test_a_model_against_itself_differs_by_exactly_zero() -> None:
    y, a, _ = _scores()
    p = compare.pair("classification", y, a, a)
    assert set(compare.paired_differences(p, "roc_auc", 200, seed=1)) == {0.0}
    assert set(compare.paired_differences(p, "brier", 200, seed=1)) == {0.0}


def test_binned_cells_give_the_exact_bootstrap_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    y, a, b = _scores(6000, seed=4, strength=(1.6, 1.3))
    exact = compare.bootstrap_check(compare.pair("classification", y, a, b), "roc_auc", 0.0, 0.95, 400, 0)
    monkeypatch.setattr(bootstrap, "EXACT_ROWS", 1000)
    p = compare.pair("classification", y, a, b)
    assert len(p.cells[0].counts) < len(y)
    binned = compare.bootstrap_check(p, "roc_auc", 0.0, 0.95, 400, 0)
    assert binned.statistic == exact.statistic  # the point estimate is always on the rows
    assert exact.ci is not None and binned.ci is not None
    assert binned.ci == pytest.approx(exact.ci, abs=0.004)


def test_a_better_challenger_passes_and_a_worse_one_fails() -> None:
    y, strong, weak = _scores(600, seed=2, strength=(2.0, 0.8))
    settings = {"metric": "roc_auc", "margin": 0.01}
    better = compare.compare_predictions("classification", y, strong, weak, settings)
    worse = compare.compare_predictions("classification", y, weak, strong, settings)
    assert better.status == "pass" and [c.name for c in better.checks] == ["paired_bootstrap", "delong"]
    assert worse.status == "fail"
    assert {c.status for c in worse.checks} == {"fail"}
    assert "may be worse by more than 0.01" in worse.reason
    delong = worse.checks[1]
    assert delong.p_value is not None and delong.p_value < 0.05


def test_the_margin_decides_on_the_ci_bound() -> None:
    y, a, b = _scores(500, seed=5, strength=(1.45, 1.5))
    p = compare.pair("classification", y, a, b)
    check = compare.bootstrap_check(p, "roc_auc", 0.0, 0.95, 500, 0)
    assert check.ci is not None
    low, high = check.ci
    assert low < 0 < high
    assert compare.bootstrap_check(p, "roc_auc", 0.0, 0.95, 500, 0).status == "fail"  # margin 0: must be better
    assert compare.bootstrap_check(p, "roc_auc", -low + 1e-6, 0.95, 500, 0).status == "pass"
    assert compare.bootstrap_check(p, "roc_auc", -low - 1e-6, 0.95, 500, 0).status == "fail"


def test_losses_are_reversed() -> None:
    y, strong, weak = _scores(600, seed=6, strength=(2.0, 0.8))
    worse = compare.compare_predictions("classification", y, weak, strong, {"metric": "brier", "margin": 0.01})
    better = compare.compare_predictions("classification", y, strong, weak, {"metric": "brier", "margin": 0.01})
    assert (worse.status, better.status) == ("fail", "pass")
    assert worse.checks[0].statistic is not None and worse.checks[0].statistic > 0  # a higher loss
    assert "upper bound is not < 0.01" in worse.reason


def test_regression_compares_errors() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(100, 10, 300)
    close, far = y + rng.normal(0, 2, 300), y + rng.normal(0, 6, 300)
    settings = {"metric": "rmse", "margin": 0.5}
    assert compare.compare_predictions("regression", y, close, far, settings).status == "pass"
    assert compare.compare_predictions("regression", y, far, close, settings).status == "fail"


def test_mcnemar_warns_when_significantly_less_accurate_within_the_margin() -> None:
    rng = np.random.default_rng(8)
    n = 5000
    y = rng.integers(0, 2, n)
    champion = np.where(rng.random(n) < 0.90, y, 1 - y).astype(float)
    challenger = champion.copy()
    flip = rng.choice(np.flatnonzero(challenger == y), 150, replace=False)  # 3 points less accurate
    challenger[flip] = 1 - challenger[flip]
    result = compare.compare_predictions("classification", y, challenger, champion,
                                         {"metric": "accuracy", "margin": 0.05})
    bootstrap_check, mcnemar_check = result.checks
    assert bootstrap_check.status == "pass"
    assert mcnemar_check.status == "warn" and "significantly less accurate" in mcnemar_check.reason
    assert mcnemar_check.details == {"challenger_only": 0, "champion_only": 150, "exact": False}
    assert result.status == "warn"


# -- bad input: error, never a pass ------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "message"), [(np.nan, "NaN or infinite"), (np.inf, "NaN or infinite")])
def test_non_finite_predictions_are_an_error(bad: float, message: str) -> None:
    y, a, b = _scores(100)
    b = b.copy()
    b[[3, 7]] = bad
    with pytest.raises(CannotEvaluate) as caught:
        compare.compare_predictions("classification", y, a, b, {"metric": "roc_auc"})
    result = caught.value.result("compare")
    assert result.status == "error"
    assert "champion's predictions" in result.reason and message in result.reason
    assert "2 of 100" in result.reason


def test_mismatched_lengths_are_an_error() -> None:
    y, a, b = _scores(100)
    with pytest.raises(CannotEvaluate) as caught:
        compare.compare_predictions("classification", y, a, b[:-1], {"metric": "roc_auc"})
    result = caught.value.result("compare")
    assert result.status == "error"
    assert "the challenger has 100 predictions and the champion 99 for 100 hold-out rows" in result.reason


def test_one_class_in_the_hold_out_is_an_error_for_auc() -> None:
    y, a, b = _scores(100)
    with pytest.raises(CannotEvaluate) as caught:
        compare.compare_predictions("classification", np.zeros_like(y), a, b, {"metric": "roc_auc"})
    result = caught.value.result("compare")
    assert result.status == "error"
    assert "ROC AUC is undefined: the hold-out has one class only" in result.reason


def test_probabilities_outside_0_1_are_an_error() -> None:
    y, a, b = _scores(100)
    with pytest.raises(CannotEvaluate) as caught:
        compare.compare_predictions("classification", y, a * 3, b, {"metric": "accuracy"})
    result = caught.value.result("compare")
    assert result.status == "error" and "challenger's predictions" in result.reason
