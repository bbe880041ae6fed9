"""``python -m xane3.data``: build a spectra database (ingest) and summarise one (info)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from xane3.cli_common import FAILED, REFUSED, add_quiet, fail, positive_int
from xane3.data.database import IngestReport, Source, ingest, summarize
from xane3.data.normalize import parse_grid


def _run_reader(args: argparse.Namespace, run: Path, reader):
    """``reader(run)``, lazily; with --parent-folder its records carry ``parent`` = the run
    folder's parent folder (resolved), so the sites of one structure laid out
    ROOT/STRUCTURE/SITE/ share one label."""
    def records():
        out = reader(run)
        if args.parent_folder:
            for rec in out:
                rec.meta["parent"] = str(run.resolve().parent)
        return out
    return records


def _sources(args: argparse.Namespace) -> list[Source]:
    """One lazily read Source per run/pair, so a bad file is skipped, not fatal; a folder that is
    missing or holds no runs is a FileNotFoundError."""
    from xane3.data.readers.fdmnes_run import find_runs, read_fdmnes_run
    from xane3.data.readers.feff import find_feff_runs, read_feff_dir
    from xane3.data.readers.xanesnet import read_xanesnet_pair, xanesnet_pairs

    out: list[Source] = []
    for root in [*(args.fdmnes or []), *(args.feff or []), *(args.xanesnet or [])]:
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such folder")
    for root in args.fdmnes or []:
        runs = find_runs(root)
        if not runs:
            raise FileNotFoundError(f"{root}: no FDMNES run (fdmfile.txt or *_conv.txt) found")
        out += [Source(str(r), _run_reader(args, r, read_fdmnes_run)) for r in runs]
    for root in args.feff or []:
        runs = find_feff_runs(root)
        if not runs:
            raise FileNotFoundError(f"{root}: no xmu.dat found")
        out += [Source(str(r), _run_reader(args, r, read_feff_dir)) for r in runs]
    for root in args.xanesnet or []:
        out += [Source(str(s), lambda x=x, s=s: [read_xanesnet_pair(x, s)])
                for x, s in xanesnet_pairs(root, args.limit)]
    return out


def _drop_if_new(db: Path, new_db: bool) -> None:
    """A DB this run created and left without rows is removed: its grid alone would refuse a
    retry on another --grid."""
    if not (new_db and db.exists()):
        return
    try:
        with closing(sqlite3.connect(db)) as con:
            rows = con.execute("SELECT COUNT(*) FROM systems").fetchone()[0]
    except sqlite3.Error:
        rows = 0
    if rows == 0:
        db.unlink()


def cmd_ingest(args: argparse.Namespace) -> int:
    if not (args.fdmnes or args.feff or args.xanesnet):
        return fail("give at least one of --fdmnes, --feff, --xanesnet")
    try:
        grid = parse_grid(args.grid)
        sources = _sources(args)
    except (OSError, ValueError) as exc:  # a missing folder, one without xyz/ and xanes/
        return fail(exc)
    new_db = not args.db.exists()
    try:
        report: IngestReport = ingest(sources, args.db, grid, progress=not args.quiet,
                                      total=len(sources))
    except FileExistsError as exc:  # another ingest holds DB.lock: its new DB is not ours to drop
        return fail(exc, REFUSED)
    except (ValueError, OSError, sqlite3.Error) as exc:
        # refused before a row (a foreign, corrupt or other-grid DB, a lock), or failed writing them
        code = REFUSED if isinstance(exc, ValueError) else FAILED
        if "locked" in str(exc):
            return fail(f"{args.db}: locked by another writer (another ingest?); wait for it and run "
                        "this again", code)
        _drop_if_new(args.db, new_db)
        return fail(exc if code == REFUSED else f"{args.db}: {exc}", code)
    except BaseException:  # Ctrl-C, a bug: the rows' transaction rolled back
        _drop_if_new(args.db, new_db)
        raise
    print(report.summary())
    if report.written == 0 and not report.duplicates:  # every spectrum already stored: nothing failed
        if new_db:
            args.db.unlink(missing_ok=True)  # an empty DB is no result
        print(f"error: nothing ingested from {len(sources)} source(s)", file=sys.stderr)
        return 1
    return 1 if args.strict and (report.skipped or report.duplicates) else 0


def _format_info(s: dict) -> str:
    cov = s["coverage"]
    lines = [f"database   {s['db']}", f"rows       {s['rows']}", f"structures {s['structures']}",
             "elements   " + ", ".join(f"{k} ({v})" for k, v in s["elements"].items()),
             "absorbers  " + ", ".join(f"{k}: {v}" for k, v in s["absorbers"].items()),
             f"grid       {s['grid']} (e_min, e_max, n; eV relative to E0)",
             f"coverage   mean {cov['mean_fraction']:.3f} of grid points, {cov['full_rows']} rows fully covered"]
    if cov["start_range"]:
        lo, hi = cov["start_range"], cov["end_range"]
        lines.append(f"           covered from {lo[0]:.2f}..{lo[1]:.2f} to {hi[0]:.2f}..{hi[1]:.2f} eV")
    for kind, e in s["e0"].items():
        lines.append(f"e0 {kind:<12} {e['min']:.2f} .. {e['max']:.2f} eV (mean {e['mean']:.2f}, n={e['n']})")
    for key, counts in s["labels"].items():
        lines.append(f"{key:<10} " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    lines.append(f"with parent {s['with_parent']}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    try:
        s = summarize(args.db)
    except (OSError, ValueError) as exc:  # missing, foreign or corrupt: left untouched
        return fail(exc)
    print(json.dumps(s, indent=2) if args.json else _format_info(s))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xane3.data", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    ing = sub.add_parser("ingest", help="read FDMNES/FEFF/XANESNET files into an ASE SQLite DB",
                         description="Normalise spectra onto a grid relative to E0 and write one DB row "
                                     "per spectrum; re-ingesting a file replaces its row; a spectrum "
                                     "already stored from another file is skipped as a duplicate; bad "
                                     "files are skipped and listed with the reason.")
    ing.add_argument("--fdmnes", nargs="+", type=Path, metavar="DIR",
                     help="FDMNES run directories (or folders containing them)")
    ing.add_argument("--feff", nargs="+", type=Path, metavar="DIR",
                     help="FEFF run directories with xmu.dat + feff.inp (or folders containing them)")
    ing.add_argument("--xanesnet", nargs="+", type=Path, metavar="DIR",
                     help="XANESNET data folders holding xyz/ and xanes/")
    ing.add_argument("--parent-folder", action="store_true",
                     help="label each FEFF/FDMNES run with the folder above it as its `parent`, for "
                          "ROOT/STRUCTURE/SITE/ layouts: FEFF's feff.inp holds only a cluster cut "
                          "around the absorber, so without this every inequivalent site of a crystal "
                          "is its own structure and only data.split=parent keeps them together")
    ing.add_argument("--limit", type=positive_int, default=None, help="read only the first N pairs (by name) of each --xanesnet folder")
    ing.add_argument("--db", type=Path, required=True, metavar="OUT.db", help="database to create or update")
    ing.add_argument("--grid", default="-30,100,150", metavar="E_MIN,E_MAX,N",
                     help="energy grid relative to E0 in eV (default: -30,100,150)")
    add_quiet(ing, "progress bar")
    ing.add_argument("--strict", action="store_true", help="exit with status 1 if anything was skipped (duplicates too)")
    ing.set_defaults(func=cmd_ingest)
    inf = sub.add_parser("info", help="summarise a spectra database",
                         description="Rows, structures, elements, grid coverage, E0 range and labels.")
    inf.add_argument("--db", type=Path, required=True, metavar="DB")
    inf.add_argument("--json", action="store_true", help="print the summary as JSON")
    inf.set_defaults(func=cmd_info)
    return p


def _join_grid(argv: list[str]) -> list[str]:
    """``--grid -30,100,150`` -> ``--grid=-30,100,150`` (argparse takes "-30,..." for an option)."""
    out: list[str] = []
    it = iter(argv)
    for a in it:
        out.append(f"--grid={next(it, '')}" if a == "--grid" else a)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_grid(sys.argv[1:] if argv is None else list(argv)))
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
