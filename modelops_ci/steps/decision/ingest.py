"""ingest (task: optimize): the scenario table (`data.source`, cut into scenarios by `data.scenario`)
and the tables every scenario shares (`data.inputs`) → parquet files, and the lineage of packaged
datasets in profile.json (what the registry's evidence cites)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from modelops_ci.steps import ingest
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.frames import filter_rows, require_column, write_parquet

if TYPE_CHECKING:
    import pandas as pd

WHOLE_TABLE = "all"  # the one scenario's name when no `data.scenario` column cuts the table


def run(ctx: StepContext) -> dict[str, Any]:
    from modelops_ci.steps.sources import packaged_sources

    frame = filter_rows(ctx, ingest.read(ctx), ctx.data.get("filter") or {}, "spec.data.filter")
    column = ctx.data.get("scenario")
    if column:
        require_column(ctx, frame, column, "spec.data.scenario")
    frame = _kept_columns(ctx, frame.reset_index(drop=True), column)
    inputs = ctx.data.get("inputs") or {}
    tables = {str(name): ingest.read_source(ctx, item, f"spec.data.inputs.{name}") for name, item in inputs.items()}
    write_parquet(frame, ctx.path(ctx.layout.dataset))
    _write_inputs(ctx, tables)
    profile: dict[str, Any] = {"rows": len(frame), "scenarios": len(scenario_names(frame, column))}
    source = ctx.data["source"]
    packaged = packaged_sources([*(source if isinstance(source, list) else [source]), *inputs.values()])
    if packaged:
        profile["sources"] = packaged
    ctx.write_json(ctx.layout.profile, profile)
    return {"rows": len(frame), "scenarios": profile["scenarios"], "inputs": len(tables)}


def _kept_columns(ctx: StepContext, frame: pd.DataFrame, scenario: str | None) -> pd.DataFrame:
    """The columns the formulation reads (`data.columns`), with the one naming the scenarios."""
    wanted = [str(c) for c in ctx.data.get("columns") or []]
    for index, name in enumerate(wanted):
        require_column(ctx, frame, name, f"spec.data.columns.{index}")
    return frame[list(dict.fromkeys([*([scenario] if scenario else []), *wanted]))] if wanted else frame


def scenario_names(frame: pd.DataFrame, column: str | None) -> list[str]:
    """The scenarios in the order they first appear (a table without `data.scenario` is one)."""
    if not column:
        return [WHOLE_TABLE]
    return [str(value) for value in frame[column].dropna().unique()]


def _write_inputs(ctx: StepContext, tables: dict[str, pd.DataFrame]) -> None:
    """The shared tables, one parquet each, swapped in whole so a crash leaves the old folder."""
    folder = ctx.path(ctx.layout.inputs)
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, table in tables.items():
        write_parquet(table, staging / f"{name}.parquet")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
