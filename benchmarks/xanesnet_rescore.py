"""``python -m benchmarks.xanesnet_rescore --checkpoint CKPT --per-spectrum CSV``: the holdout
score again, through the public command only.

Copies the holdout molecules named in a benchmark's ``per_spectrum.csv`` out of the XANESNET
folder, runs ``python -m xane3.predict --format xanesnet`` on them, reads the written files
back with ``numpy.loadtxt`` beside the set's own and prints the mean raw MSE: what any
scorer that reads XANESNET spectra would get, independent of the benchmark's own code.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def rescore(checkpoint: Path, per_spectrum: Path, train: Path, split: str = "holdout") -> tuple[int, float]:
    names = sorted(set(pd.read_csv(per_spectrum).query("split == @split")["source"]))
    if not names:
        raise ValueError(f"{per_spectrum}: no {split} rows")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "xyz").mkdir()
        for n in names:
            shutil.copy(train / "xyz" / f"{n}.xyz", d / "xyz")
        subprocess.run([sys.executable, "-m", "xane3.predict", "--checkpoint", str(checkpoint),
                        "--format", "xanesnet", "--out", str(d / "pred"), str(d / "xyz")],
                       check=True, capture_output=True)
        errs = []
        for n in names:
            pred = np.loadtxt(d / "pred" / f"{n}.txt", skiprows=2)
            ref = np.loadtxt(train / "xanes" / f"{n}.txt", skiprows=2)
            if not np.allclose(pred[:, 0], ref[:, 0], atol=0.01):
                raise ValueError(f"{n}: the prediction's energy grid is not the set's")
            errs.append(float(np.mean((pred[:, 1] - ref[:, 1]) ** 2)))
    return len(names), float(np.mean(errs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.xanesnet_rescore", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--per-spectrum", required=True, type=Path, help="a benchmark's per_spectrum.csv")
    p.add_argument("--train", type=Path, default=Path("../shared/data/xanesnet-fe-train"),
                   help="XANESNET folder with xyz/ and xanes/ (default ../shared/data/xanesnet-fe-train)")
    p.add_argument("--split", default="holdout", help="holdout (default) | val")
    args = p.parse_args(argv)
    try:
        n, mse = rescore(args.checkpoint, args.per_spectrum, args.train, args.split)
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{n} {args.split} molecules, predict --format xanesnet: raw MSE {mse:.4e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
