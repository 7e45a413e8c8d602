"""What the steps know of estimators, in one place for train and forecast."""

from __future__ import annotations

# Estimators that need their inputs scaled (a pipeline puts a StandardScaler before them).
SCALE_SENSITIVE = ("sklearn.linear_model", "sklearn.svm", "sklearn.neighbors", "sklearn.neural_network")
