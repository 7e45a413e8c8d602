"""The integration tier: real git, DVC, MLflow, pre-commit, workflow steps and the local fake GitHub."""
