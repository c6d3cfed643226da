"""`python -m convkit ...` is the `convkit` command."""
import sys

from .cli import main

sys.exit(main())
