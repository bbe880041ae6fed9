"""``python -m search.trust EXP_DIR``: vouch for an experiment folder made before signatures.

``--resume`` unpickles Tune's state only in folders this user's xane3 signed; folders made
by xane3 before 2026-12 have no signature. Signing one says "I made this": the folder must
still be this user's and not writable by others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from search.claim import UntrustedExperiment, trust


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m search.trust", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dir", type=Path, nargs="+", help="experiment folder(s), e.g. experiments/NAME")
    args = p.parse_args(argv)
    for exp in args.exp_dir:
        try:
            trust(exp)
        except (FileNotFoundError, UntrustedExperiment) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{exp}: signed; --resume will continue it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
