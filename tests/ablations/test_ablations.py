"""Ablations: specs are exact config diffs, every variant is invariant, the runner writes Table 1."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ablations import specs as specmod
from ablations.run import main, plan
from ablations.specs import presets
from ablations.stats import ci_half_width
from ablations.study import Study, write_table
from ablations.table import score_rows, summarise
from xane3.config import Config, with_overrides
from xane3.model import XANE3
from xane3.testing import assert_invariant_spectra, feo_slab

PRESETS = presets()

SPECS = specmod.load_specs()
EXPECTED = {"baseline", "no_derivative_loss", "no_global_background", "no_gated_residual",
            "no_attention_pooling", "no_layer_norm", "no_tensorial_features",
            "basis_learn_centers_widths", "basis_learn_widths_uniform", "basis_learn_widths_physics",
            "full_tensor_product", "channelwise_tensor_product"}


def _diff(a: Config, b: Config) -> dict:
    fa, fb = a.flat(), b.flat()
    return {k: fb[k] for k in fa if fa[k] != fb[k]}


def test_every_paper_ablation_is_declared() -> None:
    assert EXPECTED <= set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_diff_is_exactly_what_it_declares(name) -> None:
    spec = SPECS[name]
    cfg = with_overrides(Config(), spec.overrides)
    declared = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.overrides.items()}
    actual = _diff(Config(), cfg)
    # a declared value equal to the default (e.g. learn_centers: true) is no diff
    assert actual == {k: v for k, v in declared.items() if Config().flat()[k] != v}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_spec_model_is_invariant(name) -> None:
    torch.manual_seed(0)
    cfg = with_overrides(Config(), {**PRESETS["smoke"].overrides, **SPECS[name].overrides})
    model = XANE3(cfg.model)
    assert_invariant_spectra(model, feo_slab(seed=1), absorber=0, dtype=torch.float64)


def test_scalar_only_spec_is_capacity_matched_under_reduced_presets() -> None:
    (label, over), *_ = plan(["no_tensorial_features"], "cpu-2core", 1)
    base = with_overrides(Config(), PRESETS["cpu-2core"].overrides)
    variant = with_overrides(Config(), {**PRESETS["cpu-2core"].overrides, **over})
    nb, nv = specmod.count_parameters(base), specmod.count_parameters(variant)
    assert not variant.model.tensorial and abs(nv - nb) / nb < 0.1
    assert label == "no_tensorial_features__seed0"


def test_unknown_keys_are_errors(tmp_path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump({"overrides": {"model.layer_nrom": False}}))
    with pytest.raises(ValueError, match="layer_nrom"):
        specmod.load_spec(bad)
    bad.write_text(yaml.safe_dump({"overide": {}}))
    with pytest.raises(ValueError, match="unknown field"):
        specmod.load_spec(bad)
    with pytest.raises(KeyError, match="no_such_spec"):
        plan(["no_such_spec"], "smoke", 1)


def test_table_scores_with_baseline_weights_and_ci() -> None:
    rows = pd.DataFrame({
        "spec": ["baseline"] * 3 + ["no_derivative_loss"] * 3, "seed": [0, 1, 2] * 2,
        "test_spectrum": [1e-3, 1.1e-3, 0.9e-3, 2e-3, 2.1e-3, 1.9e-3],
        "test_gradient": [4e-6] * 6, "test_curvature": [3e-6] * 6,
    })
    s = score_rows(rows, 150.0, 200.0)
    assert s["gradient"].iloc[0] == pytest.approx(0.6) and s["curvature"].iloc[0] == pytest.approx(0.6)
    summ = summarise(s, ["baseline", "no_derivative_loss"])
    assert summ.loc[0, "total"] == pytest.approx(1.0 + 0.6 + 0.6)
    assert summ.loc[1, "spectrum_delta"] == pytest.approx(1.0)  # +1e-3 on every seed
    assert summ.loc[1, "spectrum_verdict"] == "worse"
    assert summ.loc[0, "spectrum_ci95"] == pytest.approx(ci_half_width(s["spectrum"].iloc[:3].to_numpy()))


@pytest.mark.slow
def test_smoke_run_all_writes_table_and_resume_skips(small_real_db, tmp_path, capsys) -> None:
    args = ["all", "--preset", "smoke", "--data", str(small_real_db), "--wandb", "disabled",
            "--results-dir", str(tmp_path / "results"), "--experiments-dir", str(tmp_path / "runs"),
            "--name", "smoke"]
    assert main(args) == 0
    planned = {label.split("__seed")[0] for label, _ in plan(["all"], "smoke", 1)}
    # no-ops where the baseline already has them (the full TP, learned centres with fixed widths)
    assert planned == set(SPECS) - {"full_tensor_product", "basis_learn_centers"}
    rows = pd.read_parquet(tmp_path / "results" / "ablations.parquet")
    assert len(rows) == len(planned) * PRESETS["smoke"].extras.seeds
    assert set(rows["label"].str.split("__seed").str[0]) == planned
    assert rows["cpu_model"].notna().all() and rows["config_hash"].str.len().eq(16).all()
    assert rows["data_hash"].notna().all() and (rows["torch_threads"] >= 1).all()
    md = (tmp_path / "results" / "table1_smoke.md").read_text()
    for name in planned:
        assert f"| {name} |" in md
    assert (tmp_path / "results" / "table1_smoke.png").stat().st_size > 10_000
    # resume: nothing reruns, every (spec, seed) still exactly once; without --data the table
    # still records (and scores its mean-spectrum row on) the data the trials ran on
    assert main([a for a in args if a not in ("--data", str(small_real_db))] + ["--resume"]) == 0
    assert str(Path(small_real_db).resolve()) in (tmp_path / "results" / "table1_smoke.md").read_text()
    rows2 = pd.read_parquet(tmp_path / "results" / "ablations.parquet")
    assert len(rows2) == len(rows)
    assert sorted(rows2["trial_id"]) == sorted(rows["trial_id"])


def test_bad_data_is_one_line_and_leaves_no_folder(tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(["baseline", "--preset", "smoke", "--data", str(tmp_path / "nope.db"),
                 "--experiments-dir", str(runs), "--results-dir", str(tmp_path / "res")]) == 2
    assert "nope.db" in capsys.readouterr().err and not runs.exists()


def test_cli_list_prints_every_spec(capsys) -> None:
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in SPECS:
        assert name in out
    assert dataclasses.is_dataclass(specmod.Spec)


def test_table_of_runs_that_did_not_learn_marks_nothing_significant() -> None:
    """Issue 17: a smoke table whose baseline total was 1082 ± 5168 (mean spectrum: 196) starred
    an effect as significant."""
    from ablations.table import markdown, summarise

    rng = np.random.default_rng(0)
    rows = [{"spec": spec, "seed": k, "total": t, "spectrum": t / 10, "gradient": t / 2, "curvature": t / 3}
            for spec, centre in (("baseline", 1000.0), ("no_gated_residual", 100.0))
            for k, t in enumerate(centre + rng.normal(0, 5, 3))]
    summary = summarise(pd.DataFrame(rows), ["baseline", "no_gated_residual"])
    assert summary["total_verdict"].iloc[1] == "better"  # a "resolved" difference between non-learners
    mean = {"total": 196.0, "spectrum": 12.0, "gradient": 100.0, "curvature": 80.0}
    md = markdown(summary, mean)
    assert "Not interpretable" in md and ", better)" not in md
    assert ", better)" in markdown(summary, {k: 1e6 for k in mean})  # learned: the verdict is back


def _params(overrides: dict) -> int:
    return sum(p.numel() for p in XANE3(with_overrides(Config(), overrides).model).parameters())


def test_capacity_matching_sees_the_users_set() -> None:
    """--set model.m1=12 ... with --preset cpu: the scalar-only row matches *that* baseline."""
    user = {"model.m1": 12, "model.m2": 6}
    pre = PRESETS["cpu-2core"]
    assert pre.extras.rescale
    runs = dict(plan(["baseline", "no_tensorial_features"], "cpu-2core", 1, user))
    base = _params({**pre.overrides, **user, **runs["baseline__seed0"]})
    scalar = _params({**pre.overrides, **user, **runs["no_tensorial_features__seed0"]})
    assert abs(scalar / base - 1) < 0.1, (scalar, base)


def test_resume_asking_for_other_runs_is_refused(tmp_path, capsys) -> None:
    """--resume runs what the study started with; other specs, seeds or --set are refused."""
    res = tmp_path / "res"
    Study("smoke", "smoke", 1, dict(PRESETS["smoke"].overrides), plan(["baseline"], "smoke", 1)).save(res)
    common = ["--preset", "smoke", "--results-dir", str(res), "--name", "smoke", "--resume"]
    assert main(["baseline", "--seeds", "5", *common]) == 2
    assert "5 runs (started with 1" in capsys.readouterr().err
    assert main(["baseline", "--seeds", "1", "--set", "train.lr=0.5", *common]) == 2
    assert "other --set values" in capsys.readouterr().err
    assert main(["baseline", "--seeds", "1", *common[:-1]]) == 2  # without --resume: exists
    assert "pass --resume" in capsys.readouterr().err
    assert main(["baseline", "--seeds", "1", *common[:4], "--name", "other", "--resume"]) == 2
    assert "no study 'other'" in capsys.readouterr().err


def test_resume_compares_set_values_as_the_config_types_them() -> None:
    """``--set train.lr=5e-4`` (a string to YAML) is the stored 0.0005: no refusal; 1e-3 is."""
    configs = plan(["baseline"], "smoke", 1)
    study = Study("e", "smoke", 1, {"train.lr": 0.0005}, configs)
    assert study.differs(configs, {"train.lr": "5e-4"}, "smoke") == ""
    assert "other --set values" in study.differs(configs, {"train.lr": "1e-3"}, "smoke")
    assert "preset paper" in study.differs(configs, {"train.lr": "5e-4"}, "paper")


def test_a_bad_name_is_one_line(tmp_path, capsys) -> None:
    assert main(["baseline", "--preset", "smoke", "--name", "my run", "--experiments-dir",
                 str(tmp_path / "runs"), "--results-dir", str(tmp_path / "res")]) == 2
    assert "experiment name 'my run'" in capsys.readouterr().err


@pytest.mark.slow
def test_when_every_run_fails_no_table_is_written(small_real_db, tmp_path, capsys) -> None:
    """Every trial fails (a warm start from another model's weights): exit 1, said, no table."""
    from xane3.overlays import preset
    from xane3.train import fit

    other = fit(with_overrides(Config(), {**preset("tiny"), "model.m0": 6, "train.epochs": 1,
                                          "train.max_steps_per_epoch": 1, "data.subset": 40}),
                out_dir=tmp_path / "other", progress=False).checkpoint
    results = tmp_path / "results"
    assert main(["baseline", "--preset", "smoke", "--seeds", "1", "--data", str(small_real_db),
                 "--set", f"train.init_from={other}", "--wandb", "disabled", "--name", "fails",
                 "--results-dir", str(results), "--experiments-dir", str(tmp_path / "runs")]) == 1
    assert "no run finished" in capsys.readouterr().err
    assert not (results / "table1_fails.md").exists()


def test_a_set_seed_is_refused_not_overruled(capsys) -> None:
    """Every run's seed is its index; a --set train.seed would be silently replaced."""
    with pytest.raises(ValueError, match="train.seed"):
        plan(["baseline"], "cpu-2core", 2, {"train.seed": 7})
    with pytest.raises(SystemExit):
        main(["baseline", "--preset", "smoke", "--set", "train.seed=7"])
    assert "train.seed" in capsys.readouterr().err


def test_table_scores_with_the_experiments_own_weights(small_real_db, tmp_path) -> None:
    """--set train.lambda_grad=50: the rows and the mean-spectrum row are totalled at 50, as
    the baseline trained, not at the default 150."""
    rows = pd.DataFrame({"label": ["baseline__seed0", "baseline__seed1"], "status": "completed",
                         "n_parameters": 10, "test_spectrum": [1e-3, 1e-3],
                         "test_gradient": [4e-6, 4e-6], "test_curvature": [3e-6, 3e-6]})
    base = {"data.db": str(small_real_db), "train.lambda_grad": 50.0}
    twice = pd.concat([rows.assign(ended_at=1.0), rows.iloc[:1].assign(ended_at=0.0, test_spectrum=9.0)])
    study = Study("w", "smoke", 2, base, plan(["baseline"], "smoke", 2), "cmd")
    md = write_table(twice, study, tmp_path)  # seed 0 twice: the last counts
    total = 1e-3 + 50 * 4e-6 + 200 * 3e-6
    assert f"| baseline | 10 | 2 | {total * 1e3:.3f}" in md, md
    summary = pd.read_csv(tmp_path / "table1_w.csv")
    assert summary.loc[0, "gradient"] == pytest.approx(50 * 4e-3)
