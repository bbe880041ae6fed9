"""``python -m ablations.xanesnet``: Table 1 on XANESNET's public Fe K-edge set.

The baseline is the model ``benchmarks.xanesnet --preset full`` searched (its
``best_config.json``; ablation preset ``xanesnet-cpu``). Only that benchmark's *training
side* is used: the database is rebuilt from the same molecules and split (all of them,
split seed 0), and a seeded draw of ``--molecules`` of its training molecules becomes this
study's data, split again 80/10/10 for the ablations' own train, val and test. The
benchmark's val and holdout molecules are never read into it (checked, not assumed).

Every other option goes to ``python -m ablations.run`` (``--resume``, ``--shard``,
``--seeds``, ``--max-runs``, ``--set`` ...), e.g.::

    python -m ablations.xanesnet all                      # builds the data, then the study
    python -m ablations.xanesnet all --resume --shard 2/2 # continue on another machine
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from xane3.atomic import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "xanesnet-fe-train"
PRESET = "xanesnet-cpu"


def benchmark_sides(root: Path, cache: Path) -> dict[str, list[tuple[Path, Path]]]:
    """The full benchmark's (xyz, spectrum) pairs by split: train / val / test (its holdout)."""
    from benchmarks.xanesnet import base_overrides
    from benchmarks.xanesnet_steps import build_db, select_pairs
    from xane3.config import Config, with_overrides
    from xane3.data.dataset import load_dataset
    from xane3.data.splits import splits_of

    pairs = select_pairs(root, None, 0)  # every molecule, name-sorted: the benchmark's DB order
    full = cache / "benchmark-all.db"
    if not full.exists():
        print(f"building {full} from {len(pairs)} molecules (once)", flush=True)
        build_db(pairs, full)
    cfg = with_overrides(Config(), {**base_overrides("full"), "data.db": str(full), "data.split_seed": 0})
    ds = load_dataset(cfg.data)
    by_source = {str(s): (x, s) for x, s in pairs}
    return {side: [by_source[str(ds.samples[i].meta["source"])] for i in idx]
            for side, idx in splits_of(ds, cfg.data).items()}


def train_side_db(root: Path, cache: Path, molecules: int, seed: int = 0) -> Path:
    """A database of ``molecules`` of the benchmark's training molecules (seeded draw)."""
    from benchmarks.xanesnet_steps import build_db

    cache.mkdir(parents=True, exist_ok=True)
    sides = benchmark_sides(root, cache)
    train = sorted(sides["train"], key=lambda p: p[1].name)
    if molecules > len(train):
        raise ValueError(f"--molecules {molecules}: the benchmark's training side has {len(train)}")
    keep = np.sort(np.random.default_rng(seed).choice(len(train), size=molecules, replace=False))
    chosen = [train[i] for i in keep]
    held = {str(s) for side in ("val", "test") for _, s in sides[side]}
    leaked = [s for _, s in chosen if str(s) in held]
    if leaked:  # cannot happen by construction; a wrong split would make the table a lie
        raise RuntimeError(f"{len(leaked)} chosen molecules are in the benchmark's val/holdout")
    db = cache / f"train-side-{molecules}-seed{seed}.db"
    listed = "".join(f"{x.stem}\n" for x, _ in chosen)
    if not db.exists() or (cache / f"{db.stem}.txt").read_text() != listed:
        build_db(chosen, db)
        write_text_atomic(cache / f"{db.stem}.txt", listed)
    return db


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ablations.xanesnet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--xanesnet", type=Path, default=DEFAULT_DATA,
                   help=f"XANESNET Fe folder (xyz/ + xanes/; default {DEFAULT_DATA})")
    p.add_argument("--molecules", type=int, default=800,
                   help="molecules drawn from the benchmark's training side (default 800)")
    p.add_argument("--cache", type=Path, default=Path("runs/ablations-xanesnet"),
                   help="where the databases are built (default runs/ablations-xanesnet)")
    own, rest = p.parse_known_args(argv)
    if not (own.xanesnet / "xyz").is_dir():
        print(f"error: {own.xanesnet}: no xyz/ folder (the XANESNET Fe set; pass --xanesnet DIR)",
              file=sys.stderr)
        return 2
    if own.molecules < 10:
        print(f"error: --molecules {own.molecules}: at least 10", file=sys.stderr)
        return 2
    try:
        db = train_side_db(own.xanesnet, own.cache.resolve(), own.molecules)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from ablations.run import main as run_main

    named = {a.split("=")[0] for a in rest if a.startswith("--")}
    args = [*rest, *([] if "--preset" in named else ["--preset", PRESET]),
            *([] if "--name" in named else ["--name", f"ablations-{PRESET}-{own.molecules}"]), "--db", str(db)]
    return run_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
