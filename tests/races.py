"""Many processes at one moment: the starting gun of the race tests (imported by them).

Each racer imports what it needs, says it is ready and spins until every racer is; then
it runs the body, prints one line and waits until every racer has finished the body, so
nothing one racer holds (a lock) is released while another is still trying.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

_BEFORE = """
import os, sys, time
from pathlib import Path
gate, n = Path(sys.argv[1]), int(sys.argv[2])
def _wait(kind):
    (gate / f"{kind}.{os.getpid()}").touch()
    while len(list(gate.glob(kind + ".*"))) < n:
        time.sleep(0.001)
"""
_AFTER = "\nsys.stdout.flush()\n_wait('done')\n"


def race(setup: str, body: str, n: int, gate: Path, env: dict | None = None) -> list[str]:
    """Run ``setup`` in ``n`` fresh interpreters, then ``body`` in all at once; each racer's
    stdout (``body`` prints one line) in start order. ``gate`` is a new, empty folder."""
    gate.mkdir(parents=True)
    code = _BEFORE + setup + "\n_wait('ready')\n" + body + _AFTER
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(gate), str(n)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]
    deadline = time.monotonic() + 60
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip())
    return outs
