"""Exit codes as the README states them, for every xane3 command: 0 done, 1 the job ran and failed,
2 a bad command line or input refused before any work; errors in one line, no stray quotes
(issue 31: a foreign DB exited 1, a full disk 2, a missing structure 1 from predict).

A full disk is real: the command runs in a child process whose file-size limit (RLIMIT_FSIZE) is
below what it must write, so the write fails in the kernel as it would on a full disk."""

from __future__ import annotations

import importlib
import os
import resource
import sqlite3
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from ase.build import bulk
from ase.io import write
from conftest import REPO, SHARED_DATA


@pytest.fixture(scope="module")
def files(small_real_db, tmp_path_factory) -> dict[str, Path]:
    """A tiny trained run, a structure, a garbage checkpoint, a foreign SQLite file."""
    from xane3.config import Config, with_overrides
    from xane3.overlays import preset
    from xane3.train import fit

    d = tmp_path_factory.mktemp("exit")
    cfg = with_overrides(Config(), {**preset("tiny"), "train.epochs": 1, "train.max_steps_per_epoch": 1,
                                    "data.db": str(small_real_db)})
    fit(cfg, out_dir=d / "run", progress=False)
    write(d / "feo.cif", bulk("FeO", "rocksalt", a=4.33, cubic=True))
    (d / "garbage.pt").write_text("garbage\n")
    torch.save({"weights": Fraction(1, 2)}, d / "pickled.pt")  # another program's pickle
    with sqlite3.connect(d / "foreign.db") as con:
        con.execute("CREATE TABLE other (x)")
    (d / "typo.yaml").write_text("overides:\n  model.m0: 4\n")
    return {"ckpt": d / "run" / "best.pt", "cif": d / "feo.cif", "garbage": d / "garbage.pt",
            "pickled": d / "pickled.pt",
            "foreign": d / "foreign.db", "db": small_real_db, "typo": d / "typo.yaml", "none": d / "none"}


MEASURED = str(SHARED_DATA / "experimental-fe" / "normalized" / "fe2o3.dat")
# (module, argv with {placeholders} for files and {out}, what the one error line says)
REFUSED = [
    ("xane3.train.__main__", "--out {out} --db {none}.db --preset tiny", "no such database"),
    ("xane3.train.__main__", "--out {out} --db {foreign} --preset tiny", "not an ASE database"),
    ("xane3.train.__main__", "--out {out} --set model.m00=1", "unknown config key 'model.m00'"),
    ("xane3.evaluate", "--checkpoint {ckpt} --db {none}.db --out {out}", "no such database"),
    ("xane3.evaluate", "--checkpoint {ckpt} --db {foreign} --out {out}", "not an ASE database"),
    ("xane3.evaluate", "--checkpoint {garbage} --out {out}", "garbage.pt: not a readable xane3 checkpoint"),
    ("xane3.predict_cli", "--checkpoint {ckpt} {none}.cif --out {out}", "none.cif: no such structure file"),
    ("xane3.predict_cli", "--checkpoint {garbage} {cif} --out {out}", "garbage.pt: not a readable"),
    ("xane3.predict_cli", "--checkpoint {pickled} {cif} --out {out}", "pickled.pt: not a readable"),
    ("xane3.data.cli", "info --db {none}.db", "no such database"),
    ("xane3.data.cli", "info --db {foreign}", "not an ASE database"),
    ("xane3.data.cli", "ingest --xanesnet {none} --db {out}.db", "no such folder"),
    ("xane3.data.cli", "ingest --xanesnet " + str(SHARED_DATA / "xanesnet-fe-train") + " --limit 2 --db {foreign}",
     "not an ASE database"),
    ("xane3.lcf_cli", "--checkpoint {garbage} --out {out}", "garbage.pt: not a readable"),
    ("xane3.lcf_cli", "--checkpoint {ckpt} --measured {none}.dat --out {out}", "none.dat"),
    ("xane3.compare_experiment", "--checkpoint {garbage} --out {out}", "garbage.pt: not a readable"),
    ("xane3.compare_experiment", "--checkpoint {ckpt} --experiment-dir {none} --out {out}", "none"),
    ("xane3.model.__main__", "--summary --experiment {none}.yaml", "no such experiment file"),
    ("xane3.model.__main__", "--summary --experiment {typo}", "unknown field(s) 'overides'"),
    ("xane3.datagen.cli", "card --out {none} --docs {none}", "no shards"),
    ("xane3.datagen.cli", "structures --phases alpha-Fe2O3 --facets 001 --rattled 0 --out {garbage}/s.extxyz",
     "cannot create the output folder"),
]


def _argv(template: str, files: dict[str, Path], out: Path) -> list[str]:
    return template.format(out=out, **files).split()


@pytest.mark.parametrize("module,argv,said", REFUSED, ids=[f"{m}:{a.split()[0]}-{i}" for i, (m, a, _) in
                                                             enumerate(REFUSED)])
def test_refused_before_any_work_exits_2(module, argv, said, files, tmp_path, capsys) -> None:
    main = importlib.import_module(module).main
    try:
        rc = main(_argv(argv, files, tmp_path / "out"))
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert rc == 2, err
    assert "error: " in last and said in last and "Traceback" not in err, err
    assert '"' not in last and "weights_only" not in err, last  # no KeyError repr, no unsafe advice


# (module, argv, file-size limit in bytes: above what the command reads or must start with, below
# what it writes)
FULL_DISK = [
    ("xane3.train", "--db {db} --preset tiny --out {out} --epochs 1 --quiet --set train.max_steps_per_epoch=1",
     16_000),
    ("xane3.evaluate", "--checkpoint {ckpt} --out {out}", 16_000),
    ("xane3.predict", "--checkpoint {ckpt} {cif} --out {out}", 4_000),
    ("xane3.data", "ingest --xanesnet " + str(SHARED_DATA / "xanesnet-fe-train") + " --limit 20 --db {out}.db"
     " --quiet", 20_000),
    ("xane3.lcf", "--checkpoint {ckpt} --measured " + MEASURED + " --out {out}", 16_000),
    ("xane3.compare_experiment", "--checkpoint {ckpt} --phases hematite --no-fit --out {out}", 16_000),
    ("xane3.datagen", "structures --phases alpha-Fe2O3 --facets 001 --rattled 0 --out {out}/s.extxyz", 2_000),
]


@pytest.mark.parametrize("module,argv,limit", FULL_DISK, ids=[m for m, _, _ in FULL_DISK])
def test_a_full_disk_is_a_job_that_ran_and_failed(module, argv, limit, files, tmp_path) -> None:
    def cap_file_size() -> None:  # Python ignores SIGXFSZ: an over-long write fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", module, *_argv(argv, files, tmp_path / "out")], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, preexec_fn=cap_file_size)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert proc.returncode == 1, proc.stderr
    assert errors and "Traceback" not in proc.stderr, proc.stderr
