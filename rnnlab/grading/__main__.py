"""``python -m rnnlab.grading autograde|feedback <assignment> [options]``: see :mod:`rnnlab.grading.command.cli`."""

import sys

from .command.cli import main

sys.exit(main())
