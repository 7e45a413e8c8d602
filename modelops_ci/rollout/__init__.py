"""The roll-out reconciler: the analysis of logged traffic, and the decision it commits."""
