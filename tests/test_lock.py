"""xane3.lock: one process per folder, a dead holder's lock taken over by exactly one."""

from __future__ import annotations

import os
import subprocess
import sys

from races import race

from xane3 import lock

CLAIM = """
try:
    lock.claim(Path(sys.argv[3]), "test")
    print("won")
except FileExistsError:
    print("lost")
"""


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_many_processes_take_over_a_stale_lock_one_wins(tmp_path) -> None:
    """Issue 31: each racer read the dead PID, unlinked and created; a second one could unlink
    the lock the first had just made, and both held it (4 of 40 tries)."""
    folder = tmp_path / "exp"
    folder.mkdir()
    for k in range(3):
        (folder / ".lock").write_text(str(_dead_pid()))  # what a kill -9 leaves
        outs = race("from xane3 import lock", CLAIM.replace("sys.argv[3]", repr(str(folder))),
                    12, tmp_path / f"gate{k}")
        assert sorted(outs) == ["lost"] * 11 + ["won"], outs
    assert not (folder / ".lock").exists()  # the winner released it at exit


def test_a_live_holder_refuses_and_its_own_process_claims_again(tmp_path) -> None:
    held = lock.claim(tmp_path, "me")
    assert lock.claim(tmp_path, "me") == held
    code = f"from pathlib import Path; from xane3 import lock; lock.claim(Path({str(tmp_path)!r}), 'x')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1 and f"in use by process {os.getpid()} (x)" in out.stderr
    lock.release(held)
    assert not held.exists()
