"""One overlay mechanism: every preset, experiment, spec and benchmark target loads through it."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import REPO

from xane3.config import Config, with_overrides
from xane3.overlays import CONF_DIR, compose, experiment, find, load_overlay, overlays, preset


def test_every_overlay_file_in_the_repository_loads() -> None:
    from ablations.specs import PRESET_DIR, SPEC_DIR, RunPreset, SpecFields
    from benchmarks.xanesnet import PRESET_DIR as BENCH_DIR
    from benchmarks.xanesnet import BenchPreset

    kinds = [(CONF_DIR / "preset", None), (CONF_DIR / "experiment", None), (SPEC_DIR, SpecFields),
             (PRESET_DIR, RunPreset), (BENCH_DIR, BenchPreset)]
    loaded = {d.name: overlays(d, extras) for d, extras in kinds}
    assert set(loaded["preset"]) == {"paper", "cpu", "tiny"} and "xanesnet" in loaded["experiment"]
    assert all(o.description for group in loaded.values() for o in group.values())
    files = {p for d, _ in kinds for p in d.glob("*.yaml")}
    assert len(files) == sum(len(g) for g in loaded.values())
    from search.spaces import SPACE_DIR, SpaceFields, spaces  # search spaces: the same loader

    assert set(overlays(SPACE_DIR, SpaceFields)) == set(spaces()) >= {"irreps_basis", "optim", "full"}
    every = {p.resolve() for p in REPO.rglob("*.yaml") if ".venv" not in p.parts and "runs" not in p.parts}
    assert every == {p.resolve() for p in files | set(SPACE_DIR.glob("*.yaml"))}  # none unread


def test_composition_order_and_bases() -> None:
    merged = compose("cpu", "xanesnet", {"train.lr": 5e-4})
    assert merged["model.m0"] == 16 and merged["data.n_points"] == 226 and merged["train.lr"] == 5e-4
    from benchmarks.xanesnet import presets

    full = presets()["full"]  # base: [cpu], then its own epochs
    assert full.overrides["model.m0"] == preset("cpu")["model.m0"]
    assert full.overrides["train.epochs"] == 6 != preset("cpu")["train.epochs"]
    assert full.extras.final_epochs == 40 and full.extras.scheduler == "asha"


def test_train_cli_composes_preset_experiment_and_set() -> None:
    import argparse

    from xane3.train.__main__ import build_config

    args = argparse.Namespace(config=None, preset="tiny", experiment="xanesnet", db=None, epochs=3,
                              set=["train.lr=5e-4"])
    cfg = build_config(args)
    assert (cfg.model.m0, cfg.data.n_points, cfg.train.epochs, cfg.train.lr) == (8, 226, 3, 5e-4)
    assert cfg.train.select_on == "spectrum"
    spec = REPO / "ablations/specs/no_layer_norm.yaml"  # an ablation spec as an experiment file
    args.experiment = str(spec)
    assert build_config(args).model.layer_norm is False


def test_bad_overlays_name_the_file(tmp_path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump({"overrides": {"model.layer_nrom": False}}))
    with pytest.raises(ValueError, match=re.escape(str(bad)) + ".*layer_nrom"):
        load_overlay(bad)
    bad.write_text(yaml.safe_dump({"overide": {}}))
    with pytest.raises(ValueError, match="typo.yaml: unknown field.*overide"):
        load_overlay(bad)
    bad.write_text(yaml.safe_dump({"base": ["cpuu"]}))
    with pytest.raises(ValueError, match="unknown preset 'cpuu'; known: cpu, paper, tiny"):
        load_overlay(bad)
    bad.write_text("overrides: [1, 2")
    with pytest.raises(ValueError, match="unreadable overlay"):
        load_overlay(bad)
    with pytest.raises(KeyError, match="unknown experiment 'xanesnett'; known: xanesnet"):
        experiment("xanesnett")
    with pytest.raises(FileNotFoundError, match="no such experiment file"):
        find(CONF_DIR / "experiment", str(tmp_path / "none.yaml"), "experiment")


def test_table1_cpu_preset_is_the_one_its_committed_table_ran() -> None:
    """Moving the ablation presets into YAML changed no number: the committed Table 1 header
    records the overrides it ran with."""
    from ablations.specs import presets

    text = (REPO / "results/table1_ablations-cpu-2core.md").read_text()
    recorded = json.loads(re.search(r"Preset overrides: `(\{.*\})`", text).group(1))
    assert presets()["cpu-2core"].overrides == recorded
    with_overrides(Config(), recorded)


def test_help_lists_the_overlays(capsys) -> None:
    from xane3.train.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "tiny (a tiny model for tests" in text and "(xanesnet)" in text


def test_an_experiment_with_an_unknown_field_is_refused_not_dropped(tmp_path, capsys) -> None:
    """Issue 31: ``overides:`` in an --experiment file passed unread and the run kept m0 = 8; only an
    ablation spec's own fields may pass unread, and a JSON config's unknown section is refused too."""
    from dataclasses import fields

    from ablations.specs import SpecFields
    from xane3.model.__main__ import main

    typo = tmp_path / "t.yaml"
    typo.write_text("overides:\n  model.m0: 4\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--summary", "--preset", "tiny", "--experiment", str(typo)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{typo}: unknown field(s) 'overides'" in err
    assert '"' not in err.split("error:", 1)[1]  # one line, no KeyError quotes
    from xane3.overlays import SPEC_FIELDS

    assert set(SPEC_FIELDS) == {f.name for f in fields(SpecFields)}
    assert experiment(str(REPO / "ablations/specs/no_tensorial_features.yaml"))["model.m0"] == 63
    bad = tmp_path / "c.json"
    bad.write_text('{"trian": {}}')
    with pytest.raises(ValueError, match=re.escape(f"{bad}: unknown config section(s) 'trian'")):
        Config.load(bad)
