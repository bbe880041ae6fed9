"""``python -m xane3.datagen``: bad arguments, one generation per shard folder, an honest exit
status and card (review findings of 2026-12-03, each reproduced before the fix; no FEFF runs)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from xane3.data.embedded import read_shards
from xane3.datagen.cli import main
from xane3.datagen.generate import SHARD_DIR, Cache

ARGS = ["--phases", "FeO", "--facets", "001", "--rattled", "0", "--quiet"]


@pytest.mark.parametrize("bad,message", [
    (["--phases", "FeX"], "unknown phase"), (["--facets", "1x1"], "three-digit Miller"),
    (["--facets", "000"], "three-digit Miller"), (["--facets", "01"], "three-digit Miller"),
    (["--rattled", "-3"], "expected 0 or more"), (["--limit", "-1"], "expected 0 or more"),
    (["--sites", "0"], "--sites"),
])
def test_bad_arguments_are_refused_by_name(bad, message, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["spectra", "--out", str(tmp_path / "s"), "--cache", str(tmp_path / "c"), *bad])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_second_generation_on_the_same_shards_is_refused(tmp_path, capsys) -> None:
    """Two runs on one folder each wrote their own shards: every spectrum twice."""
    shards = tmp_path / "shards"
    shards.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (shards / ".lock").write_text(str(holder.pid))  # what the running generation holds
        rc = main(["spectra", "--out", str(shards), "--cache", str(tmp_path / "c"), "--limit", "0", *ARGS])
        assert rc == 2 and f"in use by process {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_shards_holding_a_spectrum_twice_read_it_once(tmp_path) -> None:
    first = sorted(SHARD_DIR.glob("*.parquet"))[0]
    shutil.copy(first, tmp_path / first.name)
    shutil.copy(first, tmp_path / ("z" + first.name))
    with pytest.warns(UserWarning, match="read once"):
        recs = read_shards(tmp_path)
    keys = [r.meta["key"] for r in recs]
    assert len(keys) == len(set(keys)) > 0  # the copy's rows are the same spectra: read once


def test_all_sites_rejected_is_a_failed_job_and_said(tmp_path, capsys) -> None:
    rc = main(["spectra", "--out", str(tmp_path / "s"), "--cache", str(tmp_path / "c"), "--limit", "0",
               "--settings-json", '{"min_distance": 5}', *ARGS])
    out = capsys.readouterr()
    assert rc == 1 and "rejected FeO (001)" in out.out and "site(s) rejected" in out.err


def test_a_success_clears_the_earlier_failure(tmp_path) -> None:
    cache = Cache(tmp_path)
    cache.put("k", {"ok": False, "error": "boom", "log": ""}, {})
    cache.put("k", {"ok": True, "energy": np.zeros(3), "mu": np.zeros(3), "e0": 0.0,
                    "scf_converged": True, "seconds": 1.0}, {})
    assert cache.done_keys() == {"k"} and cache.failed_keys() == set()


def test_card_refuses_a_folder_without_shards_or_a_card_without_its_block(tmp_path, capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "data.md").write_text("# data\n<!-- counts:start -->\nold\n<!-- counts:end -->\n")
    assert main(["card", "--out", str(tmp_path / "nowhere"), "--docs", str(docs)]) == 2
    assert "no shards" in capsys.readouterr().err and "old" in (docs / "data.md").read_text()
    (docs / "data.md").write_text("# data without the block\n")
    assert main(["card", "--docs", str(docs)]) == 2
    assert "no <!-- counts:start -->" in capsys.readouterr().err


@pytest.mark.parametrize("settings,message", [
    ('{"egrid": "e_grid -35 -5 0.5"}', "list of FEFF EGRID lines"),  # was written one char a line
    ('{"scf_radius": -3}', "positive"), ('{"cluster_radius": "7"}', "expected a number"),
])
def test_settings_json_is_type_checked_before_any_feff_input(settings, message, tmp_path, capsys) -> None:
    rc = main(["spectra", "--out", str(tmp_path / "s"), "--cache", str(tmp_path / "c"), "--limit", "0",
               "--settings-json", settings, *ARGS])
    assert rc == 2 and message in capsys.readouterr().err
