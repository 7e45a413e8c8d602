"""The spec language: loading YAML with positions, JSON Schemas, resolution."""
