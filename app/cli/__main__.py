"""`python -m app.cli` runs the `hearth` command."""

import sys

from app.cli import main

sys.exit(main())
