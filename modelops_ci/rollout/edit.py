"""The deployment file after a roll-out decision: the one edit each decision makes to one model.

advance: the challenger's weight moves to the next step; abort: its weight goes to 0; promote: the
challenger becomes the champion (it holds the stage's verified tag already: the server would not
have served it otherwise), the old champion leaves the file. `since` records when the weight was
set, so the next analysis starts there. The file's leading comment is kept; everything else is
written back as YAML in the order promotion-request writes it.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml

from modelops_ci.errors import UserError

Change = Literal["advance", "abort", "promote"]
_ORDER = ("champion", "challenger", "mode", "weight", "since", "steps", "analysis", "abort", "commits")


def edited(text: str, display: str, name: str, change: Change, *, weight: int, now: float) -> str:
    """`text` (a deployment file) with `change` made to model `name`: `weight` is the new share for
    advance (ignored otherwise); `now` is written as `since`."""
    document = _document(text, display, name)
    entry: dict[str, Any] = dict(document["spec"]["models"][name])
    if change == "promote":
        entry["champion"] = entry.pop("challenger")
        entry.pop("weight", None)
    else:
        entry["weight"] = weight if change == "advance" else 0
    entry["since"] = round(now, 3)
    named = {entry.get("champion"), entry.get("challenger")}
    if isinstance(entry.get("commits"), dict):
        entry["commits"] = {v: c for v, c in entry["commits"].items() if v in named}
    document["spec"]["models"][name] = {k: entry[k] for k in sorted(entry, key=_rank)}
    return _comment(text) + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def _rank(key: str) -> int:
    return _ORDER.index(key) if key in _ORDER else len(_ORDER)


def _document(text: str, display: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    models = loaded.get("spec", {}).get("models") if isinstance(loaded, dict) else None
    if not isinstance(models, dict) or not isinstance(models.get(name), dict):
        raise UserError(f"{display}: deploys no model '{name}': nothing to change")
    return loaded


def _comment(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)
