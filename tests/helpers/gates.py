"""Reading a gate's result in tests: one named check, and the payload as strict JSON."""

from __future__ import annotations

import json
from typing import Any

from modelops_ci.gates.result import Check, GateResult


def check(result: GateResult, name: str) -> Check:
    found = [c for c in result.checks if c.name == name]
    assert found, [c.name for c in result.checks]
    return found[0]


def json_safe(result: GateResult) -> dict[str, Any]:
    payload = result.to_json()
    json.dumps(payload, allow_nan=False)
    return payload
