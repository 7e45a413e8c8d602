"""PNG plots for the HTML report, drawn with matplotlib's Agg canvas (no pyplot, no display, no
global state) from the JSON the pipeline already wrote. Each function returns PNG bytes, or None
when the data is not there to draw; the same data always gives the same bytes."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REFERENCE, CURRENT, ACCENT, FAIL = "#4c72b0", "#dd8452", "#55a868", "#cf222e"
MAX_POINTS = 2_000
MAX_CATEGORIES = 15
MAX_GROUPS = 20
DPI = 100
RATE_LABELS = {"selection_rate": "positive-prediction rate", "true_positive_rate": "true positive rate",
               "false_positive_rate": "false positive rate"}


def label(value: Any, limit: int = 30) -> str:
    """Data as literal plot text: `$` would start matplotlib's math mode (and may not parse)."""
    flat = " ".join(str(value).split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return flat.replace("$", r"\$")


@contextmanager
def _figure(width: float = 6.4, height: float = 3.6, columns: int = 1) -> Iterator[tuple[Figure, list[Axes]]]:
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):  # the user's matplotlibrc must not change the report
        figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = [figure.add_subplot(1, columns, i + 1) for i in range(columns)]
        for ax in axes:
            ax.grid(True, alpha=0.3)
        yield figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})  # no version stamp
    return buffer.getvalue()


def _numbers(points: list[dict[str, Any]], *keys: str) -> list[tuple[float, ...]]:
    rows = []
    for point in points:
        values = [point.get(k) for k in keys]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            rows.append(tuple(float(v) for v in values))  # type: ignore[arg-type]
    if len(rows) > MAX_POINTS:
        step = len(rows) / MAX_POINTS
        rows = [rows[int(i * step)] for i in range(MAX_POINTS)]
    return rows


# --- the hold-out ------------------------------------------------------------------------------


def curve(kind: str, points: list[dict[str, Any]]) -> bytes | None:
    """One of evaluate's plots/<kind>.json: roc, precision_recall, calibration, residuals, forecast."""
    drawers: dict[str, Callable[[list[dict[str, Any]]], bytes | None]] = {
        "roc": _roc, "precision_recall": _precision_recall, "calibration": _calibration,
        "residuals": _residuals, "forecast": _forecast}
    return drawers[kind](points) if kind in drawers else None


def _roc(points: list[dict[str, Any]]) -> bytes | None:
    rows = _numbers(points, "fpr", "tpr")
    if len(rows) < 2:
        return None
    with _figure(4.8, 4.2) as (figure, (ax,)):
        ax.plot([r[0] for r in rows], [r[1] for r in rows], color=REFERENCE, lw=2, label="model")
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="chance")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve",
               xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="lower right")
        return _png(figure)


def _precision_recall(points: list[dict[str, Any]]) -> bytes | None:
    rows = _numbers(points, "recall", "precision")
    if len(rows) < 2:
        return None
    with _figure(4.8, 4.2) as (figure, (ax,)):
        ax.plot([r[0] for r in rows], [r[1] for r in rows], color=REFERENCE, lw=2)
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", xlim=(0, 1), ylim=(0, 1.01))
        return _png(figure)


def _calibration(points: list[dict[str, Any]]) -> bytes | None:
    rows = _numbers(points, "predicted", "observed")
    if not rows:
        return None
    with _figure(4.8, 4.2) as (figure, (ax,)):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfectly calibrated")
        ax.plot([r[0] for r in rows], [r[1] for r in rows], color=REFERENCE, marker="o", lw=2, label="model")
        ax.set(xlabel="predicted probability", ylabel="observed frequency", title="Calibration",
               xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="upper left")
        return _png(figure)


def _residuals(points: list[dict[str, Any]]) -> bytes | None:
    rows = _numbers(points, "predicted", "residual")
    if not rows:
        return None
    with _figure() as (figure, (ax,)):
        ax.scatter([r[0] for r in rows], [r[1] for r in rows], s=8, alpha=0.5, color=REFERENCE)
        ax.axhline(0, color="grey", ls="--", lw=1)
        ax.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals")
        return _png(figure)


def _forecast(points: list[dict[str, Any]]) -> bytes | None:
    rows = [p for p in points if _numbers([p], "actual", "forecast")][:MAX_POINTS]
    if not rows:
        return None
    with _figure(8, 3.6) as (figure, (ax,)):
        x = list(range(len(rows)))
        ax.plot(x, [float(r["actual"]) for r in rows], color=REFERENCE, lw=2, label="actual")
        ax.plot(x, [float(r["forecast"]) for r in rows], color=CURRENT, lw=2, ls="--", label="forecast")
        ticks = x[:: max(1, len(x) // 8)]
        ax.set_xticks(ticks, [label(rows[i].get("time", i), 12) for i in ticks], rotation=30, ha="right")
        ax.set(title="Forecast vs actual on the hold-out")
        ax.legend()
        return _png(figure)


# --- gates -------------------------------------------------------------------------------------


def metric_intervals(checks: list[dict[str, Any]], confidence: float | None) -> bytes | None:
    """The performance gate: each metric's estimate and CI against its policy bound."""
    rows = [c for c in checks if isinstance(c.get("statistic"), int | float)][:MAX_GROUPS]
    if not rows:
        return None
    with _figure(6.4, 0.9 + 0.75 * len(rows), columns=1) as (figure, (ax,)):
        for y, check in enumerate(rows):
            colour = ACCENT if check["status"] == "pass" else FAIL
            low, high = _ci(check)
            ax.errorbar([check["statistic"]], [y], xerr=[[check["statistic"] - low], [high - check["statistic"]]],
                        fmt="o", color=colour, capsize=5, lw=2)
            for side, value in (check.get("threshold") or {}).items():
                ax.plot([value, value], [y - 0.35, y + 0.35], color="black", lw=2)
                ax.annotate(f"{side} {value:g}", (value, y + 0.38), ha="center", fontsize=8)
        ax.set_yticks(range(len(rows)), [label(c["name"]) for c in rows])
        ax.set_ylim(-0.7, len(rows) - 0.2)
        level = f"{confidence:.0%} " if confidence else ""
        ax.set(title=f"Metrics with {level}confidence intervals; black bar: policy bound")
        return _png(figure)


def _ci(check: dict[str, Any]) -> tuple[float, float]:
    ci = check.get("ci")
    stat = float(check["statistic"])
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        return min(float(ci[0]), stat), max(float(ci[1]), stat)
    return stat, stat


def group_rates(feature: str, metric: str, rows: list[dict[str, Any]], floor: float | None = None) -> bytes | None:
    """The fairness gate: a rate per group with its CI as error bars, and the policy's floor."""
    rows = rows[:MAX_GROUPS]
    if not rows:
        return None
    with _figure(6.4, 1.2 + 0.45 * len(rows)) as (figure, (ax,)):
        values = [float(r["value"]) for r in rows]
        cis = [_ci({"statistic": v, "ci": r.get("ci")}) for v, r in zip(values, rows, strict=True)]
        colours = [FAIL if floor is not None and v < floor else REFERENCE for v in values]
        y = list(range(len(rows)))
        ax.barh(y, values, color=colours)
        ax.errorbar(values, y, xerr=[[v - lo for v, (lo, _) in zip(values, cis, strict=True)],
                                     [hi - v for v, (_, hi) in zip(values, cis, strict=True)]],
                    fmt="none", ecolor="black", capsize=4, lw=1.2)
        names = [f"{label(r.get('group', ''), 24)}" + (f" (n={r['n']:,})" if isinstance(r.get("n"), int) else "")
                 for r in rows]
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        if floor is not None:
            ax.axvline(floor, color=FAIL, ls="--", lw=1.5, label=f"policy floor {floor:.2f}")
            ax.legend(loc="lower right")
        ax.set_xlim(0, max(1.0, *(hi for _, hi in cis)))
        ax.set(xlabel=RATE_LABELS.get(metric, label(metric)), title=f"{label(RATE_LABELS.get(metric, metric))} "
                                                                     f"by {label(feature)}")
        return _png(figure)


def drift_feature(check: dict[str, Any]) -> bytes | None:
    """The drift gate: reference vs current for one feature, from its check's details."""
    details = check.get("details") or {}
    title = f"{label(check['name'], 40)}: {check['status']}"
    if isinstance(details.get("test"), str) and isinstance(check.get("statistic"), int | float):
        title += f" ({label(details['test'], 12)} {check['statistic']:.3g}"
        title += f", p = {check['p_value']:.2g})" if isinstance(check.get("p_value"), int | float) else ")"
    histogram = details.get("histogram")
    if isinstance(histogram, dict):
        return _numeric_drift(title, histogram)
    ecdf = details.get("ecdf")
    if isinstance(ecdf, dict):
        return _numeric_drift(title, _histogram_of(ecdf))
    categories = details.get("category_counts")
    if isinstance(categories, dict):
        return _categorical_drift(title, categories)
    return None


def _histogram_of(ecdf: dict[str, Any]) -> dict[str, Any]:
    """ECDF points (share of rows at or below each x) as a histogram over the same points."""
    def masses(cumulative: Any) -> Any:
        if not isinstance(cumulative, list) or not all(isinstance(c, int | float) for c in cumulative):
            return None
        return [max(0.0, float(b) - float(a)) for a, b in pairwise(cumulative)]

    return {"edges": ecdf.get("x"), "reference": masses(ecdf.get("reference")),
            "current": masses(ecdf.get("current"))}


def _shares(counts: Any, length: int) -> list[float] | None:
    if not isinstance(counts, list) or len(counts) != length:
        return None
    if not all(isinstance(c, int | float) and not isinstance(c, bool) and c >= 0 for c in counts):
        return None
    total = float(sum(counts))
    return [float(c) / total if total else 0.0 for c in counts]


def _numeric_drift(title: str, histogram: dict[str, Any]) -> bytes | None:
    edges = histogram.get("edges")
    if not isinstance(edges, list) or len(edges) < 2 or not all(isinstance(e, int | float) for e in edges):
        return None
    reference = _shares(histogram.get("reference"), len(edges) - 1)
    current = _shares(histogram.get("current"), len(edges) - 1)
    if reference is None or current is None:
        return None
    with _figure(5.5, 2.8, columns=2) as (figure, (hist, ecdf)):
        for shares, colour, name in ((reference, REFERENCE, "reference"), (current, CURRENT, "current")):
            hist.stairs(shares, edges, color=colour, lw=2, fill=False, label=name)
            cumulative = [0.0]
            for share in shares:
                cumulative.append(cumulative[-1] + share)
            ecdf.plot(edges, cumulative, color=colour, lw=2, label=name)
        hist.set(ylabel="share of rows", title="Distribution")
        ecdf.set(ylabel="cumulative share", ylim=(0, 1.02), title="ECDF")
        ecdf.legend(loc="lower right")
        figure.suptitle(title)
        return _png(figure)


def _categorical_drift(title: str, categories: dict[str, Any]) -> bytes | None:
    labels = categories.get("labels")
    if not isinstance(labels, list) or not labels:
        return None
    reference = _shares(categories.get("reference"), len(labels))
    current = _shares(categories.get("current"), len(labels))
    if reference is None or current is None:
        return None
    order = sorted(range(len(labels)), key=lambda i: -max(reference[i], current[i]))[:MAX_CATEGORIES]
    with _figure(5.5, 1.4 + 0.3 * len(order)) as (figure, (ax,)):
        y = list(range(len(order)))
        ax.barh([v - 0.2 for v in y], [reference[i] for i in order], height=0.4, color=REFERENCE, label="reference")
        ax.barh([v + 0.2 for v in y], [current[i] for i in order], height=0.4, color=CURRENT, label="current")
        ax.set_yticks(y, [label(labels[i], 24) for i in order])
        ax.invert_yaxis()
        ax.set(xlabel="share of rows", title=title)
        ax.legend(loc="lower right")
        return _png(figure)
