"""What a retraining pull request changes: the recent logged rows as training rows, and the
pipeline's spec pointing its training data at them as well.

The rows keep every feature the model reads and get the target column back from the labels that
arrived later (joined by request id), mapped from how the server wrote its answers (1 and 0 for a
binary classifier) to the spec's classes; a row without a label keeps an empty target, which
ingest drops (it counts them). The spec edit adds the snapshot to `spec.data.source` (a list of
sources is read as one table) and keeps the file's comments and layout (ruamel.yaml's round trip).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

POSITIVE = {"1", "1.0", "True", "true"}
NEGATIVE = {"0", "0.0", "False", "false"}


@dataclass(frozen=True)
class Target:
    """The pipeline's target: its column and, for a binary classifier, its two classes."""

    column: str
    positive: str | None = None
    negative: str | None = None


def snapshot(rows: pd.DataFrame, features: list[str], target: Target) -> pd.DataFrame:
    """The logged rows as training rows: `features`, the target from their labels (empty where no
    label is known), and `request_id` and `time` for lineage."""
    import pandas as pd

    labels = rows["label"] if "label" in rows else pd.Series([None] * len(rows), index=rows.index)
    columns: dict[str, Any] = {name: rows[name].to_numpy() for name in features}
    columns[target.column] = [_class(value, target) for value in labels.to_numpy(dtype=object)]
    columns["request_id"] = rows["request_id"].astype(str).to_numpy() if "request_id" in rows else None
    columns["time"] = rows["time"].to_numpy(dtype=float)
    return pd.DataFrame(columns)


def _class(value: Any, target: Target) -> Any:
    if value is None or value != value:  # None or NaN: not known yet
        return None
    text = str(value)
    if target.positive is not None and text in POSITIVE:
        return target.positive
    if target.negative is not None and text in NEGATIVE:
        return target.negative
    return value  # a label posted as the class itself


def with_source(text: str, display: str, path: str) -> str:
    """The pipeline spec `text` with `{path: ...}` added to its spec.data.source."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError

    yaml = YAML()
    yaml.preserve_quotes = True
    try:
        document = yaml.load(text)
    except YAMLError as exc:
        raise UserError(f"{display}: not YAML ({exc})") from None
    data = (document or {}).get("spec", {}).get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or "source" not in data:
        raise UserError(f"{display}: spec.data.source is not in this file (a template gives it?): add {path} to the "
                        "pipeline's sources yourself")
    added = CommentedMap({"path": path})
    source = data["source"]
    if isinstance(source, list):
        if any(isinstance(item, dict) and item.get("path") == path for item in source):
            return text
        source.append(added)
    else:
        data["source"] = CommentedSeq([source, added])
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()
