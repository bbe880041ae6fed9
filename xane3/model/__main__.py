"""``python -m xane3.model --summary``: parameter count and irreps as JSON."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from xane3.cli_common import parse_set
from xane3.config import Config, variant, with_overrides
from xane3.model import XANE3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.model", description=__doc__)
    p.add_argument("--summary", action="store_true", help="print the model summary (default)")
    p.add_argument("--variant", default="default", help="default | scalar_only")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="config override, e.g. model.m0=16 (repeatable)")
    args = p.parse_args(argv)
    try:
        cfg = with_overrides(Config(), {**variant(args.variant), **parse_set(args.set)})
    except (KeyError, ValueError) as exc:
        p.error(str(exc))
    model = XANE3(cfg.model)
    parts: Counter[str] = Counter()
    for name, prm in model.named_parameters():
        parts[name.split(".")[0] if not name.startswith("blocks") else "blocks." + name.split(".")[2]] += prm.numel()
    print(json.dumps({
        "variant": args.variant,
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
