"""The example's decision-model formulations (plug-ins a `task: optimize` spec names)."""
