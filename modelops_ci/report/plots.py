"""PNG plots for the HTML report, drawn with matplotlib's Agg canvas (no pyplot, no display, no
global state) from the JSON the pipeline already wrote. Each function returns PNG bytes, or None
when the data is not there to draw; the same data always gives the same bytes."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from modelops_ci.gates.result import Check
from modelops_ci.report.format import plain_group, rate_title

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REFERENCE, CURRENT, ACCENT, FAIL, LEFT_OUT = "#4c72b0", "#dd8452", "#55a868", "#cf222e", "#afb8c1"
MAX_POINTS = 2_000
MAX_CATEGORIES = 15
MAX_GROUPS = 20
DPI = 100
TESTS = {"ks": "KS D", "chi2": "chi²"}


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


def _percent() -> Any:
    """Shares as percentages, as many digits as the tick needs: 2.5%, 20%, 0.1%."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value * 100:.3g}%")


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


def metric_intervals(checks: list[Check], confidence: float | None) -> bytes | None:
    """The performance gate: each metric's estimate and CI against its policy bound."""
    rows = [(c, c.statistic) for c in checks if c.statistic is not None][:MAX_GROUPS]
    if not rows:
        return None
    with _figure(6.4, 0.9 + 0.75 * len(rows), columns=1) as (figure, (ax,)):
        for y, (check, stat) in enumerate(rows):
            colour = ACCENT if check.status == "pass" else FAIL
            low, high = _ci(stat, check.ci)
            ax.errorbar([stat], [y], xerr=[[stat - low], [high - stat]], fmt="o", color=colour, capsize=5, lw=2)
            for side, value in (check.threshold or {}).items():
                ax.plot([value, value], [y - 0.35, y + 0.35], color="black", lw=2)
                ax.annotate(f"{side} {value:g}", (value, y + 0.38), ha="center", fontsize=8)
        ax.set_yticks(range(len(rows)), [label(c.name) for c, _ in rows])
        ax.set_ylim(-0.7, len(rows) - 0.2)
        level = f"{confidence:.0%} " if confidence else ""
        ax.set(title=f"Metrics with {level}confidence intervals; black bar: policy bound")
        return _png(figure)


def _ci(statistic: float, ci: Any) -> tuple[float, float]:
    """The interval to draw around `statistic`: a check's (low, high), a group row's [low, high]."""
    stat = float(statistic)
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        return min(float(ci[0]), stat), max(float(ci[1]), stat)
    return stat, stat


def group_rates(feature: str, metric: str, rows: list[dict[str, Any]], floor: float | None = None, *,
                title: str | None = None) -> bytes | None:
    """The fairness gate: a rate per group with its CI as error bars, and the policy's floor; groups
    the disparities leave out (`included` false: too few rows) in grey."""
    rows = rows[:MAX_GROUPS]
    if not rows:
        return None
    with _figure(5.6, 1.5 + 0.42 * len(rows)) as (figure, (ax,)):
        values = [float(r["value"]) for r in rows]
        cis = [_ci(v, r.get("ci")) for v, r in zip(values, rows, strict=True)]
        left_out = [r.get("included") is False for r in rows]
        colours = [LEFT_OUT if out else FAIL if floor is not None and v < floor else REFERENCE
                   for v, out in zip(values, left_out, strict=True)]
        y = list(range(len(rows)))
        ax.barh(y, values, color=colours)
        ax.errorbar(values, y, xerr=[[v - lo for v, (lo, _) in zip(values, cis, strict=True)],
                                     [hi - v for v, (_, hi) in zip(values, cis, strict=True)]],
                    fmt="none", ecolor="black", capsize=4, lw=1.2)
        names = [f"{label(plain_group(str(r.get('group', ''))), 24)}"
                 + (f" (n={r['n']:,}{', too few' if out else ''})" if isinstance(r.get("n"), int) else "")
                 for r, out in zip(rows, left_out, strict=True)]
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        if floor is not None:
            ax.axvline(floor, color=FAIL, ls="--", lw=1.5, label=f"lowest rate the policy allows: {floor:.0%}")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False, fontsize=9)
        ax.set_xlim(0, max(1.0, *(hi for _, hi in cis)))
        ax.xaxis.set_major_formatter(_percent())
        words = title or rate_title(metric)
        ax.set_title(f"{label(words[:1].upper() + words[1:], 50)} by {label(feature)}", fontsize=11)
        return _png(figure)


def drift_feature(check: Check) -> bytes | None:
    """The drift gate: reference vs current for one feature, from its check's details."""
    details = check.details
    moved = details.get("drifted") if isinstance(details.get("drifted"), bool) else check.status != "pass"
    title = f"{label(check.name, 40)}: {'changed' if moved else 'no significant change'}"
    test = TESTS.get(str(details.get("test")), label(details.get("test"), 12))
    if details.get("test") and check.statistic is not None:
        title += f" ({test} {check.statistic:.3g}"
        title += f", p = {check.p_value:.2g})" if check.p_value is not None else ")"
    before, after = details.get("missing_reference"), details.get("missing_current")
    if details.get("kind") == "numeric" and isinstance(before, int | float) and isinstance(after, int | float) \
            and (before or after):
        title += f"\nmissing: {before:.1%} of reference rows, {after:.1%} of current rows"
    histogram, ecdf = details.get("histogram"), details.get("ecdf")
    if isinstance(ecdf, dict):
        return _numeric_drift(title, histogram if isinstance(histogram, dict) else _histogram_of(ecdf), ecdf)
    if isinstance(histogram, dict):
        return _numeric_drift(title, histogram)
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


def _steps(ecdf: dict[str, Any] | None) -> tuple[list[float], list[float], list[float]] | None:
    """The ECDF points to draw: x, reference and current shares (each a list of numbers in order)."""
    if ecdf is None:
        return None
    x, reference, current = ecdf.get("x"), ecdf.get("reference"), ecdf.get("current")
    columns = [x, reference, current]
    if not all(isinstance(c, list) and len(c) == len(columns[0] or []) >= 2 for c in columns):
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for c in columns for v in c or []):
        return None
    return [float(v) for v in x or []], [float(v) for v in reference or []], [float(v) for v in current or []]


def _numeric_drift(title: str, histogram: dict[str, Any], ecdf: dict[str, Any] | None = None) -> bytes | None:
    edges = histogram.get("edges")
    if not isinstance(edges, list) or len(edges) < 2 or not all(isinstance(e, int | float) for e in edges):
        return None
    reference = _shares(histogram.get("reference"), len(edges) - 1)
    current = _shares(histogram.get("current"), len(edges) - 1)
    if reference is None or current is None:
        return None
    points = _steps(ecdf)
    with _figure(5.6, 2.8, columns=2) as (figure, (hist, cumulative_ax)):
        for index, (shares, colour, name) in enumerate(((reference, REFERENCE, "reference"),
                                                        (current, CURRENT, "current"))):
            hist.stairs(shares, edges, color=colour, lw=2, fill=False, label=name)
            if points is None:
                cumulative = [0.0]
                for share in shares:
                    cumulative.append(cumulative[-1] + share)
                cumulative_ax.plot(edges, cumulative, color=colour, lw=2, label=name)
            else:
                cumulative_ax.plot(points[0], points[1 + index], color=colour, lw=2, drawstyle="steps-post",
                                   label=name)
        hist.set(ylabel="share of rows", title="Distribution")
        hist.yaxis.set_major_formatter(_percent())
        cumulative_ax.yaxis.set_major_formatter(_percent())
        tallest, typical = max(max(reference), max(current)), sorted(reference + current)[len(edges) - 1]
        if tallest > 20 * max(typical, 1e-9):
            # one value holds most rows (e.g. a debt of 0): on a linear scale every other bar is flat
            hist.set_yscale("log")
            hist.yaxis.set_major_formatter(_percent())
            hist.set_ylabel("share of rows (log scale)")
        cumulative_ax.set(ylabel="share of rows at or below", ylim=(0, 1.02), title="Cumulative (ECDF)")
        cumulative_ax.legend(loc="lower right")
        figure.suptitle(title, fontsize=11)
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
    with _figure(5.6, 1.5 + 0.32 * len(order)) as (figure, (ax,)):
        y = list(range(len(order)))
        ax.barh([v - 0.2 for v in y], [reference[i] for i in order], height=0.4, color=REFERENCE, label="reference")
        ax.barh([v + 0.2 for v in y], [current[i] for i in order], height=0.4, color=CURRENT, label="current")
        ax.set_yticks(y, [label(labels[i], 24) for i in order])
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(_percent())
        ax.set_xlabel("share of rows")
        ax.set_title(title, fontsize=11)
        ax.legend(loc="lower right")
        return _png(figure)
