"""Ray as the test suite runs it: its temporary files stay in the suite's own folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def test_ray_keeps_its_temp_files_in_the_suites_folder() -> None:
    """Issue 31: the tests wrote Ray's sessions under the system temp default (/tmp/ray), beside
    every other run's; conftest's session fixture points RAY_TMPDIR at a short folder of its own."""
    import ray

    from xane3.rayenv import start_ray

    own = os.environ.get("RAY_TMPDIR")
    assert own and Path(own).resolve() != Path(tempfile.gettempdir()).resolve(), "RAY_TMPDIR not set"
    assert start_ray(num_cpus=1, log_to_driver=False)
    try:
        sessions = list((Path(own) / "ray").glob("session_2*"))
        assert sessions and (Path(own) / "ray" / "session_latest").exists()
        assert len(str(sessions[0] / "sockets" / "plasma_store")) < 108  # a Unix socket path's limit
    finally:
        ray.shutdown()
