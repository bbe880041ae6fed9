"""``python -m xane3.datagen``: see :mod:`xane3.datagen.cli`."""

import sys

from xane3.datagen.cli import main

sys.exit(main())
