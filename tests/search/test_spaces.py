"""Search spaces are overlay files (issue 15): read and checked by one loader, drawn in order."""

from __future__ import annotations

import optuna
import pytest

from search.run import main
from search.spaces import get_space, load_space, spaces


def _draws(space, n=30):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(n):
        trial = study.ask()
        yield trial, space(trial)
        study.tell(trial, 0.0)


def test_conditions_defaults_and_derived_keys() -> None:
    for trial, o in _draws(get_space("molecules")):
        full = o["model.tensor_product"] == "full"
        assert ("model.m0" in trial.params) == (not full)  # drawn only for channel-wise
        if full:
            assert (o["model.m0"], o["model.m1"], o["model.m2"]) == (16, 8, 4)
        assert "basis.learn" not in o and {"model.learn_centers", "model.learn_widths"} <= set(o)
    for trial, o in _draws(get_space("width_lr_small")):
        assert set(trial.params) == {"train.lr", "model.m0", "model.n_gaussians"}
        assert (o["model.m1"], o["model.m2"]) == (o["model.m0"] // 2, o["model.m0"] // 4)


def test_include_draws_each_parameter_once() -> None:
    full = [p.name for p in spaces()["full"].params]
    assert len(full) == len(set(full)) and full[:8] == [p.name for p in spaces()["irreps_basis"].params]


def test_a_users_space_file_runs_and_bad_ones_name_the_file(tmp_path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("description: two learning rates\nparams:\n  train.lr: [1.0e-3, 3.0e-4]\n")
    assert {o["train.lr"] for _, o in _draws(get_space(str(mine)), 12)} == {1e-3, 3e-4}
    bad = {"typo.yaml": "params:\n  model.m00: [1, 2]\n",
           "ref.yaml": "params:\n  model.m1: {divide: [model.m0, 2]}\n",
           "kind.yaml": "params:\n  train.lr: {int: [1, 2], float: [0.1, 0.2]}\n",
           "fixed.yaml": "overrides:\n  train.lr: 0.1\nparams:\n  model.m0: [8]\n"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=name):
            load_space(tmp_path / name)
    assert main(["--space", "nope", "--trials", "1"]) == 2


def test_a_search_draws_from_the_file_as_it_was_when_it_started(tmp_path) -> None:
    """Tune pickles the searcher (and so the space) for --resume; an edit after the start
    must not change what the remaining trials draw."""
    import pickle

    from search.optuna_setup import SpaceFn

    mine = tmp_path / "mine.yaml"
    mine.write_text("params:\n  train.lr: [1.0e-3, 3.0e-4]\n")
    fn = SpaceFn(str(mine))
    mine.write_text("params:\n  train.lr: [5.0e-2]\n")
    resumed = pickle.loads(pickle.dumps(fn))
    assert {o["overrides"]["train.lr"] for _, o in _draws(resumed, 12)} == {1e-3, 3e-4}
