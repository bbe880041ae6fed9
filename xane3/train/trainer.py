"""The one training loop: ``fit(config, dataset, out_dir, callbacks)``.

The CLI, the Ray Tune trainable and the ablation runner all call this. Model
selection, early stopping and the LR plateau watch one validation metric,
``train.select_on``: the fixed-weight total (final derivative weights, the
default) or the spectrum MSE alone, never the annealed objective, so epochs before
and after the ramp are compared on one scale. ``best_val_total`` is the total of
the selected epoch either way.
"""

from __future__ import annotations

import copy
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from xane3.baseline import baseline_scores, dataset_e0s
from xane3.config import Config
from xane3.data.dataset import XASDataset, load_dataset
from xane3.data.loader import SpectrumLoader
from xane3.data.splits import splits_of
from xane3.model import XANE3
from xane3.objective import TRAIN_TERMS
from xane3.train.accel import forward_fn, pin_memory_for, resolve_device, to_device
from xane3.train.callbacks import Callback, ParquetEpochLog, StopTraining
from xane3.train.checkpoint import load_state, read_checkpoint, save_checkpoint
from xane3.train.ema import ema_state, make_ema, restore_ema, scored
from xane3.train.loss import combine
from xane3.train.metadata import ModelMetadata
from xane3.train.optim import make_optimizer, rng_states
from xane3.train.resume import restore_run
from xane3.train.schedule import derivative_factor, warn_unfinished_ramp
from xane3.train.step import TrainingDiverged, eval_sums, train_step  # noqa: F401 - re-exported
from xane3.train.warmstart import warm_start

RUN_FILES = ("metrics.parquet", "last.pt", "best.pt", "test.json")  # what a run writes


@dataclass
class FitResult:
    out_dir: Path
    best_epoch: int
    best_val_total: float
    test: dict[str, float]
    history: list[dict[str, Any]]
    device: str
    model: XANE3 = field(repr=False)
    stopped_early: bool = False
    checkpoint: Path | None = None
    baseline: dict[str, float] = field(default_factory=dict)  # mean training spectrum, test split
    data_hash: str = ""  # what the run trained on, for result rows checked later


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def absorber_neighbours(dataset: XASDataset, idx: Sequence[int]) -> list[int]:
    """[min, max] atoms within r_max of the training absorbers: what prediction checks against."""
    counts = []
    for i in idx:
        s = dataset.samples[i]
        g = dataset.graphs[s.graph]
        deg = np.bincount(g.edge_index[0].numpy(), minlength=g.n_atoms)
        counts += [int(deg[a]) for a in s.absorbers]
    return [min(counts), max(counts)] if counts else []


def build_model(cfg: Config, dataset: XASDataset, train_idx: Sequence[int]) -> XANE3:
    model = XANE3(cfg.model)
    e0 = dataset_e0s(dataset, train_idx)
    if e0.size:
        model.e0_mean.fill_(float(e0.mean()))
        model.e0_std.fill_(float(max(e0.std(), 1e-3)))
        if cfg.data.energy_axis == "absolute":
            # the edge step and the physics-placed centres start at the edge: 0 eV on the
            # relative axis, the mean training E0 on an absolute one (else the step sits at
            # 0 eV, a constant that never learns, and the centres crowd the pre-edge)
            model.place_edge(float(e0.mean()))
    return model


def evaluate(model: XANE3, loader: SpectrumLoader, cfg: Config, device: torch.device,
             forward=None) -> dict[str, float]:
    """Dataset-level MSE terms (exact sums over covered points), fixed-weight total, E0 MAE.

    ``forward`` is what runs the model (its compiled form, say); default ``model``.
    """
    sums = eval_sums(model, loader, device, cfg.train.amp, forward)
    res = {k: (s / n if n else float("nan")) for k, (s, n) in sums.items()}
    t = cfg.train
    res["gradient_weighted"] = t.lambda_grad * res["gradient"]
    res["curvature_weighted"] = t.lambda_curv * res["curvature"]
    res["total"] = float(combine({k: res[k] for k in ("spectrum", "gradient", "curvature")},
                                 t.lambda_grad, t.lambda_curv, 0.0))
    res["e0_mae_ev"] = res.pop("e0")
    return res


def _train_epoch(model, loader, opt, cfg: Config, device, factor: float, bar,
                 forward=None, ema=None) -> dict[str, float]:
    acc = {k: 0.0 for k in TRAIN_TERMS}
    n_batches = 0
    for batch, tgt, _ in loader:
        batch, tgt = to_device(batch, tgt, device)
        loss, terms = train_step(model, batch, tgt, opt, cfg.train, device, factor, forward)
        if ema is not None:
            ema.update_parameters(model)
        for k, v in terms.items():
            acc[k] += float(v)
        acc["loss"] += float(loss)
        n_batches += 1
        if bar is not None:
            bar.update(int(batch.n_samples))
            bar.set_postfix(loss=f"{float(loss):.4g}")
    return {k: v / max(n_batches, 1) for k, v in acc.items()}


def fit(
    config: Config,
    dataset: XASDataset | None = None,
    out_dir: str | Path = "runs/xane3",
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> FitResult:
    """Train, checkpoint every epoch (``last.pt``) and the best (``best.pt``), test at the end.

    A folder holding an earlier run is refused unless ``resume`` (continue it) or
    ``overwrite`` (replace it): a new run would silently replace its checkpoints and log.
    """
    cfg, t = config, config.train
    out = Path(out_dir)
    earlier = sorted(p.name for p in (out / n for n in RUN_FILES) if p.exists())
    if earlier and not (resume or overwrite):
        raise FileExistsError(f"{out} holds an earlier run ({', '.join(earlier)}): pass --resume to "
                              "continue it, --overwrite to replace it, or another --out")
    resuming = resume and (out / "last.pt").exists()
    if resume and not resuming:
        if earlier and not overwrite:  # a fresh start would replace what is there, continuing nothing
            raise FileExistsError(f"{out}: --resume needs last.pt, which is missing, but the folder "
                                  f"holds {', '.join(earlier)}; pass --overwrite to replace them")
        print(f"{out}: no last.pt to resume from; starting from scratch", file=sys.stderr)
    replaced = [] if resuming or not overwrite else earlier  # removed once data and model are ready
    out.mkdir(parents=True, exist_ok=True)
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    device = resolve_device(t.device)
    seed_everything(t.seed)
    if device.type == "cpu":
        # multi-threaded scatter sums are order-dependent on CPU; this makes runs repeatable
        torch.use_deterministic_algorithms(True, warn_only=True)
    dataset = dataset if dataset is not None else load_dataset(cfg.data)
    splits = splits_of(dataset, cfg.data)
    model = build_model(cfg, dataset, splits["train"]).to(device)
    geometry = copy.deepcopy(model.geometry).cpu()  # cached edge features live on CPU
    mk = dict(mode=t.batching, geometry=geometry, seed=t.seed, pin_memory=pin_memory_for(device))
    train_loader = SpectrumLoader(dataset, splits["train"], t.batch_size, shuffle=True,
                                  max_batches=t.max_steps_per_epoch, **mk)
    val_loader = SpectrumLoader(dataset, splits["val"] or splits["train"], t.batch_size, **mk)
    if not splits["val"]:  # selection and early stopping then watch the spectra trained on
        warnings.warn(f"the validation split of {len(dataset)} spectra is empty (data.val_fraction="
                      f"{cfg.data.val_fraction}): best.pt is chosen on the training split", stacklevel=2)
    scored_on = next(k for k in ("test", "val", "train") if splits[k] or k == "train")
    if scored_on != "test":  # tiny data or data.test_fraction=0: say so, never pass it off
        warnings.warn(f"the test split of {len(dataset)} spectra is empty (data.test_fraction="
                      f"{cfg.data.test_fraction}): the 'test' figures of this run (test.json, "
                      f"search and ablation tables) are the {scored_on} split's", stacklevel=2)
    test_loader = SpectrumLoader(dataset, splits[scored_on], t.batch_size, **mk)
    model.to(device)
    forward = forward_fn(model, t.compile)
    opt = make_optimizer(model, t)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=t.plateau_factor, patience=t.plateau_patience, min_lr=t.min_lr)
    data_hash = dataset.data_hash()
    state = {"epoch": 0, "best": float("inf"), "best_epoch": -1, "bad_epochs": 0, "history": [],
             "best_total": float("inf")}
    last = out / "last.pt"
    warm, saved_ema = {}, None
    if resuming:
        state = restore_run(last, cfg, data_hash, model, opt, sched, splits)
        warm = state.pop("warm")  # read with the rest of last.pt, not loaded a second time
        saved_ema = state.pop("ema")
    elif t.init_from:  # may be this folder's own best.pt: read before the old run is removed
        warm = warm_start(model, cfg, data_hash, splits)
    for name in replaced:  # replaced means gone: a run stopped in its first epoch must not leave
        (out / name).unlink(missing_ok=True)  # the old best.pt beside the new config, tested as its
    warn_unfinished_ramp(t)
    ema = make_ema(model, t.ema_decay)  # after the weights it starts from are in place
    restore_ema(ema, saved_ema)
    val_forward = forward if ema is None else None  # the compiled form runs the raw weights
    log = ParquetEpochLog(out / "metrics.parquet", keep=state["history"])
    listeners = [log, *callbacks]
    cfg.save(out / "config.json")
    train_atoms = [dataset.atoms[dataset.samples[i].graph] for i in splits["train"]]
    record = ModelMetadata(
        cfg, dataset.absorber_z(), tuple(dataset.energy.tolist()),
        e0_trained=cfg.model.e0_head and any(np.isfinite(dataset.samples[i].e0) for i in splits["train"]),
        data_hash=data_hash, dataset=dataset.name, splits=splits,
        elements=frozenset(int(z) for a in train_atoms for z in a.numbers),
        absorber_neighbours=tuple(absorber_neighbours(dataset, splits["train"])) or None,
        run={"n_train": len(splits["train"]), "device": str(device), **warm})
    ckpt_meta = record.to_meta()
    stopped_early = resuming and state["bad_epochs"] >= t.patience  # it ended there: do not add one
    if stopped_early:
        print(f"{out}: the run stopped early after epoch {state['epoch']} ({state['bad_epochs']} "
              f"without a better {t.select_on}, train.patience={t.patience}); a larger "
              "train.patience continues it", file=sys.stderr)
    bar_epochs = tqdm(total=t.epochs, initial=state["epoch"], desc="epochs", disable=not progress,
                      unit="epoch")
    try:
        for epoch in range(state["epoch"], state["epoch"] if stopped_early else t.epochs):
            t0 = time.perf_counter()
            factor = derivative_factor(epoch, t.ramp_start, t.ramp_epochs, t.epochs)
            train_loader.set_epoch(epoch)
            bar = tqdm(total=min(len(train_loader) * t.batch_size, len(splits["train"])),
                       desc=f"epoch {epoch + 1}", leave=False, disable=not progress, unit="spec")
            tr = _train_epoch(model, train_loader, opt, cfg, device, factor, bar, forward, ema)
            bar.close()
            val = evaluate(scored(model, ema), val_loader, cfg, device, val_forward)
            selected, lr = val[t.select_on], opt.param_groups[0]["lr"]  # the epoch's, before the step
            sched.step(selected)
            improved = selected < state["best"]
            if improved:
                state.update(best=selected, best_epoch=epoch, bad_epochs=0, best_total=val["total"])
            else:
                state["bad_epochs"] += 1
            metrics = {"epoch": epoch, "lr": lr, "deriv_factor": factor,
                       "epoch_time_s": time.perf_counter() - t0,
                       **{f"train_{k}": v for k, v in tr.items()},
                       **{f"val_{k}": v for k, v in val.items()},
                       "best_val_total": state["best_total"], "best_val_selected": state["best"]}
            state["history"].append(metrics)
            state["epoch"] = epoch + 1
            common = dict(**ckpt_meta, **state)
            if improved:
                save_checkpoint(out / "best.pt", scored(model, ema), cfg, **common)
            save_checkpoint(last, model, cfg, optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), **rng_states(), **ema_state(ema), **common)
            bar_epochs.update(1)
            bar_epochs.set_postfix(val_total=f"{val['total']:.4g}", best=f"{state['best']:.4g}")
            stop = state["bad_epochs"] >= t.patience
            try:
                for cb in listeners:
                    cb.on_epoch_end(epoch, metrics, last)
            except StopTraining:
                stop = True
            if stop:
                stopped_early = epoch + 1 < t.epochs
                break
    finally:
        bar_epochs.close()
    best = out / "best.pt"
    if best.exists():
        load_state(model, read_checkpoint(best, device)["model"], str(best))
    test = evaluate(model, test_loader, cfg, device, forward)
    result = FitResult(out, state["best_epoch"], state["best_total"], test, state["history"],
                       str(device), model, stopped_early, best if best.exists() else None,
                       baseline_scores(dataset, splits["train"], test_loader.indices, t.lambda_grad,
                                       t.lambda_curv), data_hash)
    for cb in listeners:
        cb.on_train_end({"test": test, "best_epoch": state["best_epoch"],
                         "best_val_total": state["best_total"], "best_val_selected": state["best"],
                         "stopped_early": stopped_early})
    return result
