"""Forecasting options: rolling-origin horizon, log target, trend on/off."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from modelops_ci.steps.forecast import features, forecast, model_scale, rolling

LAGS, SEASON = [1, 4], 4


def _fitted(log: bool, trend: bool) -> tuple[Ridge, dict[str, object], list[float]]:
    y = [float(v) for v in 100 + 2 * np.arange(40) + 10 * np.sin(np.arange(40))]
    z = model_scale(y, log)
    X = [features(z, t, LAGS, SEASON, trend) for t in range(4, 32)]
    model = Ridge().fit(X, z[4:32])
    facts = {"lags": LAGS, "season": SEASON, "n_train": 32, "history_tail": z[28:32], "trend": trend,
             "log_target": log}
    return model, facts, y


@pytest.mark.parametrize(("log", "trend"), [(False, True), (True, False)])
def test_horizon_as_long_as_the_test_is_the_end_of_training_forecast(log: bool, trend: bool) -> None:
    model, facts, y = _fitted(log, trend)
    assert rolling(model, facts, y[32:], 8, 8) == forecast(model, facts, 8)


@pytest.mark.parametrize(("log", "trend"), [(False, True), (True, False)])
def test_one_step_horizon_uses_every_actual_value_before_the_period(log: bool, trend: bool) -> None:
    model, facts, y = _fitted(log, trend)
    z = model_scale(y, log)
    expected = [float(model.predict([features(z, t, LAGS, SEASON, trend)])[0]) for t in range(32, 40)]
    if log:
        expected = [math.exp(v) for v in expected]
    assert rolling(model, facts, y[32:], 8, 1) == pytest.approx(expected)


def test_two_step_horizon_never_sees_the_value_it_forecasts() -> None:
    model, facts, y = _fitted(False, True)
    honest = rolling(model, facts, y[32:], 8, 2)
    tampered = list(y[32:])
    tampered[5] = 1e6  # the actual value of period 37: known only to forecasts of 38 onwards
    leaked = rolling(model, facts, tampered, 8, 2)
    assert honest[:6] == leaked[:6]
    assert honest[7] != leaked[7]


def test_trend_adds_one_feature() -> None:
    assert len(features(list(range(10)), 8, LAGS, SEASON, True)) == len(LAGS) + SEASON - 1 + 1
    assert len(features(list(range(10)), 8, LAGS, SEASON, False)) == len(LAGS) + SEASON - 1
