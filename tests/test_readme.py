"""The README's commands are the ones CI runs: keep them from drifting apart."""

from __future__ import annotations

from conftest import REPO


def _commands(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith("python3 -m venv")]


def test_ci_runs_the_readme_test_command() -> None:
    readme = _commands((REPO / "README.md").read_text())
    ci = _commands((REPO / ".ci" / "run").read_text())
    assert len(readme) >= 2, "README must open with the main-job and the test commands"
    assert ci == [readme[1]], f"CI runs {ci}, README says {readme[1]!r}"


def test_readme_gives_each_phase_its_own_broadened_pearson() -> None:
    """Issue 31: the README listed 0.994 / 0.990 / 0.985 (hematite, magnetite, wustite) beside text
    naming the phases hematite, wustite, magnetite; each value now names its phase, as
    docs/pretrained.md's table has it."""
    import re

    rows = [ln.split("|")[1:-1] for ln in (REPO / "docs" / "pretrained.md").read_text().splitlines()
            if re.match(r"\| (hematite|magnetite|wustite) \| ", ln)]
    table = {r[0].strip(): r[-2].strip() for r in rows}  # "Pearson after fit", next to last
    readme = " ".join((REPO / "README.md").read_text().split())
    said = dict((phase, value) for value, phase in re.findall(r"(0\.\d{3}) \((hematite|wustite|magnetite)\)", readme))
    assert said == table == {"hematite": "0.994", "magnetite": "0.990", "wustite": "0.985"}
