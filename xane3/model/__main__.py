"""``python -m xane3.model --summary``: parameter count and irreps as JSON."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from xane3.cli_common import add_set, error_text, parse_set
from xane3.config import Config, with_overrides
from xane3.model import XANE3
from xane3.overlays import compose, listing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.model", description=__doc__)
    p.add_argument("--summary", action="store_true", help="print the model summary (default)")
    p.add_argument("--preset", help="xane3/conf/preset: " + listing("preset"))
    p.add_argument("--experiment", help="a .yaml overlay after the preset, e.g. "
                   "ablations/specs/no_tensorial_features.yaml (the scalar-only backbone)")
    add_set(p)
    args = p.parse_args(argv)
    try:
        cfg = with_overrides(Config(), compose(args.preset, args.experiment, parse_set(args.set)))
    except (KeyError, ValueError, OSError) as exc:  # OSError: an --experiment file missing
        p.error(error_text(exc))
    model = XANE3(cfg.model)
    parts: Counter[str] = Counter()
    for name, prm in model.named_parameters():
        parts[name.split(".")[0] if not name.startswith("blocks") else "blocks." + name.split(".")[2]] += prm.numel()
    print(json.dumps({
        "preset": args.preset, "experiment": args.experiment,
        "parameters": model.num_parameters(),
        "hidden_irreps": str(model.hidden_irreps),
        "sh_irreps": str(model.geometry.sh_irreps),
        "num_layers": cfg.model.num_layers,
        "n_gaussians": cfg.model.n_gaussians,
        "parameters_by_part": dict(parts),
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
