"""Executors: generate a runnable pipeline for a target platform from the governed specs."""
