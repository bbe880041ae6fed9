"""The signature covers what Tune unpickles, not only the folder's path (issue 31)."""

from __future__ import annotations

import pickle

import pytest

from search import claim, runner
from search.table_writer import SignContents


@pytest.fixture(autouse=True)
def own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("XANE3_CONFIG_DIR", str(tmp_path / "config"))


def _experiment(tmp_path):
    exp = tmp_path / "runs" / "s"
    runner.Experiment(name="s", kind="search", base={}, max_epochs=1).save(exp)
    tune = exp / "tune"
    tune.mkdir()
    (tune / "tuner.pkl").write_bytes(pickle.dumps({"what": "the driver wrote this"}))
    (tune / "searcher-state-2026.pkl").write_bytes(pickle.dumps([1, 2]))
    (tune / "experiment_state-2026.json").write_text('{"trials": []}')
    return exp, tune


def test_only_signed_state_is_ever_left_for_tune_to_unpickle(tmp_path, capsys) -> None:
    exp, tune = _experiment(tmp_path)
    original = (tune / "tuner.pkl").read_bytes()
    cb = SignContents(exp, tune)
    cb.on_step_end(0, [])  # what the driver's Tune loop does after each step
    claim.verify(exp)  # as written: resumable, untouched
    assert (tune / "tuner.pkl").read_bytes() == original
    (tune / "tuner.pkl").write_bytes(pickle.dumps({"what": "someone else's code"}))
    (tune / "searcher-state-2027.pkl").write_bytes(pickle.dumps("planted"))
    runner.prepare("s", tmp_path / "runs", resume=True)  # before Tune reads anything
    err = capsys.readouterr().err
    assert "tune/tuner.pkl changed after xane3 last signed it" in err and "set aside" in err
    assert (tune / "tuner.pkl").read_bytes() == original  # the signed bytes are back
    assert not (tune / "searcher-state-2027.pkl").exists()
    assert (exp / claim.SET_ASIDE / "searcher-state-2027.pkl").exists()
    cb.on_step_end(1, [])  # the driver rewrites and re-signs as it goes
    (tune / "tuner.pkl").write_bytes(b"newer, by the driver")
    cb.on_step_end(2, [])
    claim.verify(exp)
    assert (tune / "tuner.pkl").read_bytes() == b"newer, by the driver"


def test_a_driver_killed_between_a_write_and_its_signature_resumes(tmp_path, capsys) -> None:
    """The kill -9 window: Tune rewrote its state, the signature had not caught up."""
    exp, tune = _experiment(tmp_path)
    SignContents(exp, tune).on_step_end(0, [])
    (tune / "experiment_state-2026.json").write_text('{"trials": ["newer"]}')  # then SIGKILL
    claim.verify(exp)
    assert (tune / "experiment_state-2026.json").read_text() == '{"trials": []}'
    assert "resuming from the signed copy" in capsys.readouterr().err


def test_a_folder_with_unsigned_state_needs_the_users_word(tmp_path) -> None:
    """A signed folder from before content signatures: refused until `search.trust` vouches."""
    exp, _tune = _experiment(tmp_path)
    with pytest.raises(claim.UntrustedExperiment, match="no valid .xane3-contents"):
        claim.verify(exp)
    claim.trust(exp)
    claim.verify(exp)
