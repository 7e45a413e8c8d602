"""The types a model file may hold beyond skops' own defaults: an exact, reviewed list.

A model file is data, never code (DESIGN.md 7a). skops rebuilds an object by looking its type
up by name and calling it, so a name is trusted only if calling it is known to be harmless:
`sklearn.`, `numpy.` and `scipy.` also hold test helpers that execute a string or a script.
Trust therefore comes from this list and from the policies (`spec.models.trusted_types`,
reviewed through CODEOWNERS), never from the model or its card.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Derived from what `modelops-ci step train` can produce (steps/train.py, steps/forecast.py): the
# preprocessing pipeline around each estimator family train.py names (linear models, trees and
# tree ensembles, histogram gradient boosting, SVMs, nearest neighbours, neural networks) and
# the forecaster's pipeline, fitted on tiny data; each entry is what
# `skops.io.get_untrusted_types` reported for them (scikit-learn 1.9, NumPy 2.4, skops 0.16).
# Each was audited: building it stores arrays and numbers; it runs, imports and opens nothing.
# To regenerate or extend: add the model to `FAMILIES` in tests/unit/test_model_types.py, run that
# test, audit what it reports missing, and add it here in review.
AUDITED_TYPES = frozenset({
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
})


def trusted(extra_types: Iterable[str] = ()) -> frozenset[str]:
    """The audited types plus `extra_types` (those a policy adds)."""
    return AUDITED_TYPES | frozenset(extra_types)


def policy_types(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The types the policies of a pipeline add, as compiled into its params."""
    governance = params.get("governance") or {}
    return tuple(str(name) for name in governance.get("trusted_types") or ())
