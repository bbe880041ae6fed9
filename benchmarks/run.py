"""``python -m benchmarks.run``: training/inference/data throughput and the speed-up ratios.

Each training mode runs in its own subprocess so its peak memory (max RSS on CPU,
max allocated on CUDA) is its own. Modes, all the same model and config:

- ``structure``: structure-level batches (backbone once per structure), cached geometry
- ``absorber``: one graph copy per absorber (the paper's form), cached geometry
- ``plain``: one graph per absorber, edge features recomputed every step (a plain
  e3nn model: FullyConnectedTensorProduct per edge with radial-MLP weights, no caching)

Printed one figure per line, then the ratios measured side by side in this run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from benchmarks.common import batches, machine_line, peak_memory_mb, run_child, sync
from xane3.cli_common import add_db, count_int, positive_int

MODES = ("structure", "absorber", "plain")


def _dataset(args):
    from xane3.config import Config, with_overrides
    from xane3.data.dataset import load_dataset

    over = {"data.db": args.db} if args.db else {}
    cfg = with_overrides(Config(), over)
    t0 = time.perf_counter()
    ds = load_dataset(cfg.data)
    return cfg, ds, time.perf_counter() - t0


def run_mode(args) -> dict:
    """Child process: time training steps (and inference) of one mode."""
    from xane3.data.loader import SpectrumLoader
    from xane3.model import XANE3
    from xane3.train.accel import forward_fn, resolve_device, to_device
    from xane3.train.optim import make_optimizer
    from xane3.train.step import train_step

    torch.manual_seed(0)
    device = resolve_device(args.device)
    cfg, ds, _ = _dataset(args)
    model = XANE3(cfg.model).to(device)
    forward = forward_fn(model, args.compile)  # compiled, or eager with a warning if that fails
    geometry = None if args.mode == "plain" else XANE3(cfg.model).geometry
    mode = "structure" if args.mode == "structure" else "absorber"
    loader = SpectrumLoader(ds, range(len(ds)), args.batch_size, mode=mode, geometry=geometry)
    opt = make_optimizer(model, cfg.train)
    chunks = batches(ds, args.warmup + args.steps, args.batch_size)
    n_spec = n_struct = 0
    elapsed = 0.0
    for k, chunk in enumerate(chunks):
        t0 = time.perf_counter()
        batch, tgt, _ = loader.make_batch(chunk)  # batch assembly is part of the cost
        batch, tgt = to_device(batch, tgt, device)  # as the training loop moves them
        train_step(model, batch, tgt, opt, cfg.train, device, forward=forward)  # the trainer's
        sync(device)
        if k >= args.warmup:
            elapsed += time.perf_counter() - t0
            n_spec += len(chunk)
            n_struct += len({ds.samples[i].graph for i in chunk})
    res = {"mode": args.mode, "device": str(device), "steps": args.steps,
           "train_spectra_per_s": n_spec / elapsed, "train_structures_per_s": n_struct / elapsed,
           "train_step_s": elapsed / args.steps}
    if args.mode == "structure":
        model.eval()
        t0, n = time.perf_counter(), 0
        with torch.no_grad():
            for chunk in chunks:
                batch, _, _ = loader.make_batch(chunk)
                forward(batch.to(device))
                n += len(chunk)
        sync(device)
        res["inference_spectra_per_s"] = n / (time.perf_counter() - t0)
        # predictions identical to the per-absorber form of the same model
        ref_loader = SpectrumLoader(ds, range(len(ds)), args.batch_size, mode="absorber", geometry=None)
        with torch.no_grad():
            a = model(loader.make_batch(chunks[0])[0].to(device))["spectrum"]
            b = model(ref_loader.make_batch(chunks[0])[0].to(device))["spectrum"]
        res["max_abs_diff_vs_absorber"] = float((a - b).abs().max())
    res["peak_memory_mb"] = peak_memory_mb(device)
    return res


def data_pipeline(args) -> dict:
    from xane3.data.graphs import StructureGraph

    cfg, ds, load_s = _dataset(args)
    t0 = time.perf_counter()
    for a in ds.atoms:
        StructureGraph.from_atoms(a, cfg.data.r_max)
    graph_s = time.perf_counter() - t0
    return {"spectra": len(ds), "structures": ds.n_structures,
            "rows_read_per_s": len(ds) / load_s, "graphs_built_per_s": ds.n_structures / graph_s,
            "mean_atoms": float(np.mean([len(a) for a in ds.atoms])),
            "mean_edges": float(np.mean([g.edge_index.shape[1] for g in ds.graphs])),
            "spectra_per_structure": len(ds) / ds.n_structures}


def _child(mode: str, args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", mode, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--device", args.device]
    if args.db:
        cmd += ["--db", args.db]
    if args.compile:
        cmd += ["--compile"]
    if mode != "structure":
        cmd[cmd.index("--steps") + 1] = str(args.slow_steps)
    return run_child(cmd, f"child {mode}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_db(p)
    p.add_argument("--steps", type=positive_int, default=6, help="timed steps, structure mode")
    p.add_argument("--slow-steps", type=positive_int, default=2, help="timed steps, per-absorber modes")
    p.add_argument("--warmup", type=count_int, default=1)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.mode = args.child
        print(json.dumps(run_mode(args)))
        return 0
    print(machine_line())
    try:
        dp = data_pipeline(args)
    except (FileNotFoundError, ValueError) as exc:  # a missing or foreign --db
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for k, v in dp.items():
        print(f"data  {k:<28} {v:,.2f}")
    res = {m: _child(m, args) for m in MODES}
    for m, r in res.items():
        for k, v in r.items():
            if isinstance(v, float):
                print(f"{m:<9} {k:<28} {v:,.4g}")
    s, a, pl = res["structure"], res["absorber"], res["plain"]
    print(f"ratio structure/absorber (train spectra/s)  {s['train_spectra_per_s'] / a['train_spectra_per_s']:.2f}x")
    print(f"ratio ours/plain-e3nn   (train spectra/s)   {s['train_spectra_per_s'] / pl['train_spectra_per_s']:.2f}x")
    print(f"ratio peak memory absorber/structure        {a['peak_memory_mb'] / s['peak_memory_mb']:.2f}x")
    print(f"max |structure - absorber| prediction       {s['max_abs_diff_vs_absorber']:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
