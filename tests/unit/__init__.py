"""The unit tier: pure functions and in-process calls (no subprocess, no git, no DVC, no network)."""
