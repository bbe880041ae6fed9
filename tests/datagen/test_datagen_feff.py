"""Real FEFF10 runs through the generator: a sane spectrum, failures, resume after a kill.

No FEFF mocks: the quick tests use a deliberately cheap but real setting (FeO, 4.5 Å
cluster, SCF 2.5 Å, FMS 3 Å, FEFF's default energy grid), a few seconds per spectrum.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xane3.data.embedded import read_shards
from xane3.datagen import feff_runner as fr
from xane3.datagen import structures as st
from xane3.datagen.generate import generate, shard_keys

REPO = Path(__file__).resolve().parents[2]
CHEAP = replace(fr.FeffSettings(), scf_radius=2.5, fms_radius=3.0, cluster_radius=4.5, egrid=())
CHEAP_JSON = json.dumps({"scf_radius": 2.5, "fms_radius": 3.0, "cluster_radius": 4.5, "egrid": []})


@pytest.fixture(scope="module")
def feo() -> st.Slab:
    return st.make_slab("FeO", (0, 0, 1))


def test_real_feff_hematite_spectrum(tmp_path: Path) -> None:
    """Default settings on a hematite (001) inner site: edge, post-edge, full grid."""
    from xane3.data.normalize import default_grid, normalize_record
    from xane3.data.record import SpectrumRecord

    slab = st.make_slab("alpha-Fe2O3", (0, 0, 1))
    site = slab.inner_fe[0]
    res = fr.calculate(slab.atoms, site, fr.FeffSettings(), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # the ~5 MB work dir is deleted
    assert res.scf_converged
    rel = res.energy - res.e0
    assert rel[0] <= -30 and rel[-1] >= 100  # the EGRID covers the model's window
    assert 7105 < res.e0 < 7125  # FEFF's Fermi level sits at the Fe K edge (exp. 7112 eV)
    # Normalised about the inflection point (e0=None): with e0 at the Fermi level, ~12 eV
    # below FEFF's main rise, a quadratic post-edge fit extrapolated back to it tilts the step.
    rec = SpectrumRecord(res.energy, res.mu, "test", 26, None, "inflection", slab.atoms, [site])
    norm = normalize_record(rec, default_grid())
    assert 7115 < norm.e0 < 7135, norm.e0  # main edge: exp. 7112 (onset)-7124 eV, FEFF ~+3 eV
    assert norm.e0 - res.e0 > 3  # the Fermi level lies below the main rise
    assert 0.9 < np.mean(norm.spectrum[norm.energy > 50]) < 1.1
    assert np.all(np.abs(norm.spectrum[norm.energy < -20]) < 0.1)
    assert (res.energy - norm.e0)[0] <= -30 and (res.energy - norm.e0)[-1] >= 100


def test_duplicate_atom_rejected_before_feff(feo: st.Slab, tmp_path: Path) -> None:
    """FEFF itself accepts a duplicate atom and returns a spectrum: we must not."""
    atoms = feo.atoms.copy()
    atoms += atoms[[feo.inner_fe[0]]]
    t0 = time.time()
    with pytest.raises(fr.FeffFailure, match="overlapping atoms .* rejected before FEFF"):
        fr.calculate(atoms, feo.inner_fe[0], fr.FeffSettings(), tmp_path / "run")
    assert time.time() - t0 < 5


def _bad_slab(feo: st.Slab) -> st.Slab:
    """Every O moved to 0.5 Å from an Fe: FEFF fails on it (a real bad input)."""
    atoms = feo.atoms.copy()
    atoms.positions[atoms.numbers == 8] -= [4.332 / 2 - 0.5, 0, 0]
    return st.Slab(atoms, "FeO-bad", feo.facet, 0, "bad", feo.surface_fe[:1], feo.inner_fe[:1])


def test_feff_failure_recorded_and_run_goes_on(feo: st.Slab, tmp_path: Path) -> None:
    good = st.Slab(feo.atoms, feo.phase, feo.facet, 0, feo.parent, feo.surface_fe[:1], [])
    bad = _bad_slab(feo)
    settings = replace(CHEAP, min_distance=0.3, pair_factor=0.0)  # let the bad structure reach FEFF
    counts = generate(workers=2, shard_dir=tmp_path / "shards", cache_dir=tmp_path / "cache",
                      sites_per_slab=1, slabs=[bad, good], settings=settings, progress=False)
    assert counts["new_failed"] == 1 and counts["new_done"] == 1 and counts["in_shards"] == 1
    (failure,) = (tmp_path / "cache" / "failed").glob("*.json")
    rec = json.loads(failure.read_text())
    assert rec["phase"] == "FeO-bad" and rec["error"] and "feff.stdout" in rec["log"]
    (record,) = read_shards(tmp_path / "shards")
    assert record.meta["phase"] == "FeO" and record.absorbers == feo.surface_fe[:1]
    # A second run neither retries the recorded failure nor recomputes the spectrum.
    again = generate(workers=2, shard_dir=tmp_path / "shards", cache_dir=tmp_path / "cache",
                     sites_per_slab=1, slabs=[bad, good], settings=settings, progress=False)
    assert again["new_failed"] == again["new_done"] == again["written"] == 0


def _cli(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "xane3.datagen", "spectra", "--phases", "FeO", "--facets",
            "001", "--rattled", "1", "--sites", "2", "--cpus", "1", "--batch", "1",
            "--no-progress", "--out", str(tmp_path / "shards"), "--cache",
            str(tmp_path / "cache"), "--settings-json", CHEAP_JSON, *extra]


@pytest.mark.slow  # ~60-120 s: two Ray start-ups and four real FEFF runs
def test_resume_after_kill_gives_each_spectrum_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_cli(tmp_path), cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = tmp_path / "cache" / "done"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and not (done.exists() and any(done.glob("*.npz"))):
            assert proc.poll() is None, "generator exited before any result"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its private Ray instance
        proc.wait()
    n_killed = len(list(done.glob("*.npz")))
    assert 1 <= n_killed < 4, "the kill must land part-way"
    out = subprocess.run(_cli(tmp_path), cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["planned"] == 4 and counts["done_total"] == 4
    assert counts["new_done"] == 4 - n_killed  # nothing finished before the kill is rerun
    keys = [r.meta["key"] for r in read_shards(tmp_path / "shards")]
    assert len(keys) == len(set(keys)) == 4
    assert shard_keys(tmp_path / "shards") == {p.stem for p in done.glob("*.npz")}
    # a fresh clone has the shards but no cache: nothing is recomputed or duplicated

    shutil.rmtree(tmp_path / "cache")
    again = subprocess.run(_cli(tmp_path), cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    counts = json.loads(again.stdout.strip().splitlines()[-1])
    assert counts["new_done"] == 0 and counts["in_shards"] == 4
    assert sorted(r.meta["key"] for r in read_shards(tmp_path / "shards")) == sorted(keys)


def test_one_shard_folder_holds_one_feff_setting(tmp_path: Path, capsys) -> None:
    """--quality high (or --settings-json) into the embedded set's folder would mix spectra of
    two settings into one data set: refused before any FEFF run, as is malformed JSON."""
    from xane3.datagen.cli import main
    from xane3.datagen.generate import SHARD_DIR

    shards = tmp_path / "shards"
    shards.mkdir()
    shutil.copy(sorted(SHARD_DIR.glob("*.parquet"))[0], shards)
    args = ["spectra", "--out", str(shards), "--cache", str(tmp_path / "cache"), "--limit", "0",
            "--phases", "FeO", "--facets", "001", "--rattled", "0", "--quiet"]
    assert main(args + ["--quality", "high"]) == 2
    assert "other FEFF settings (cluster_radius, fms_radius, scf_radius)" in capsys.readouterr().err
    assert main(args + ["--settings-json", "{scf_radius: 4}"]) == 2
    assert main(args + ["--settings-json", '{"scf_radus": 4}']) == 2
    assert "expected a JSON object of FeffSettings fields" in capsys.readouterr().err
    assert main(args) == 0  # the embedded set's own settings (fields added since are not compared)
