"""``python -m summaryd.daemon``: the same as the ``summaryd`` command."""

import sys

from .cli import main

sys.exit(main())
