"""`modelops-ci contract infer`: a pipeline's data contract inferred from its data, written into git."""

from __future__ import annotations

from pathlib import Path

from modelops_ci.errors import UserError
from modelops_ci.gates.data import GATE, contract_path, infer_contract, write_contract
from modelops_ci.layout import Layout


def infer(root: Path, pipeline: str) -> Path:
    """Ingest `pipeline`'s data if it is not there yet, then write its inferred contract; returns the file."""
    from modelops_ci.commands import run as runner

    if not (root / Layout(pipeline).dataset).is_file():
        runner.run(root, [pipeline], upto="ingest")
    return write_inferred(root.resolve(), pipeline)


def write_inferred(root: Path, pipeline: str) -> Path:
    """Infer the contract from the ingested dataset and write it where the gate reads it; returns
    the file written. The dataset must be there (`ingest` first)."""
    from modelops_ci.steps.context import load_context
    from modelops_ci.steps.frames import read_parquet

    ctx = load_context(root, pipeline)
    dataset = ctx.path(ctx.layout.dataset)
    if not dataset.is_file():
        raise UserError(f"{ctx.layout.dataset}: not found: ingest the data first "
                        f"(`modelops-ci step ingest {pipeline}` or `modelops-ci run {pipeline}`)")
    settings = (ctx.params.get("gates") or {}).get(GATE) or {}
    contract = infer_contract(read_parquet(dataset), ctx.data, ctx.task)
    return write_contract(ctx.root, pipeline, contract, contract_path(pipeline, settings))
