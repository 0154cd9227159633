"""`python -m agent.cli` runs the `godwit` command."""

import sys

from agent.cli import main

sys.exit(main())
