"""One module per CLI command: thin orchestration over the packages."""
