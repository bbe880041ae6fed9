from pathlib import Path

import pytest

from xane3.atomic import atomic_path, write_text_atomic


def test_failed_write_leaves_target_and_no_temp(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # the temp file is gone
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """An atomic write must not leave results readable by their owner only (mkstemp's 0600)."""
    import os

    old = os.umask(0o022)
    try:
        fresh = write_text_atomic(tmp_path / "new.csv", "x")
        assert fresh.stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.csv"
        kept.write_text("a")
        kept.chmod(0o640)
        write_text_atomic(kept, "b")  # an existing file keeps its mode
        assert kept.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_table_writers_round_trip_and_leave_no_temp(tmp_path: Path) -> None:
    import pandas as pd

    from xane3.atomic import write_csv_atomic, write_parquet_atomic

    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    pd.testing.assert_frame_equal(pd.read_csv(write_csv_atomic(df, tmp_path / "t.csv")), df)
    pd.testing.assert_frame_equal(pd.read_parquet(write_parquet_atomic(df, tmp_path / "t.parquet")), df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.parquet"]
