"""Command line: ``python -m xane3.datagen structures|spectra|status|card``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xane3.datagen.generate import CACHE_DIR, SHARD_DIR


def _slabs(args: argparse.Namespace) -> list:
    from xane3.datagen import structures as st
    phases = tuple(args.phases.split(",")) if args.phases else st.PHASES
    facets = (tuple(tuple(int(c) for c in f) for f in args.facets.split(","))
              if args.facets else st.FACETS)
    return st.all_slabs(args.rattled, phases, facets)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.datagen",
                                description="FEFF10 Fe K-edge XANES data set of Fe-oxide slabs.")
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--phases", help="comma list (default: all five)")
    common.add_argument("--facets", help="comma list like 001,012 (default: 001,012,104,110)")
    common.add_argument("--rattled", type=int, default=10, help="rattled copies per slab")
    s = sub.add_parser("structures", parents=[common], help="build the slabs, write extxyz")
    s.add_argument("--out", type=Path, default=CACHE_DIR / "structures.extxyz")
    g = sub.add_parser("spectra", parents=[common], help="run the missing FEFF calculations")
    g.add_argument("--workers", type=int, default=2, help="Ray CPUs (one per FEFF run)")
    g.add_argument("--address", help="Ray cluster address (default: a private local instance)")
    g.add_argument("--quality", choices=("default", "high"), default="default")
    g.add_argument("--limit", type=int, help="at most this many new calculations (tests)")
    g.add_argument("--sites", type=int, default=6, help="Fe sites per slab")
    g.add_argument("--batch", type=int, default=40, help="spectra per shard")
    g.add_argument("--out", type=Path, default=SHARD_DIR, help="shard directory")
    g.add_argument("--cache", type=Path, default=CACHE_DIR, help="cache directory")
    g.add_argument("--settings-json", help="override FeffSettings fields (JSON object)")
    g.add_argument("--retry-failed", action="store_true")
    g.add_argument("--no-progress", action="store_true")
    t = sub.add_parser("status", help="counts of shards and cached results")
    t.add_argument("--out", type=Path, default=SHARD_DIR)
    t.add_argument("--cache", type=Path, default=CACHE_DIR)
    c = sub.add_parser("card", help="write counts + mean/std plot for docs/data.md")
    c.add_argument("--out", type=Path, default=SHARD_DIR)
    c.add_argument("--docs", type=Path, default=Path(__file__).resolve().parents[2] / "docs")
    args = p.parse_args(argv)

    if args.cmd == "structures":
        from ase.io import write

        from xane3.datagen.structures import thickness_and_vacuum
        slabs = _slabs(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frames = []
        for sl in slabs:
            a = sl.atoms.copy()
            a.info.update(phase=sl.phase, facet=sl.facet, rattle=sl.rattle, parent=sl.parent,
                          structure_id=sl.id)
            frames.append(a)
            if sl.rattle == 0:
                th, vac = thickness_and_vacuum(a)
                print(f"{sl.phase:12s} ({sl.facet}) {a.get_chemical_formula():10s} "
                      f"Fe surface {len(sl.surface_fe):3d} inner {len(sl.inner_fe):3d} "
                      f"thickness {th:5.2f} Å vacuum {vac:5.2f} Å  id {sl.id}")
        write(args.out, frames, format="extxyz")
        print(f"{len(slabs)} slabs -> {args.out}")
        return 0
    if args.cmd == "spectra":
        from dataclasses import replace

        from xane3.datagen import feff_runner as fr
        from xane3.datagen.generate import generate
        settings = fr.QUALITY[args.quality]
        if args.settings_json:
            over = json.loads(args.settings_json)
            over = {k: tuple(v) if isinstance(v, list) else v for k, v in over.items()}
            settings = replace(settings, **over)
        counts = generate(args.workers, args.address, args.quality, args.out, args.cache,
                          args.limit, args.batch, args.sites, _slabs(args), settings,
                          args.retry_failed, not args.no_progress)
        print(json.dumps(counts))
        return 0
    if args.cmd == "status":
        from xane3.datagen.generate import status
        print(json.dumps(status(args.out, args.cache), indent=1))
        return 0
    if args.cmd == "card":
        from xane3.datagen.card import write_card
        write_card(args.out, args.docs)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
