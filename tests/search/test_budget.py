"""What a search on a reduced preset draws, and what it says it will cost (issue 31)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import optuna

from search.spaces import bounded, get_space
from search.table_writer import CostEstimate
from xane3.config import Config, with_overrides
from xane3.overlays import preset


def test_a_tiny_preset_bounds_the_sizes_the_space_draws() -> None:
    """`--preset tiny` drew m0 up to 64 and 6 layers (435-580 s an epoch): capped at 2x tiny."""
    base = preset("tiny")
    space, notes = bounded(get_space("irreps_basis"), base)
    assert any(n.startswith("model.m0 <= 16") for n in notes)
    assert any(n.startswith("model.num_layers <= 4") for n in notes)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(60):
        cfg = with_overrides(Config(), {**base, **space(study.ask())}).model
        assert cfg.m0 <= 16 and cfg.m1 <= 8 and cfg.m2 <= 4 and cfg.num_layers <= 4
    assert bounded(get_space("irreps_basis"), preset("paper"))[1] == []  # the paper's sizes: as is


def test_the_estimate_is_redone_when_finished_trials_disagree(capsys) -> None:
    """The first epoch said ~0.1 h for a 0.19 h run: finished trials now correct it."""
    est = CostEstimate(trials=4, epochs=2, parallel=1)
    est.on_trial_result(0, [], None, {"epoch_time_s": 10.0})  # 4 x 2 x 10 s: 0.02 h
    est.started = time.time() - 600
    slow = SimpleNamespace(last_result={"started_at": time.time() - 600})  # a trial took 10 min
    est.on_trial_complete(0, [], slow)  # 10 min spent + 3 x 10 min to go
    out = capsys.readouterr().out
    assert "~0.02 h" in out and "now projects to ~0.67 h" in out and "3 to go" in out
    est.started = time.time() - 1200
    slow = SimpleNamespace(last_result={"started_at": time.time() - 600})
    est.on_trial_complete(0, [], slow)  # the same pace: no new line
    assert "projects" not in capsys.readouterr().out
