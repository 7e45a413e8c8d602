"""`verify`'s reading of a DVC lock: an md5 made of digits stays the text DVC wrote."""

from __future__ import annotations

from modelops_ci.registry.evidence import output_digests, parse_lock

# --- more refusals and edges ---------------------------------------------------------------------


def test_an_md5_of_digits_in_a_lock_stays_the_text_dvc_wrote() -> None:
    digits = "12345678901234567890123456789012"  # a YAML int to a typed loader
    lock = f"stages:\n  gates:\n    outs:\n    - path: reports/loans/gates.json\n      md5: {digits}\n"
    assert output_digests(parse_lock(lock.encode())) == {"reports/loans/gates.json": digits}
