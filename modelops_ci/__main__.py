from __future__ import annotations

from modelops_ci.cli.main import main

main()
