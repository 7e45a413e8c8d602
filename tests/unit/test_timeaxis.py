"""Time columns parse to the same order keys with no pandas warning (issue 11, item 12: one warning per
series per stage made 740 lines for 148 monthly series)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from modelops_ci.errors import UserError
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.timeaxis import time_key

CTX = StepContext(Path("."), "series", {"data": {"time": "month"}})
ORDERED = {
    "yearmonth": ["1998 Jan", "1998 Feb", "1998 Dec", "1999 Jan"],  # tsibble's yearmonth, as R writes it
    "long month": ["1998 January", "1998 February", "1998 December", "1999 January"],
    "ISO dates": ["1998-01-31", "1998-02-28", "1998-12-31", "1999-01-31"],
    "ISO months": ["1998-01", "1998-02", "1998-12", "1999-01"],
    "timestamps": ["1998-01-01 00:00:00", "1998-02-01 00:00:00", "1998-12-01 00:00:00", "1999-01-01 00:00:00"],
    "US dates": ["01/31/1998", "02/28/1998", "12/31/1998", "01/31/1999"],
    "quarters": ["1998 Q1", "1998 Q2", "1998 Q4", "1999 Q1"],
}


@pytest.mark.parametrize("values", ORDERED.values(), ids=ORDERED.keys())
def test_time_values_parse_in_order_without_a_warning(values: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keys = time_key(CTX, pd.Series(values))
    assert list(keys.rank()) == [1.0, 2.0, 3.0, 4.0]


def test_a_value_that_is_no_date_is_refused_at_the_time_key() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserError, match="time value 'soon' is not a date"):
            time_key(CTX, pd.Series(["1998 Jan", "soon"]))


def test_day_first_dates_keep_the_format_of_the_first_value() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keys = time_key(CTX, pd.Series(["31/01/1998", "01/02/1998", "02/02/1998"]))
    assert list(keys.rank()) == [1.0, 2.0, 3.0], "01/02 is the 1st of February, as the first value says"
