"""Old vs new commit, per spec: are the validation totals of every epoch identical?"""
import json
import sys
from pathlib import Path

import pandas as pd

runs = Path(sys.argv[1])
for old in sorted(runs.glob("old-*/test.json")):
    spec, new = old.parent.name[4:], runs / f"new-{old.parent.name[4:]}"
    if not (new / "test.json").exists():
        continue
    a, b = (pd.read_parquet(d / "metrics.parquet").val_total.to_numpy() for d in (old.parent, new))
    ta, tb = (json.loads((d / "test.json").read_text())["test"]["total"] for d in (old.parent, new))
    same = len(a) == len(b) and bool((a == b).all())
    print(f"{spec:28s} epochs {len(a)}/{len(b)}  identical {same}  max |diff| "
          f"{abs(a - b).max():.3g}  test total {ta:.6f} / {tb:.6f}")
