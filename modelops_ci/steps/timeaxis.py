"""Turning a time column (dates, '1981 Q1' quarters, years) into sortable keys and calendar facts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from modelops_ci.steps.context import StepContext

if TYPE_CHECKING:
    import pandas as pd

# Months as R's yearmonth prints them ('1998 Jan'), which pandas cannot guess: parsed by format they
# take milliseconds, by dateutil value by value ("mixed") 50 ms per 1,000 rows, four times per series.
_MONTHS = ("%Y %b", "%Y %B", "%b %Y", "%B %Y")
_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.IGNORECASE)


def time_key(ctx: StepContext, series: pd.Series) -> pd.Series:
    """An ordered numeric key per row: quarters and dates become comparable numbers."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    text = series.astype(str)
    if len(text) and _QUARTER.match(text.iloc[0]):  # checked on every row only when the first is one
        quarters = text.str.extract(_QUARTER)
        if quarters.notna().all().all():
            return quarters[0].astype(int) * 4 + quarters[1].astype(int) - 1
    parsed = _dates(text)
    if parsed.isna().any():
        bad = text[parsed.isna()].iloc[0]
        raise ctx.fail("spec.data.time", f"time value {bad!r} is not a date, a quarter like '1981 Q1', "
                       "or a number", "fix the time column")
    return parsed.astype("int64").astype(float)


def _dates(text: pd.Series) -> pd.Series:
    """The values as dates, parsed as pandas would by default: in the format it guesses from the
    first value, else by dateutil value by value ('1998 Jan', R's yearmonth). Asked for by name
    ("mixed"), the fallback raises no warning (it was one per series per stage: 740 lines for a
    panel of 148 series); nor does a guess that the first value puts the day first."""
    import warnings

    import pandas as pd
    from pandas.tseries.api import guess_datetime_format

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        guessed = guess_datetime_format(str(text.iloc[0])) if len(text) else None
    for layout in ([guessed] if guessed else []) + list(_MONTHS):
        parsed = pd.to_datetime(text, errors="coerce", format=layout)
        if parsed.notna().all():
            return parsed
    return pd.to_datetime(text, errors="coerce", format="mixed")
