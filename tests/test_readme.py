"""The README stays true: its checks table is the registry's, its commands are the CI's."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def test_checks_table_matches_the_registry() -> None:
    from checks_table import BEGIN, END, table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    current = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert current == table(), "run: python scripts/checks_table.py --write"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(line.strip() for line in readme.splitlines()
                        if "pytest" in line and line.strip().startswith("python3 -m venv"))
    assert test_command in ci
