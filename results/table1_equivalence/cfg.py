"""Write the Table 1 (cpu) trial config of one spec (seed 0) as this checkout builds it
(weight decay off, 8 epochs x 10 steps, one thread): cfg.py SPEC OUT.json"""
import sys

from ablations import run
from xane3.config import Config, with_overrides

spec, out = sys.argv[1], sys.argv[2]
try:
    base = run.presets()["cpu"].overrides          # new code
except AttributeError:
    base = run.PRESETS["cpu"]["overrides"]          # 78b7a88
(label, ov), = run.plan([spec], "cpu", 1)
extra = {"train.weight_decay": 0.0, "train.max_steps_per_epoch": 10, "train.epochs": 8,
         "train.patience": 8, "train.num_threads": 1, "train.device": "cpu"}
cfg = with_overrides(Config(), {**base, **ov, **extra})
cfg.save(out)
print(label, ov)
