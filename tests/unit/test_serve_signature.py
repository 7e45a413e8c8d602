"""A predict body checked against the model's card: each mistake a 4xx that says what and where."""

from __future__ import annotations

import json

import pytest

from modelops_ci.serve.signature import BadRequest, Limits, Signature, check_content_type, check_length, frame, rows_of

SIGNATURE = Signature(numeric=("income", "debt"), categorical=("region",))
ROW = {"income": 50.0, "debt": 20, "region": "north"}


def _refused(body: bytes, limits: Limits | None = None) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        rows_of(body, SIGNATURE, limits or Limits())
    return caught.value


@pytest.mark.parametrize(("body", "status", "message"), [
    (b'{"rows": [', 400, "the body is not JSON: Expecting value at line 1 column 11"),
    (b"{\"row\": \"\xff\"}", 400, "not UTF-8"),
    (b'[1, 2]', 422, 'the body must be {"rows"'),
    (b'{"rows": []}', 422, "rows: the list is empty"),
    (b'{"rows": [7]}', 422, "rows[0]: expected an object of feature values, got 7"),
    (json.dumps({"rows": [ROW, {**ROW, "income": "abc"}]}).encode(), 422,
     'rows[1].income: expected a number, got "abc"'),
    (json.dumps({"row": {**ROW, "debt": True}}).encode(), 422, "rows[0].debt: expected a number, got true"),
    (b'{"row": {"income": NaN, "debt": 1, "region": "x"}}', 422, "rows[0].income: expected a finite number, got nan"),
    (json.dumps({"row": {**ROW, "region": 3}}).encode(), 422, "rows[0].region: expected a string (a category), got 3"),
    (json.dumps({"row": {**ROW, "extra": 1}}).encode(), 422,
     "rows[0]: unknown column 'extra' (the model takes: income, debt, region)"),
    (json.dumps({"row": {"income": 1, "region": "x"}}).encode(), 422,
     "rows[0]: missing column 'debt' (send null for a missing value)"),
    (json.dumps({"rows": [ROW] * 4}).encode(), 413, "rows: 4 rows, over the limit of 3"),
    (json.dumps({"rows": [{**ROW, "debt": [1]}] * 7}).encode(), 422, "and 2 more"),
])
def test_each_mistake_is_refused_with_what_and_where(body: bytes, status: int, message: str) -> None:
    refused = _refused(body, Limits(max_rows=3 if status == 413 else 1000))
    assert refused.status == status
    assert message in str(refused)


def test_a_body_over_the_byte_limit_is_refused_by_its_length_and_by_its_bytes() -> None:
    limits = Limits(max_bytes=100)
    with pytest.raises(BadRequest) as declared:
        check_length("101", limits)
    assert declared.value.status == 413
    assert "over the limit of 100 bytes" in str(declared.value)
    check_length("100", limits)
    check_length(None, limits)
    assert _refused(b" " * 101, limits).status == 413
    with pytest.raises(BadRequest) as garbled:
        check_length("12ab", limits)
    assert garbled.value.status == 400


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_refused(content_type: str | None) -> None:
    with pytest.raises(BadRequest) as caught:
        check_content_type(content_type)
    assert caught.value.status == 415
    assert "Content-Type: application/json" in str(caught.value)
    check_content_type("application/json; charset=utf-8")


def test_nulls_are_allowed_and_the_frame_has_the_cards_order_and_types() -> None:
    rows = rows_of(json.dumps({"rows": [{"region": None, "debt": 3, "income": None}, ROW]}).encode(),
                   SIGNATURE, Limits())
    built = frame(rows, SIGNATURE)
    assert list(built.columns) == ["income", "debt", "region"]
    assert [str(t) for t in built.dtypes[:2]] == ["float64", "float64"]
    assert built["income"].isna().tolist() == [True, False]
    assert built["region"].isna().tolist() == [True, False]
    assert built["region"].iloc[1] == "north"
    assert built["debt"].tolist() == [3.0, 20.0]
