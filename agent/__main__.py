"""`python -m agent` runs the `godwit` command in this process (never through the fork server:
with `-m`, Python puts the current folder first on sys.path, which a forked child cannot copy)."""

import sys

from agent.cli import main

sys.exit(main())
