"""A driver killed with -9 leaves its private Ray's agents running: the next run of the same
folder ends them, and nothing else (issue 31)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from xane3.rayenv import SESSION_FILE, reap_session

SLEEP = "import time; time.sleep(120)"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_what_a_killed_driver_left_is_ended_and_nothing_else(tmp_path) -> None:
    ours = tmp_path / "ray" / "session_2026-12-07_21-00-00_000000_111"
    other = tmp_path / "ray" / "session_2026-12-07_21-00-00_000000_222"
    left = subprocess.Popen([sys.executable, "-c", SLEEP, f"--session-dir={ours}"])
    bystander = subprocess.Popen([sys.executable, "-c", SLEEP, f"--session-dir={other}"])
    try:
        folder = tmp_path / "exp"
        folder.mkdir()
        (folder / SESSION_FILE).write_text(json.dumps({"driver_pid": _dead_pid(), "session_dir": str(ours)}))
        assert reap_session(folder, grace_s=5) == 1
        time.sleep(0.2)
        assert left.poll() is not None and bystander.poll() is None
        assert not (folder / SESSION_FILE).exists()
    finally:
        for p in (left, bystander):
            p.kill()
            p.wait()


def test_a_live_driver_keeps_its_ray(tmp_path) -> None:
    ours = tmp_path / "session_x"
    left = subprocess.Popen([sys.executable, "-c", SLEEP, str(ours)])
    driver = subprocess.Popen([sys.executable, "-c", SLEEP])
    try:
        (tmp_path / SESSION_FILE).write_text(json.dumps({"driver_pid": driver.pid, "session_dir": str(ours)}))
        assert reap_session(tmp_path) == 0 and left.poll() is None
    finally:
        for p in (left, driver):
            p.kill()
            p.wait()
