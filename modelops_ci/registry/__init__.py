"""The model registry: git tags are the database (DESIGN §7), in GTO's grammar so its readers
interoperate. Read-only for now: which version of a model holds a stage."""
