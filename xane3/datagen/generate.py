"""Plan, run (on Ray) and shard the FEFF10 calculations of the embedded data set.

Resumability rests on two facts: every calculation is keyed by a hash of its FEFF input
(plus the feff10 version), and the driver writes each finished result to the cache as it
lands. A restarted run skips keys already cached (done or failed) and first flushes cached
results not yet in any shard; a shard is only ever created, never rewritten, and holds
only keys no other shard holds, so a killed run never duplicates a spectrum.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from xane3.atomic import atomic_path, write_text_atomic
from xane3.data.identity import POSITION_DTYPE
from xane3.data.readers.structures import geometry_problem
from xane3.datagen import feff_runner as fr
from xane3.datagen.structures import Slab, all_slabs
from xane3.lock import claim
from xane3.rayenv import repo_pythonpath, start_ray

REPO = Path(__file__).resolve().parents[2]
SHARD_DIR = REPO / "xane3" / "data" / "embedded_shards"
CACHE_DIR = REPO / ".cache" / "feff"


@dataclass
class Task:
    """One absorber site of one slab, with its FEFF input and cache key."""

    key: str
    slab: Slab
    absorber: int
    site_kind: str  # "surface" | "inner"
    inp: str


def feff_version() -> str:
    import feff10
    return str(feff10.__version__)


def input_key(inp: str) -> str:
    """Cache key: hash of the FEFF input text and the FEFF code version."""
    return hashlib.sha256(f"feff10-rs {feff_version()}\n{inp}".encode()).hexdigest()[:24]


def _fingerprint(atoms: Any, absorber: int) -> tuple:
    """Local environment (Z, distance to 0.01 Å within 5 Å): equal means equal spectrum."""
    numbers, pos = fr.cluster(atoms, absorber, 5.0)
    return tuple(sorted(zip(numbers[1:].tolist(), np.round(np.linalg.norm(pos[1:], axis=1), 2))))


def select_sites(slab: Slab, n: int) -> list[tuple[int, str]]:
    """A seeded, balanced choice of Fe sites: half surface, half inner where possible.

    Sites with an identical local environment (translation or symmetry images in an
    unrattled slab) give identical spectra, so only one of each is taken.
    """
    rng = np.random.default_rng(int(slab.id, 16) % (1 << 32))
    pools = {"surface": list(rng.permutation(slab.surface_fe)),
             "inner": list(rng.permutation(slab.inner_fe))}
    chosen: list[tuple[int, str]] = []
    seen: set[tuple] = set()
    kinds = ["surface", "inner"]
    while len(chosen) < n and (pools["surface"] or pools["inner"]):
        for kind in kinds:
            if len(chosen) >= n:
                break
            while pools[kind]:
                idx = int(pools[kind].pop(0))
                fp = _fingerprint(slab.atoms, idx)
                if fp not in seen:
                    seen.add(fp)
                    chosen.append((idx, kind))
                    break
    return chosen


def plan(slabs: Iterable[Slab], settings: fr.FeffSettings, sites_per_slab: int = 6
         ) -> tuple[list[Task], list[tuple[Slab, int, str, str]]]:
    """Tasks in generation order (slab-major, slabs rattle-major) and rejected sites."""
    tasks, rejected, keys = [], [], set()
    for slab in slabs:
        problem = geometry_problem(slab.atoms, settings.min_distance, settings.pair_factor)
        for idx, kind in select_sites(slab, sites_per_slab):
            inp = fr.feff_input(slab.atoms, idx, settings, f"{slab.phase} {slab.facet} "
                                f"r{slab.rattle} site {idx} {kind}")
            if problem:
                rejected.append((slab, idx, kind, f"{problem}: not run"))
                continue
            key = input_key(inp)
            if key not in keys:
                keys.add(key)
                tasks.append(Task(key, slab, idx, kind, inp))
    return tasks, rejected


def run_task(inp: str, stage_timeout: float) -> dict[str, Any]:
    """Ray task body: one FEFF run in a private temp dir; returns arrays or the failure."""
    work = Path(tempfile.mkdtemp(prefix="xane3-feff-"))
    try:
        r = fr.run_feff(inp, work / "run", stage_timeout)
        return {"ok": True, "energy": r.energy, "mu": r.mu, "e0": r.e0,
                "scf_converged": r.scf_converged, "seconds": r.seconds}
    except fr.FeffFailure as err:
        return {"ok": False, "error": str(err), "log": err.log}
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Cache:
    """One small file per finished calculation: done/<key>.npz or failed/<key>.json."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "done").mkdir(parents=True, exist_ok=True)
        (self.root / "failed").mkdir(parents=True, exist_ok=True)

    def done_keys(self) -> set[str]:
        return {p.stem for p in (self.root / "done").glob("*.npz")}

    def failed_keys(self) -> set[str]:
        return {p.stem for p in (self.root / "failed").glob("*.json")}

    def put(self, key: str, result: dict[str, Any], meta: dict[str, Any]) -> None:
        if result["ok"]:  # hidden temp names: done_keys' "*.npz" glob never sees one
            with atomic_path(self.root / "done" / f"{key}.npz") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, energy=result["energy"], mu=result["mu"], e0=result["e0"],
                         scf_converged=result["scf_converged"], seconds=result["seconds"])
            (self.root / "failed" / f"{key}.json").unlink(missing_ok=True)  # --retry-failed: no longer
        else:
            write_text_atomic(self.root / "failed" / f"{key}.json",
                              json.dumps({**meta, "error": result["error"], "log": result["log"]},
                                         indent=1))

    def get(self, key: str) -> dict[str, Any]:
        with np.load(self.root / "done" / f"{key}.npz") as z:
            return {k: z[k] for k in z.files}


def shard_keys(shard_dir: Path, column: str = "key") -> set[str]:
    """Every value of ``column`` in the shards of ``shard_dir``."""
    keys: set[str] = set()
    for p in sorted(Path(shard_dir).glob("*.parquet")):
        keys.update(pq.read_table(p, columns=[column]).column(column).to_pylist())
    return keys


def _row(task: Task, res: dict[str, Any], settings_json: str) -> dict[str, Any]:
    s, a = task.slab, task.slab.atoms
    return {"key": task.key, "structure_id": s.id, "parent": s.parent, "phase": s.phase,
            "facet": s.facet, "rattle": s.rattle, "rattle_sigma_pos": s.rattle_sigma[0],
            "rattle_sigma_cell": s.rattle_sigma[1], "site_kind": task.site_kind,
            "absorber": task.absorber, "numbers": a.numbers.astype(np.int8),
            "positions": a.positions.astype(POSITION_DTYPE).ravel(),
            "cell": a.cell.array.astype(np.float64).ravel(), "pbc": [bool(x) for x in a.pbc],
            "energy": np.asarray(res["energy"], np.float64),
            "mu": np.asarray(res["mu"], np.float32), "e0": float(res["e0"]),
            "scf_converged": bool(res["scf_converged"]), "seconds": float(res["seconds"]),
            "feff_settings": settings_json, "code": "FEFF10", "feff_version": feff_version()}


SCHEMA = pa.schema([
    ("key", pa.string()), ("structure_id", pa.string()), ("parent", pa.string()),
    ("phase", pa.string()), ("facet", pa.string()), ("rattle", pa.int16()),
    ("rattle_sigma_pos", pa.float32()), ("rattle_sigma_cell", pa.float32()),
    ("site_kind", pa.string()), ("absorber", pa.int32()), ("numbers", pa.list_(pa.int8())),
    ("positions", pa.list_(pa.from_numpy_dtype(POSITION_DTYPE))), ("cell", pa.list_(pa.float64())),
    ("pbc", pa.list_(pa.bool_())), ("energy", pa.list_(pa.float64())),
    ("mu", pa.list_(pa.float32())), ("e0", pa.float64()), ("scf_converged", pa.bool_()),
    ("seconds", pa.float32()), ("feff_settings", pa.string()), ("code", pa.string()),
    ("feff_version", pa.string())])


def write_shard(rows: list[dict[str, Any]], shard_dir: Path) -> Path:
    """A new Parquet shard (temp file, then atomic rename): never overwrites one."""
    shard_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = shard_dir / f"shard-{stamp}-{rows[0]['key'][:8]}.parquet"
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp, compression="zstd")
    return path


def generate(workers: int = 2, address: str | None = None, quality: str = "default",
             shard_dir: Path = SHARD_DIR, cache_dir: Path = CACHE_DIR,
             limit: int | None = None, batch: int = 40, sites_per_slab: int = 6,
             slabs: list[Slab] | None = None, settings: fr.FeffSettings | None = None,
             retry_failed: bool = False, progress: bool = True) -> dict[str, int]:
    """Run the missing calculations; returns counts (planned, done, failed, written)."""
    settings = settings or fr.QUALITY[quality]
    settings_json = settings.to_json()
    shard_dir, cache = Path(shard_dir), Cache(Path(cache_dir))
    claim(shard_dir, "another `xane3.datagen spectra` writing these shards, which would hold its "
                     "spectra twice; wait for it")
    for stored in shard_keys(shard_dir, "feff_settings"):  # one data set, one FEFF setting
        if diff := settings.differs_in(stored):
            raise ValueError(f"{shard_dir}: its shards were computed with other FEFF settings "
                             f"({', '.join(diff)}); write these spectra to another --out")
    tasks, rejected = plan(slabs if slabs is not None else all_slabs(), settings, sites_per_slab)
    for slab, idx, kind, why in rejected:
        meta = {"structure_id": slab.id, "phase": slab.phase, "facet": slab.facet,
                "rattle": slab.rattle, "absorber": idx, "site_kind": kind}
        cache.put(f"rejected-{slab.id}-{idx}", {"ok": False, "error": why, "log": ""}, meta)
        print(f"[xane3.datagen] rejected {slab.phase} ({slab.facet}) r{slab.rattle} site {idx}: {why}")
    by_key = {t.key: t for t in tasks}
    in_shards = shard_keys(shard_dir)
    done, failed = cache.done_keys(), cache.failed_keys()
    if retry_failed:
        failed = set()
    pending = [by_key[k] for k in by_key if k in done and k not in in_shards]
    counts = {"planned": len(tasks), "rejected": len(rejected), "written": 0, "new_done": 0,
              "new_failed": 0}

    def flush(force: bool) -> None:
        nonlocal pending
        while pending and (force or len(pending) >= batch):
            chunk, pending = pending[:batch], pending[batch:]
            rows = [_row(t, cache.get(t.key), settings_json) for t in chunk]
            path = write_shard(rows, shard_dir)
            in_shards.update(t.key for t in chunk)
            counts["written"] += len(rows)
            print(f"[xane3.datagen] wrote {path.name} ({len(rows)} spectra)", flush=True)

    flush(force=True)
    # keys already in a shard are never recomputed, even when the cache is gone (fresh clone)
    todo = [t for t in tasks if t.key not in done and t.key not in failed and t.key not in in_shards]
    if limit is not None:
        todo = todo[:limit]
    if todo:
        import ray
        from tqdm import tqdm
        start_ray(address, num_cpus=workers, log_to_driver=False,
                  env_vars={"PYTHONPATH": repo_pythonpath(str(REPO))},
                  py_modules=[str(REPO / "xane3")])  # shipped when joining a cluster
        remote = ray.remote(num_cpus=1, max_retries=1)(run_task)
        bar = tqdm(total=len(todo), desc="FEFF spectra", unit="spec", mininterval=20,
                   disable=not progress)
        queue, inflight = list(todo), {}
        window = workers if not address else max(workers, int(ray.cluster_resources().get("CPU", 1)))
        t0 = time.time()
        try:
            while queue or inflight:
                while queue and len(inflight) < window + 1:
                    t = queue.pop(0)
                    inflight[remote.remote(t.inp, settings.stage_timeout)] = t
                ready, _ = ray.wait(list(inflight), num_returns=1)
                for ref in ready:
                    t = inflight.pop(ref)
                    try:
                        res = ray.get(ref)
                    except Exception as err:  # a worker crash is a failure of this site only
                        res = {"ok": False, "error": f"ray task error: {err}", "log": ""}
                    meta = {"structure_id": t.slab.id, "phase": t.slab.phase,
                            "facet": t.slab.facet, "rattle": t.slab.rattle,
                            "absorber": t.absorber, "site_kind": t.site_kind, "input": t.inp}
                    cache.put(t.key, res, meta)
                    if res["ok"]:
                        counts["new_done"] += 1
                        pending.append(t)
                    else:
                        counts["new_failed"] += 1
                        print(f"[xane3.datagen] FAILED {t.key} ({t.slab.phase} {t.slab.facet} "
                              f"r{t.slab.rattle} site {t.absorber}): {res['error']}", flush=True)
                    bar.update(1)
                    n_run = counts["new_done"] + counts["new_failed"]
                    bar.set_postfix(fail=counts["new_failed"],
                                    s_per_spec=f"{(time.time() - t0) / n_run:.1f}")
                flush(force=False)
        finally:
            bar.close()
            flush(force=True)
            ray.shutdown()
    counts["done_total"] = len(cache.done_keys() & set(by_key))
    counts["failed_total"] = len(cache.failed_keys() & set(by_key))
    counts["in_shards"] = len(shard_keys(shard_dir))
    return counts


def status(shard_dir: Path = SHARD_DIR, cache_dir: Path = CACHE_DIR) -> dict[str, Any]:
    """Counts without planning (cheap): shards, spectra in shards, cache done/failed."""
    cache = Cache(Path(cache_dir))
    shards = sorted(Path(shard_dir).glob("*.parquet"))
    return {"shards": len(shards), "spectra_in_shards": len(shard_keys(Path(shard_dir))),
            "cache_done": len(cache.done_keys()), "cache_failed": len(cache.failed_keys())}
