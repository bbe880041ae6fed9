"""A study runs in pieces: continued from its tables alone, split over shards, seeds paired."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from ablations.run import main, plan
from ablations.specs import presets
from ablations.study import Study, missing, read_rows, shard
from ablations.table import main as table_main
from xane3.config import Config, with_overrides


def test_seed_k_pairs_split_data_order_and_init_across_specs(small_real_db) -> None:
    """Every spec at seed k trains on the same split, in the same order, from the same seed."""
    from xane3.data.dataset import load_dataset
    from xane3.data.loader import SpectrumLoader
    from xane3.data.splits import splits_of

    pre = presets()["smoke"].overrides
    runs = plan(["all"], "smoke", 2)
    assert [label.split("__seed")[1] for label, _ in runs[:3]] == ["0", "0", "0"]  # seed-major
    ds = load_dataset(with_overrides(Config(), {**pre, "data.db": str(small_real_db)}).data)
    seen: dict[int, tuple] = {}
    for _label, over in runs:
        cfg = with_overrides(Config(), {**pre, **over, "data.db": str(small_real_db)})
        split = splits_of(ds, cfg.data)
        loader = SpectrumLoader(ds, split["train"], cfg.train.batch_size, shuffle=True,
                                mode=cfg.train.batching, seed=cfg.train.seed)
        order = []
        for epoch in range(3):
            loader.set_epoch(epoch)
            order.append(tuple(loader.order()))
        key = (tuple(split["train"]), tuple(split["val"]), tuple(split["test"]), str(order),
               cfg.train.seed, cfg.data)
        seen.setdefault(cfg.train.seed, key)
        assert key == seen[cfg.train.seed], _label
    assert seen[0][3] != seen[1][3]  # seeds differ in data order (and so pair nothing by accident)


def test_shards_are_disjoint_and_cover_the_study() -> None:
    runs = plan(["all"], "smoke", 3)
    parts = [shard(runs, k, 3) for k in (1, 2, 3)]
    labels = [label for part in parts for label, _ in part]
    assert sorted(labels) == sorted(label for label, _ in runs) and len(set(labels)) == len(runs)


@pytest.mark.slow
def test_continue_from_tables_alone_and_merge_two_shards(small_real_db, tmp_path, capsys) -> None:
    """Piece 1 runs one run and stops; its Ray folder is deleted; --resume on "another machine"
    (a copy of the results only) runs the rest as two shards in two results folders whose rows,
    merged, make one table with nothing missing. Finished rows are never rerun."""
    res_a = tmp_path / "machine_a" / "results"
    common = ["baseline", "no_layer_norm", "--preset", "smoke", "--seeds", "2", "--db", str(small_real_db),
              "--wandb", "disabled", "--name", "st"]
    assert main([*common, "--results-dir", str(res_a), "--experiments-dir",
                 str(tmp_path / "machine_a" / "runs"), "--max-runs", "1"]) == 0
    first = read_rows(res_a, "st")
    assert len(first) == 1 and first["status"].iloc[0] == "completed"
    shutil.rmtree(tmp_path / "machine_a" / "runs")  # the Ray Tune folder is gone
    assert "3 run(s) missing" in _table(res_a)
    # two more machines, each with a copy of the results, one shard each
    res = {k: tmp_path / f"machine_{k}" / "results" for k in (1, 2)}
    for k, folder in res.items():
        shutil.copytree(res_a, folder)
        assert main([*common, "--results-dir", str(folder), "--experiments-dir",
                     str(tmp_path / f"machine_{k}" / "runs"), "--resume", "--shard", f"{k}/2"]) == 0
    merged = tmp_path / "merged"
    shutil.copytree(res[1], merged)
    shutil.copytree(res[2], merged, dirs_exist_ok=True)  # every trial owns its part file
    rows = read_rows(merged, "st")
    assert sorted(rows["label"]) == sorted(label for label, _ in Study.load(merged, "st").configs)
    assert first["trial_id"].iloc[0] in set(rows["trial_id"])  # piece 1's row kept, not rerun
    assert missing(Study.load(merged, "st"), rows) == []
    assert "0 run(s) missing" in _table(merged)
    md = (merged / "table1_st.md").read_text()
    assert "| no_layer_norm | total | 2 |" in md and "none missing" in md
    # a resume with nothing left runs nothing and rewrites the table
    assert main([*common, "--results-dir", str(merged), "--experiments-dir", str(tmp_path / "r"),
                 "--resume"]) == 0
    assert len(read_rows(merged, "st")) == 4


def _table(results) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert table_main(["st", "--results-dir", str(results)]) == 0
    return out.getvalue()


def test_table_command_errors_are_one_line(tmp_path, capsys) -> None:
    assert table_main(["nope", "--results-dir", str(tmp_path)]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    Study("e", "smoke", 1, {}, plan(["baseline"], "smoke", 1)).save(tmp_path)
    assert table_main(["e", "--results-dir", str(tmp_path)]) == 1
    assert "no finished run" in capsys.readouterr().err
    assert pd.DataFrame().empty
