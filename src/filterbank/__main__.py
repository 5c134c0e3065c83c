"""``python -m filterbank``: the same as the ``filterbank`` command (see :mod:`filterbank.cli`)."""

import sys

from filterbank.cli import main

sys.exit(main())
