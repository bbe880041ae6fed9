"""``python -m benchmarks.train_step``: one training step of the default model, CPU time.

A batch of 16 spectra (16 Fe absorbers) of one periodic Fe-oxide slab built by
``xane3.datagen``: per-structure (backbone once, 16 readouts) against
per-absorber (16 graph copies, the paper's form). Reports the median of a few
steps after a warm-up, with process CPU time beside wall time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from xane3.cli_common import parse_set, positive_int
from xane3.config import Config, TrainConfig, with_overrides
from xane3.data.graphs import StructureGraph, collate
from xane3.datagen.cli import facets_arg, phases_arg
from xane3.model import XANE3
from xane3.train.optim import make_optimizer
from xane3.train.step import train_step


def step_times(model, batch, target, mask, steps: int, t: TrainConfig | None = None) -> tuple[float, float]:
    """Median wall and process-CPU seconds of the trainer's own step (first one is warm-up)."""
    t = t or TrainConfig()
    opt = make_optimizer(model, t)
    tgt = {"spectrum": target, "mask": mask}
    wall, cpu = [], []
    for k in range(steps + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        train_step(model, batch, tgt, opt, t, torch.device("cpu"))
        if k:  # first step is warm-up
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__)
    p.add_argument("--phase", default=("alpha-Fe2O3",), type=phases_arg, help="one of xane3.datagen's phases")
    p.add_argument("--facet", default=((1, 0, 4),), type=facets_arg, help="Miller index as digits, e.g. 104")
    p.add_argument("--steps", type=positive_int, default=3)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    args = p.parse_args(argv)
    from xane3.datagen.structures import make_slab

    if len(args.phase) != 1 or len(args.facet) != 1:
        p.error("one --phase and one --facet")
    args.phase, miller = args.phase[0], args.facet[0]
    args.facet = "".join(map(str, miller))
    slab = make_slab(args.phase, miller).atoms
    cfg = with_overrides(Config(), parse_set(args.set))
    torch.manual_seed(0)
    model = XANE3(cfg.model)
    graph = StructureGraph.from_atoms(slab, cfg.model.r_max)
    fe = [i for i, z in enumerate(slab.numbers) if z == 26][:16]
    target = torch.rand(len(fe), cfg.model.n_points)
    mask = torch.ones_like(target, dtype=torch.bool)
    print(f"slab {args.phase} ({args.facet}): {len(slab)} atoms, {graph.edge_index.shape[1]} edges, "
          f"{len(fe)} absorbers; model {model.num_parameters():,} parameters; "
          f"torch threads {torch.get_num_threads()}")
    res = {}
    for mode in ("structure", "absorber"):
        batch = collate([graph], [(0, [a]) for a in fe], mode, model.geometry)
        res[mode] = step_times(model, batch, target, mask, args.steps)
        print(f"{mode:<10} step: wall {res[mode][0]:.2f} s, cpu {res[mode][1]:.2f} s")
    print(f"speed-up per-structure vs per-absorber (wall): {res['absorber'][0] / res['structure'][0]:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
