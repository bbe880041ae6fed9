"""``python -m xane3.train.soup A.pt B.pt ... --out SOUP.pt [--greedy]``: one model from several.

A *model soup* (Wortsman et al., ICML 2022): the element-wise mean of the weights of
fine-tunings that share a starting point. Fine-tunings of one model stay in one basin of
the loss, so their mean is a model too, and often scores better than any of them, for the
price of one forward pass (an ensemble pays one per member). ``--greedy`` adds the
ingredients in order of their own validation score and keeps each only where the soup's
does not rise (the paper's greedy soup). The score is what the runs selected on
(``train.select_on``: the fixed-weight total, or the spectrum MSE alone).

Only checkpoints of one model config, one data set and one split mix: a spectrum one of
them trained on would otherwise be "unseen" for the soup. The soup is scored on the
ingredients' **val** split; that score is what its metadata records as ``best`` (and the
total as ``best_total``), so ensembles and reports read a measured number.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from xane3.atomic import WriteError
from xane3.cli_common import FAILED, add_quiet, fail
from xane3.data.dataset import XASDataset, load_training_data
from xane3.data.loader import SpectrumLoader
from xane3.model import XANE3
from xane3.train.checkpoint import load_state, read_checkpoint, write_checkpoint
from xane3.train.metadata import RUN_KEYS
from xane3.train.trainer import evaluate
from xane3.train.warmstart import model_differences, same_split


def _check_same(paths: Sequence[Path], payloads: Sequence[dict[str, Any]]) -> None:
    """Refuse ingredients that do not share the model, the data and the split."""
    first, ref = paths[0], payloads[0]
    for path, p in zip(paths[1:], payloads[1:]):
        differ = model_differences(p["config"].model, ref["config"].model)
        if differ:
            k, theirs, ours = differ[0]
            raise ValueError(f"{path}: another model than {first} (model.{k}: {theirs!r} vs "
                             f"{ours!r}); only checkpoints of one architecture can be averaged")
        if p["meta"].get("data_hash") != ref["meta"].get("data_hash"):
            raise ValueError(f"{path}: trained on other data than {first} (hash "
                             f"{p['meta'].get('data_hash')} vs {ref['meta'].get('data_hash')})")
        if not same_split(p["meta"].get("splits") or {}, ref["meta"].get("splits") or {}):
            raise ValueError(f"{path}: trained on another split of the data than {first}; its "
                             "training spectra would be scored as unseen")


def average(states: Sequence[dict[str, torch.Tensor]], source: str = "") -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors (summed in float64); other tensors
    (counters, index buffers) must agree, since a mean of them means nothing."""
    out = {}
    for key, ref in states[0].items():
        if ref.is_floating_point():
            out[key] = (sum(s[key].double() for s in states) / len(states)).to(ref.dtype)
        elif all(torch.equal(s[key], ref) for s in states[1:]):
            out[key] = ref.clone()
        else:
            raise ValueError(f"{source}: the non-float tensor {key} differs between ingredients")
    return out


class _Scorer:
    """The val score (``train.select_on``) and total of a set of weights, on the ingredients'
    own data and split."""

    def __init__(self, payload: dict[str, Any], dataset: XASDataset | None, source: Path) -> None:
        cfg, meta = payload["config"], payload["meta"]
        self.cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, amp=False))
        n = sum(len(v) for v in meta.get("splits", {}).values())
        ds = dataset if dataset is not None else load_training_data(cfg.data, meta.get("data_hash"), n)
        if ds.data_hash() != meta.get("data_hash"):
            raise ValueError(f"{source}: its training data changed since training (hash "
                             f"{ds.data_hash()} != {meta.get('data_hash')}): the val split would "
                             "point at other spectra")
        val = list(meta.get("splits", {}).get("val") or [])
        if not val:
            raise ValueError(f"{source}: no val split to score the soup on")
        self.model = XANE3(cfg.model)
        load_state(self.model, payload["model"], str(source))
        self.model.eval()
        geometry = copy.deepcopy(self.model.geometry).cpu()
        t = cfg.train
        self.loader = SpectrumLoader(ds, val, t.batch_size, mode=t.batching, geometry=geometry, seed=t.seed)

    def score(self, state: dict[str, torch.Tensor]) -> tuple[float, float]:
        self.model.load_state_dict(state)
        val = evaluate(self.model, self.loader, self.cfg, torch.device("cpu"))
        return float(val[self.cfg.train.select_on]), float(val["total"])


def make_soup(paths: Sequence[str | Path], out: str | Path, greedy: bool = False,
              note: str | None = None, dataset: XASDataset | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Average ``paths`` into ``out``; returns the soup's val score and total and what went in."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ValueError("a soup needs at least two checkpoints")
    payloads = [read_checkpoint(p) for p in paths]
    _check_same(paths, payloads)
    scorer = _Scorer(payloads[0], dataset, paths[0])
    recorded = [(p["meta"].get("best"), p["meta"].get("best_total", p["meta"].get("best")))
                for p in payloads]
    bar = tqdm(total=2 * len(paths) - 1 if greedy else 1, desc="soup", disable=not progress)
    if greedy:  # best first; every ingredient is scored here, on one scale
        scores = []
        for p in payloads:
            scores.append(scorer.score(p["model"]))
            bar.update(1)
        order = sorted(range(len(paths)), key=lambda i: scores[i][0])
        kept, best, state = [order[0]], scores[order[0]], payloads[order[0]]["model"]
        for i in order[1:]:
            trial_state = average([payloads[j]["model"] for j in (*kept, i)], str(paths[i]))
            trial = scorer.score(trial_state)
            if trial[0] <= best[0]:
                kept, best, state = [*kept, i], trial, trial_state
            bar.update(1)
        recorded = scores
    else:
        kept = list(range(len(paths)))
        state = average([p["model"] for p in payloads], str(paths[0]))
        best = scorer.score(state)
        bar.update(1)
    bar.close()
    select_on = scorer.cfg.train.select_on
    ingredients = [{"file": p.name, "val_selected": recorded[i][0], "val_total": recorded[i][1],
                    "kept": i in kept} for i, p in enumerate(paths)]
    cfg = payloads[0]["config"]
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=None))
    meta = {k: v for k, v in payloads[0]["meta"].items() if k not in RUN_KEYS}
    names = ", ".join(paths[i].name for i in kept)
    meta.update(best=best[0], best_total=best[1], epoch=max(int(payloads[i]["meta"].get("epoch", 0)) for i in kept),
                best_epoch=max(int(payloads[i]["meta"].get("best_epoch", 0)) for i in kept),
                bad_epochs=0, history=[], soup=ingredients,
                init_from=note or f"{'greedy' if greedy else 'uniform'} soup of {names}")
    write_checkpoint(out, cfg, state, meta)
    return {"select_on": select_on, "val_selected": best[0], "val_total": best[1],
            "ingredients": ingredients, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.train.soup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="checkpoints of one model, data set and split")
    p.add_argument("--out", required=True, help="the soup's checkpoint (written atomically)")
    p.add_argument("--greedy", action="store_true",
                   help="keep an ingredient only where it does not raise the soup's val score "
                        "(train.select_on)")
    p.add_argument("--note", help="what the soup is, in words (default: its ingredients' names)")
    add_quiet(p)
    args = p.parse_args(argv)
    try:
        res = make_soup(args.checkpoints, args.out, args.greedy, args.note,
                        progress=not args.quiet)
    except WriteError as exc:  # the job ran; its result could not be written
        return fail(exc, FAILED)
    except (OSError, ValueError) as exc:
        return fail(exc)
    on = res["select_on"]
    for given, ing in zip(args.checkpoints, res["ingredients"]):  # as typed: many are best.pt
        score = "" if ing["val_selected"] is None else f"{ing['val_selected']:.6g}"
        print(f"{'kept' if ing['kept'] else 'left'}  {given}  val {on} {score}")
    print(f"soup -> {res['out']}: val {on} {res['val_selected']:.6g}"
          + ("" if on == "total" else f", val total {res['val_total']:.6g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
