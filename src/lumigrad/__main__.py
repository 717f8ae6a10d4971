"""``python -m lumigrad ...`` runs the command line (same as the ``lumigrad`` script)."""
import sys

from .cli import main

sys.exit(main())
