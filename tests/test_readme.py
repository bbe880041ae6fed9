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
