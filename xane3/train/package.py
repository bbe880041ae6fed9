"""``python -m xane3.train.package SRC DST --note TEXT``: make a run's best.pt a file to ship.

What ``xane3/pretrained/`` holds is made with this: the resume state (optimiser, RNG, weight
average) is dropped, which halves the file, and the warm-start path of the training machine
becomes ``--note``, since it names nothing on a user's.
"""

from __future__ import annotations

import argparse

from xane3.atomic import WriteError
from xane3.cli_common import FAILED, fail
from xane3.train.checkpoint import package_checkpoint


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.train.package", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="a checkpoint from `python -m xane3.train` (best.pt)")
    p.add_argument("dst", help="the file to write (atomically)")
    p.add_argument("--note", help="what the run was warm-started from, in words "
                                  "(default: the init_from file's name)")
    args = p.parse_args(argv)
    try:
        package_checkpoint(args.src, args.dst, args.note)
    except WriteError as exc:  # the job ran; its result could not be written
        return fail(exc, FAILED)
    except (OSError, ValueError) as exc:
        return fail(exc)
    print(f"{args.src} -> {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
