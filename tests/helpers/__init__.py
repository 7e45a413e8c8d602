"""What the tests share besides fixtures: the CLI runners, repo builders, spec texts, fake GitHub."""
