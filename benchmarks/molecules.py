"""``python -m benchmarks.molecules --db XANESNET.db``: where a molecule epoch goes, and what cuts it.

XANESNET's Fe set is one absorber per molecule (66.5 atoms, ~1,800 directed edges
within 5 Å), so every spectrum costs a whole backbone pass. Each variant trains the
same spectra in the same order in its own process (its own peak memory) and reports
training and inference molecules/s, peak memory (max RSS on CPU, max allocated on
CUDA) and the epoch time this implies for the benchmark's 3,263 training molecules.

Variants (``--variants``), over ``--preset`` (default cpu) with XANESNET's target:
``full`` (the paper's fully connected edge tensor product: today's model),
``channelwise`` (``model.tensor_product=channelwise``), ``channelwise_r4`` (and
``data.r_max=4``), ``compile`` (``train.compile``: exact, so its predictions are
compared with ``full``'s from the same weights). ``--profile`` prints the top
operators of each variant's training step (torch.profiler, self CPU time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from benchmarks.common import batches, machine_line, peak_memory_mb, run_child, sync
from xane3.cli_common import add_threads

VARIANTS = {
    "full": {},
    "channelwise": {"model.tensor_product": "channelwise"},
    "channelwise_r4": {"model.tensor_product": "channelwise", "data.r_max": 4.0},
    "compile": {"train.compile": True},
}
EXACT = ("compile",)  # same model, same weights: predictions must agree with full's
TRAIN_MOLECULES = 3263  # 80 % of the 4,079 XANESNET molecules (benchmarks.xanesnet, all)


def run_variant(args) -> dict:
    """Child process: ``warmup + steps`` training steps, then inference over the subset."""
    from xane3.config import Config, with_overrides
    from xane3.data.dataset import load_dataset
    from xane3.data.loader import SpectrumLoader
    from xane3.overlays import compose
    from xane3.train.accel import forward_fn, resolve_device, to_device
    from xane3.train.optim import make_optimizer
    from xane3.train.step import train_step
    from xane3.train.trainer import build_model

    torch.set_num_threads(args.threads or torch.get_num_threads())
    device = resolve_device(args.device)
    cfg = with_overrides(Config(), {**compose(args.preset, "xanesnet"), "data.db": args.db,
                                    "data.subset": args.molecules, **VARIANTS[args.variant]})
    ds = load_dataset(cfg.data)
    edges = float(np.mean([g.edge_index.shape[1] for g in ds.graphs]))
    torch.manual_seed(0)
    model = build_model(cfg, ds, range(len(ds))).to(device)
    forward = forward_fn(model, cfg.train.compile)
    loader = SpectrumLoader(ds, range(len(ds)), args.batch_size, geometry=model.geometry)
    opt = make_optimizer(model, cfg.train)
    chunks = batches(ds, args.warmup + args.steps, args.batch_size)
    first = to_device(*loader.make_batch(chunks[0])[:2], device)[0]
    model.eval()
    with torch.no_grad():
        pred0 = forward(first)["spectrum"].float().cpu()

    def step(chunk) -> None:
        batch, tgt = to_device(*loader.make_batch(chunk)[:2], device)
        train_step(model, batch, tgt, opt, cfg.train, device, forward=forward)  # the trainer's
        sync(device)

    times = []
    for chunk in chunks:
        t0 = time.perf_counter()
        step(chunk)
        times.append(time.perf_counter() - t0)
    profile = ""
    if args.profile:
        from torch.profiler import profile as torch_profile

        with torch_profile() as prof:
            step(chunks[-1])
        profile = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for batch, _, _ in loader:
            forward(to_device(batch, {}, device)[0])
    sync(device)
    infer_s = time.perf_counter() - t0
    step_s = float(np.median(times[args.warmup:]))
    return {"variant": args.variant, "device": str(device), "parameters": model.num_parameters(),
            "tp_weights_per_edge": [int(b.tp.weight_numel) for b in model.blocks],
            "edges_per_molecule": edges, "median_step_s": step_s,
            "train_molecules_per_s": args.batch_size / step_s,
            "infer_molecules_per_s": len(ds) / infer_s, "warmup_s": float(sum(times[:args.warmup])),
            "peak_memory_mb": peak_memory_mb(device), "prediction": pred0.tolist(), "profile": profile}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.molecules", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, help="XANESNET DB (python -m xane3.data ingest --xanesnet ...)")
    p.add_argument("--variants", default="full,channelwise,channelwise_r4",
                   help=f"comma-separated, of: {', '.join(VARIANTS)}")
    p.add_argument("--preset", default="cpu", help="model size: cpu (default) | paper | tiny")
    p.add_argument("--molecules", type=int, default=160, help="first N molecules of the DB")
    p.add_argument("--steps", type=int, default=6, help="timed training steps per variant")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps (compile happens here)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_threads(p)
    p.add_argument("--profile", action="store_true", help="top operators of a training step")
    p.add_argument("--json", help="also write every figure here")
    p.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.variant = args.child
        print(json.dumps(run_variant(args)))
        return 0
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    print(machine_line(args.threads))
    flags = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
             "--device", args.device, "--threads", str(args.threads), "--preset", args.preset,
             "--molecules", str(args.molecules), "--db", args.db] + (["--profile"] if args.profile else [])
    res = {}
    for v in names:
        res[v] = run_child([sys.executable, "-m", "benchmarks.molecules", "--child", v, *flags], v)
    base = res.get("full")
    print(f"{'variant':<15} {'params':>8} {'TP w/edge':>16} {'s/step':>7} {'train mol/s':>11} "
          f"{'infer mol/s':>11} {'epoch (3,263)':>13} {'peak MB':>8}  vs full")
    for v, r in res.items():
        epoch = TRAIN_MOLECULES / r["train_molecules_per_s"]
        line = (f"{v:<15} {r['parameters']:>8,} {str(r['tp_weights_per_edge']):>16} {r['median_step_s']:>7.3f} "
                f"{r['train_molecules_per_s']:>11.1f} {r['infer_molecules_per_s']:>11.1f} {epoch:>11.0f} s "
                f"{r['peak_memory_mb']:>8,.0f}")
        if base is not None and v != "full":
            line += f"  {base['median_step_s'] / r['median_step_s']:.2f}x train, " \
                    f"{r['infer_molecules_per_s'] / base['infer_molecules_per_s']:.2f}x inference"
            if v in EXACT:
                diff = np.abs(np.array(r["prediction"]) - np.array(base["prediction"])).max()
                line += f", max|pred - full| {diff:.1e}"
        print(line)
        if r["profile"]:
            print(r["profile"])
    print(f"{res[names[0]]['edges_per_molecule']:.0f} directed edges per molecule ({names[0]}); "
          f"batch {args.batch_size}, {args.molecules} molecules, {args.steps} timed steps")
    if args.json:
        from xane3.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps({"args": vars(args), "results": res}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
