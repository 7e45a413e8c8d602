"""What the analysis compares a challenger with: the champion's card and its reference profile,
read at the commit of the champion's verified stage tag (never from the work tree, which anyone can
change), through DVC by the md5s that commit's dvc.lock records, as the drift gate builds it from
the training split."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops_ci.errors import UserError
from modelops_ci.gates.profile import Profile
from modelops_ci.layout import Layout
from modelops_ci.registry import evidence
from modelops_ci.registry.dvc_cache import read_output


@dataclass(frozen=True)
class Reference:
    """The champion's card, and its training inputs' profile (None when they cannot be read: input
    drift is then skipped with `why`)."""

    card: dict[str, Any]
    profile: Profile | None
    why: str = ""
    holdout: HoldOut | None = None  # a classifier's held-out scores and labels, for monitoring's estimates
    classes: tuple[str, ...] = ()  # a classifier's target values in its training split, sorted


@dataclass(frozen=True)
class HoldOut:
    """The evaluate step's predictions on the test split: positive-class scores and 0/1 labels."""

    scores: Any  # np.ndarray
    labels: Any  # np.ndarray


def reference(root: Path, name: str, version: str, commit: str) -> Reference:
    from modelops_ci.gates import profile
    from modelops_ci.gates.drift.multivariate import CLASSIFIER_ROWS
    from modelops_ci.gates.drift.univariate import RAW_GRID

    layout = Layout(name)
    claimed = evidence.collect(root, name, commit, version=version)
    card = json.loads(_output(root, layout.model_card, commit, claimed.model))
    numeric, categorical = list(card.get("numeric") or ()), list(card.get("categorical") or ())
    try:
        import pandas as pd

        train = pd.read_parquet(io.BytesIO(_output(root, layout.train, commit, claimed.data)))
        built = profile.build(train, numeric, categorical, grid=RAW_GRID, sample_rows=CLASSIFIER_ROWS)
    except (UserError, ValueError, KeyError) as exc:
        return Reference(card, None, f"the champion's training split cannot be read ({exc})")
    classes: tuple[str, ...] = ()
    if card.get("task") == "classification" and card.get("target") in train:
        classes = tuple(sorted({str(v) for v in train[card["target"]].dropna()}))
    return Reference(card, built, holdout=_holdout(root, layout, commit, card), classes=classes)


def _holdout(root: Path, layout: Layout, commit: str, card: dict[str, Any]) -> HoldOut | None:
    """A classifier's held-out predictions at `commit`, by the md5 its dvc.lock records; None when the
    model is no classifier or they cannot be read (estimates are then left out, not guessed)."""
    import pandas as pd
    import yaml

    from modelops_ci import git
    from modelops_ci.registry.evidence import output_digests

    if card.get("task") != "classification":
        return None
    try:
        lock = yaml.safe_load(git.show_file(root, commit, layout.lock) or b"") or {}
        frame = pd.read_parquet(io.BytesIO(_output(root, layout.predictions, commit, output_digests(lock))))
        return HoldOut(frame["y_score"].to_numpy(dtype=float), frame["y_true"].to_numpy(dtype=float))
    except (UserError, ValueError, KeyError, yaml.YAMLError):
        return None


def _output(root: Path, relative: str, commit: str, digests: dict[str, str]) -> bytes:
    md5 = digests.get(relative)
    if not md5:
        raise UserError(f"the dvc.lock at {commit[:12]} records no {relative}: it is not a DVC output there")
    return read_output(root, relative, commit, md5)
