"""Small, deterministic CSV tables for the example pipelines."""

from __future__ import annotations


def loans_csv(rows: int = 400, seed: int = 0) -> str:
    """A small, deterministic credit table with a real signal."""
    import numpy as np

    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows).round(1)
    debt = rng.normal(20, 8, rows).round(1)
    age = rng.integers(19, 75, rows)
    region = rng.choice(["north", "south", "east"], rows)
    risk = 0.08 * debt - 0.05 * income + rng.normal(0, 1, rows)
    default = np.where(risk > np.quantile(risk, 0.7), "yes", "no")
    lines = ["income,debt,age,region,default"]
    rows_ = zip(income, debt, age, region, default, strict=True)
    lines += [",".join(str(v) for v in row) for row in rows_]
    return "\n".join(lines) + "\n"


def sales_csv(years: int = 10) -> str:
    import math

    lines = ["quarter,units"]
    for index in range(years * 4):
        year, quarter = 2010 + index // 4, index % 4 + 1
        units = 100 + 3 * index + 15 * math.sin(2 * math.pi * quarter / 4) + (index * 7 % 5)
        lines.append(f"{year} Q{quarter},{units:.1f}")
    return "\n".join(lines) + "\n"
