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
    return Reference(card, built)


def _output(root: Path, relative: str, commit: str, digests: dict[str, str]) -> bytes:
    md5 = digests.get(relative)
    if not md5:
        raise UserError(f"the dvc.lock at {commit[:12]} records no {relative}: it is not a DVC output there")
    return read_output(root, relative, commit, md5)
