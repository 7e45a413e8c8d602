from __future__ import annotations

from modelops_ci.cli import main

main()
