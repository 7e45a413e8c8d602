"""The gates of a decision-optimization model (`task: optimize`), one module and one GATES entry
each:

- `feasibility`: every scenario ends as the spec expects: optimal (or stopped at the time limit
  with a solution within the gap), or infeasible where it is marked so;
- `violations`: the largest constraint, bound or integrality violation, recomputed from each
  solution (optimize/check.py) rather than taken from the solver, is within tolerance;
- `optimality`: each solution's relative MIP gap is within the policy's;
- `solve_time`: the 95th percentile of the scenarios' solve times is within the budget.

All four judge reports/<pipeline>/scenarios.json, which the evaluate step writes; `scenarios`
reads it.
"""
