"""Recorded input paths stay meaningful on another clone; hashes name exact files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from xane3.provenance import file_sha256, portable_path


def test_portable_path_is_relative_to_the_working_directory(tmp_path, monkeypatch) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "run")
    assert portable_path(tmp_path / "shared" / "data") == "../shared/data"
    assert portable_path("x.pt") == "x.pt"
    assert portable_path(tmp_path / "shared", start=tmp_path) == "shared"


def test_file_sha256_reads_in_chunks(tmp_path) -> None:
    blob = bytes(range(256)) * 5000  # larger than the chunk used below
    (tmp_path / "f.bin").write_bytes(blob)
    assert file_sha256(tmp_path / "f.bin", chunk=4096) == hashlib.sha256(blob).hexdigest()
    assert file_sha256(Path(tmp_path / "f.bin")) == hashlib.sha256(blob).hexdigest()
