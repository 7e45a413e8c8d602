"""What the prediction log holds: one record per answer, and labels that arrive later.

A request answered by the champion gives one record; one copied to a shadow challenger gives a
second (role "shadow", `served` False); a request refused before any model scored it gives one with
role "none". Features, predictions and scores are JSON text: one item per row of the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["champion", "challenger", "shadow", "none"]
COLUMNS = ("request_id", "model", "version", "role", "served", "time", "latency_ms", "status", "error",
           "features", "prediction", "score")


@dataclass(frozen=True)
class Record:
    """One answer (or refusal) to one request."""

    request_id: str
    model: str  # the model named in the URL
    version: str | None  # the version that answered; None when none did
    role: Role
    served: bool  # this answer was the one returned to the caller
    time: float  # unix seconds when the request arrived
    latency_ms: float  # arrival to answer ready (a shadow: its own scoring time)
    status: int  # the HTTP status (a shadow: 200, or 500 when its scoring failed)
    error: str | None  # what was wrong, for a status >= 400
    features: str  # JSON list of the request's rows (objects); "" when the body was unreadable
    prediction: str  # JSON list, one answer per row; "" when none
    score: str  # JSON list of positive-class probabilities (classifiers); "" otherwise


@dataclass(frozen=True)
class Feedback:
    """The true label of one row of an answered request, known later."""

    request_id: str
    row: int
    label: str  # JSON scalar, as the prediction was written
    time: float
