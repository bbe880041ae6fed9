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


def test_a_replaced_state_file_in_a_signed_folder_is_refused(tmp_path) -> None:
    exp, tune = _experiment(tmp_path)
    cb = SignContents(exp, tune)
    cb.on_step_end(0, [])  # what the driver's Tune loop does after each step
    claim.verify(exp)  # as written: resumable
    (tune / "tuner.pkl").write_bytes(pickle.dumps({"what": "someone else's code"}))
    with pytest.raises(claim.UntrustedExperiment, match="tune/tuner.pkl is not the file xane3 wrote"):
        claim.verify(exp)
    cb.on_step_end(1, [])  # the driver itself rewrote it: signed again
    claim.verify(exp)
    (tune / "searcher-state-2027.pkl").write_bytes(pickle.dumps("planted"))
    with pytest.raises(claim.UntrustedExperiment, match="searcher-state-2027.pkl .*unsigned"):
        claim.verify(exp)
    with pytest.raises(claim.UntrustedExperiment):
        runner.prepare("s", tmp_path / "runs", resume=True)  # before Tune reads anything


def test_a_folder_with_unsigned_state_needs_the_users_word(tmp_path) -> None:
    """A signed folder from before content signatures: refused until `search.trust` vouches."""
    exp, _tune = _experiment(tmp_path)
    with pytest.raises(claim.UntrustedExperiment, match="no valid .xane3-contents"):
        claim.verify(exp)
    claim.trust(exp)
    claim.verify(exp)
