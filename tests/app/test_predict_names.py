"""predict's command line and output names: nothing accepted without effect, nothing overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from xane3.predict_cli import main
from xane3.predict_inputs import unique_stems


def test_every_input_gets_its_own_output_name() -> None:
    paths = [Path("a.cif"), Path("b/a.xyz"), Path("a_1.cif"), Path("c/a.cif")]
    stems = unique_stems(paths)
    assert len(set(stems)) == len(paths) and stems[0] == "a" and stems[2].startswith("a_1")


def test_top_k_without_an_ensemble_is_refused(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "x.cif"), "--top-k", "2", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "needs --ensemble" in capsys.readouterr().err
