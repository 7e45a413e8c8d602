"""The command line: wiring only (parse, call, print)."""
