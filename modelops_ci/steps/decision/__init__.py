"""The steps of a decision pipeline (`task: optimize`): ingest the scenarios, build each scenario's
problem, solve each, evaluate each independently of the solver. Each is `run(ctx)` like the ML steps."""
