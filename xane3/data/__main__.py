"""``python -m xane3.data ingest|info``: see xane3.data.cli."""

import sys

from xane3.data.cli import main

sys.exit(main())
