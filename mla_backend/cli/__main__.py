"""`python -m mla_backend.cli ...`: the `mla-backend` command, where the console script is not on PATH."""

import sys

from .main import main

sys.exit(main())
