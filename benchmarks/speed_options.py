"""``python -m benchmarks.speed_options``: training steps/s of the GPU-path switches.

Variants, all the same model, weights, spectra and batch order, each in its own
process (its own compile cache, peak memory and thread pool):

- ``eager``: the baseline (e3nn, float32)
- ``compile``: ``train.compile`` (``torch.compile(model, dynamic=True)``); the
  steps that compiled are reported apart from the steady state
- ``amp``: ``train.amp`` (bf16 autocast on the device)
- ``cueq``: ``model.backend=cuequivariance`` (fused CUDA kernels where
  ``cuequivariance-ops-torch`` and a GPU exist; its PyTorch fallback otherwise)

Per variant: median s/step over the timed steps, the wall time of the first
``--warmup`` steps (tracing and code generation for ``compile``), and the largest
prediction difference from eager on the first batch, before any update (same weights).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

from benchmarks.common import batches, machine_line, peak_memory_mb, run_child, sync
from xane3.cli_common import add_db, add_threads, count_int, positive_int

VARIANTS = ("eager", "compile", "amp", "cueq")


def run_variant(args) -> dict:
    """Child process: time ``warmup + steps`` training steps of one variant."""
    from xane3.config import Config, with_overrides
    from xane3.data.dataset import load_dataset
    from xane3.data.loader import SpectrumLoader
    from xane3.model import XANE3
    from xane3.model.backend import cuda_kernels_available
    from xane3.overlays import preset
    from xane3.train.accel import autocast, forward_fn, resolve_device, to_device
    from xane3.train.optim import make_optimizer
    from xane3.train.step import train_step

    warnings.filterwarnings("ignore", message=".*cuequivariance_ops_torch is not available.*")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    over = {**preset(args.preset), "data.subset": args.subset,
            **({"data.db": args.db} if args.db else {})}
    if args.variant == "cueq":
        over["model.backend"] = "cuequivariance"
    over["train.amp"] = args.variant == "amp"
    cfg = with_overrides(Config(), over)
    ds = load_dataset(cfg.data)
    torch.manual_seed(0)
    model = XANE3(cfg.model).to(device)
    forward = forward_fn(model, args.variant == "compile")
    amp = cfg.train.amp
    loader = SpectrumLoader(ds, range(len(ds)), args.batch_size, geometry=XANE3(cfg.model).geometry)
    opt = make_optimizer(model, cfg.train)
    chunks = batches(ds, args.warmup + args.steps, args.batch_size)
    first = to_device(*loader.make_batch(chunks[0])[:2], device)[0]
    t0 = time.perf_counter()
    model.eval()
    with torch.no_grad(), autocast(device, amp):  # the same initial weights in every variant
        pred0 = forward(first)["spectrum"].float().cpu()
    eval_first_s = time.perf_counter() - t0
    times, cpu_times = [], []
    for chunk in chunks:
        t0, c0 = time.perf_counter(), time.process_time()
        batch, tgt = to_device(*loader.make_batch(chunk)[:2], device)
        train_step(model, batch, tgt, opt, cfg.train, device, forward=forward)  # the trainer's
        sync(device)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    timed = times[args.warmup:]
    res = {"variant": args.variant, "device": str(device), "preset": args.preset,
           "parameters": model.num_parameters(), "steps": args.steps,
           "median_step_s": float(np.median(timed)), "mean_step_s": float(np.mean(timed)),
           "median_cpu_s": float(np.median(cpu_times[args.warmup:])),
           "spectra_per_s": args.batch_size / float(np.median(timed)),
           "warmup_s": float(sum(times[:args.warmup])), "step_times_s": times,
           "first_eval_s": eval_first_s, "prediction": pred0.tolist()}
    if args.variant == "compile":
        res["compile_failed"] = forward.failed
        res["first_call_compile_s"] = forward.compile_s
    if args.variant == "cueq":
        res["cuda_kernels"] = cuda_kernels_available() and device.type == "cuda"
    res["peak_memory_mb"] = peak_memory_mb(device)
    return res


def _child(variant: str, args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.speed_options", "--child", variant, "--steps",
           str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
           "--device", args.device, "--preset", args.preset, "--threads", str(args.threads),
           "--subset", str(args.subset)]
    if args.db:
        cmd += ["--db", args.db]
    with tempfile.TemporaryDirectory() as cache:  # a cold inductor cache: compile time is real
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        return run_child(cmd, f"variant {variant}", env)


def _combine(runs: list[dict]) -> dict:
    """Median over repeats of each per-run figure; the first run's predictions and flags."""
    out = dict(runs[0])
    for key in ("median_step_s", "mean_step_s", "median_cpu_s", "spectra_per_s", "warmup_s",
                "peak_memory_mb"):
        out[key] = float(np.median([r[key] for r in runs]))
    out["repeats"] = [{k: r[k] for k in ("median_step_s", "median_cpu_s", "warmup_s")} for r in runs]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed_options", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    p.add_argument("--preset", default="paper", help="model size: paper (default model) | cpu | tiny")
    add_db(p)
    p.add_argument("--subset", type=positive_int, default=240,
                   help="first N spectra: a fixed prefix, so a growing data set cannot give "
                        "variants different batches")
    p.add_argument("--steps", type=positive_int, default=6, help="timed steps per variant")
    p.add_argument("--warmup", type=count_int, default=2, help="untimed first steps (compile happens here)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--device", default="auto")
    add_threads(p)
    p.add_argument("--repeat", type=positive_int, default=1,
                   help="round-robin repeats (figures: median over repeats; for a shared machine)")
    p.add_argument("--json", help="also write every figure here")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.variant = args.child
        print(json.dumps(run_variant(args)))
        return 0
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:  # the child would refuse it inside a traceback
        p.error(f"--variants: unknown {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    from xane3.overlays import preset

    try:
        preset(args.preset)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        p.error(f"--preset: {exc.args[0] if exc.args else exc}")
    print(machine_line(args.threads))
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(args.repeat):  # interleaved, so a change in machine load hits every variant
        for v in variants:
            runs[v].append(_child(v, args))
    res = {v: _combine(rs) for v, rs in runs.items()}
    base = res.get("eager")
    for v, r in res.items():
        line = (f"{v:<8} {r['device']:<5} {r['parameters']:>9,} params  median {r['median_step_s']:.3f} s/step"
                f" (CPU {r['median_cpu_s']:.2f} s)  {r['spectra_per_s']:.2f} spectra/s"
                f"  first {args.warmup} steps {r['warmup_s']:.1f} s  peak {r['peak_memory_mb']:,.0f} MB")
        if base is not None and v != "eager":
            diff = np.abs(np.array(r["prediction"]) - np.array(base["prediction"])).max()
            line += (f"  speed-up {base['median_step_s'] / r['median_step_s']:.2f}x wall,"
                     f" {base['median_cpu_s'] / r['median_cpu_s']:.2f}x CPU"
                     f"  max|pred - eager| {diff:.2e}")
        if v == "compile":
            line += f"  compile failed: {r['compile_failed']}" if r["compile_failed"] else \
                f"  first-call compile {r['first_call_compile_s']:.1f} s"
        if v == "cueq":
            line += f"  cuda kernels: {r['cuda_kernels']}"
        print(line)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "runs": runs}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
