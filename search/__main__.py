"""``python -m search``: the same CLI as ``python -m search.run``."""

from search.run import main

raise SystemExit(main())
