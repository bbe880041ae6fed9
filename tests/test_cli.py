"""One CLI convention (issue 15): every command has --help, and shared options are spelled alike."""

from __future__ import annotations

import importlib

import pytest

# (module with main, argv prefix, shared options its --help must list)
COMMANDS = [
    ("xane3.train.__main__", [], ["--quiet", "--db", "--set", "--preset", "--experiment"]),
    ("xane3.model.__main__", [], ["--set", "--preset", "--experiment"]),
    ("xane3.predict_cli", [], ["--no-plots", "--device"]),
    ("xane3.evaluate", [], ["--no-plots", "--device"]),
    ("xane3.data.cli", ["ingest"], ["--quiet"]),
    ("xane3.datagen.cli", ["spectra"], ["--quiet", "--cpus", "--address"]),
    ("search.run", [], ["--quiet", "--db", "--set", "--epochs", "--preset", "--experiment",
                        "--cpus", "--cpus-per-trial", "--gpus", "--gpus-per-trial", "--address"]),
    ("benchmarks.xanesnet", [], ["--quiet", "--cpus", "--gpus", "--address"]),
    ("benchmarks.speed_options", [], ["--threads", "--device"]),
    ("benchmarks.molecules", [], ["--threads", "--device"]),
    ("xane3.compare_experiment", [], ["--device"]),
    ("xane3.lcf_cli", [], ["--device"]),
    ("ablations.run", [], ["--db", "--set", "--preset", "--cpus", "--cpus-per-trial", "--gpus",
                           "--gpus-per-trial", "--address"]),
    ("search.report", [], []),
    ("search.trust", [], []),
    ("xane3.train.package", [], []),
    ("xane3.train.soup", [], ["--quiet"]),
]


@pytest.mark.parametrize("module,prefix,options", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_help_lists_the_shared_options(module, prefix, options, capsys) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_:
        main([*prefix, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage:")
    for opt in options:
        assert opt in text, f"{module} --help lacks {opt}"


def test_old_spellings_still_work() -> None:
    """--no-progress and --no-figures were the spellings before; scripts that use them keep working."""
    import argparse

    from xane3.cli_common import add_device, add_no_plots, add_quiet
    from xane3.evaluate import main  # noqa: F401 - the parser is what is checked

    p = argparse.ArgumentParser()
    add_quiet(p)
    add_no_plots(p)
    add_device(p)
    a = p.parse_args(["--no-progress", "--no-figures"])
    assert a.quiet and a.no_plots and a.device == "auto"


def test_data_source_and_epochs_old_spellings() -> None:
    """--db is the data source everywhere (--data was search's and ablations' spelling);
    search's --epochs was --max-epochs."""
    from search.run import build_parser

    a = build_parser().parse_args(["--space", "optim", "--data", "x.db", "--max-epochs", "3"])
    b = build_parser().parse_args(["--space", "optim", "--db", "x.db", "--epochs", "3"])
    assert (a.data, a.max_epochs) == (b.data, b.max_epochs) == ("x.db", 3)


def test_ray_cpus_old_spelling() -> None:
    """datagen's --workers (its name for Ray's CPUs before 2026-12) still parses, as --cpus."""
    from xane3.datagen.cli import build_parser

    p = build_parser()
    assert [p.parse_args(["spectra", *a]).cpus for a in ([], ["--workers", "5"], ["--cpus", "3"])] == [2, 5, 3]


def test_ablations_set_is_checked_before_ray(capsys) -> None:
    from ablations.run import main

    with pytest.raises(SystemExit) as exit_:
        main(["baseline", "--preset", "smoke", "--set", "model.layer_nrom=false"])
    assert exit_.value.code == 2 and "did you mean model.layer_norm" in capsys.readouterr().err


# (module, argv that reaches the flag's parsing, flag): counts must be >= 1; 0 or -5 used to
# reach the run (zero trials, "--seeds 0" an empty table, "--batch 0" an endless shard loop)
COUNT_FLAGS = [
    ("xane3.train.__main__", [], "--epochs"),
    ("xane3.evaluate", [], "--batch-size"),
    ("xane3.datagen.cli", ["spectra"], "--batch"),
    ("xane3.datagen.cli", ["spectra"], "--cpus"),
    ("search.run", [], "--trials"),
    ("search.run", [], "--epochs"),
    ("ablations.run", ["baseline"], "--seeds"),
    ("benchmarks.xanesnet", [], "--trials"),
]


@pytest.mark.parametrize("module,prefix,flag", COUNT_FLAGS, ids=[f"{c[0]}{c[2]}" for c in COUNT_FLAGS])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_count_flags_refuse_non_positive(module, prefix, flag, value, capsys) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_:
        main([*prefix, flag, value])
    assert exit_.value.code == 2
    assert f"{value}: expected >= 1" in capsys.readouterr().err


SHORTCUTS = [(["--epochs", "2"], "train.epochs=-1"), (["--threads", "1"], "train.num_threads=2"),
             (["--db", "a.db"], "data.db=b.db"), (["--device", "cpu"], "train.device=cuda:7")]


@pytest.mark.parametrize("flag,key", SHORTCUTS, ids=[s[0][0] for s in SHORTCUTS])
def test_a_shortcut_and_its_set_key_together_are_refused(flag, key, tmp_path, capsys) -> None:
    """Issue 31: ``--epochs 2 --set train.epochs=-1`` dropped the --set silently (two spellings of
    one key); refused in one line naming both (each case here fails fast if it is not)."""
    from xane3.train.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(tmp_path / "run"), *flag, "--set", key])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{' '.join(flag)} and --set {key}" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("module,argv", [
    ("search.run", ["--epochs", "2", "--set", "train.epochs=-1"]),
    ("search.run", ["--db", "a.db", "--set", "data.db=b.db"]),
    ("ablations.run", ["baseline", "--preset", "smoke", "--db", "a.db", "--set", "data.db=b.db"]),
    ("benchmarks.xanesnet", ["--epochs", "2", "--set", "train.epochs=3", "--out", "OUT", "--train", "OUT"]),
])
def test_study_drivers_refuse_a_shortcut_and_its_set_key(module, argv, tmp_path, capsys) -> None:
    """The same refusal where a study is driven: one line, before Ray or any folder."""
    main = importlib.import_module(module).main
    argv = [str(tmp_path / "runs") if a == "OUT" else a for a in argv]
    extra = [] if module.startswith("benchmarks") else ["--experiments-dir", str(tmp_path / "runs")]
    try:
        code = main([*argv, *extra])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2 and "set the same thing" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
