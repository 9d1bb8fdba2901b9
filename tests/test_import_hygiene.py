"""The core runs headless: no module outside the TUI imports Textual, the layers hold
(import-linter contracts in pyproject.toml), and the CLI's start-up never imports torch."""

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import detective

ROOT = Path(__file__).resolve().parents[1]
# `python -m detective` runs the CLI when imported; the TUI is the one place Textual belongs.
SKIP = ("detective.__main__", "detective.ui.tui")


def headless_modules() -> list[str]:
    """Every module of the package, found by walking it (a module added later is covered)."""
    names = ["detective"]
    for info in pkgutil.walk_packages(detective.__path__, "detective."):
        if not any(info.name == s or info.name.startswith(s + ".") for s in SKIP):
            names.append(info.name)
    return sorted(names)


MODULES = headless_modules()


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_the_walk_finds_the_whole_package() -> None:
    # A broken walk (wrong path, a package without __init__) would make the test below vacuous.
    assert len(MODULES) > 40, MODULES
    assert sum(m.startswith("detective.checks.") for m in MODULES) >= 25
    assert not any(m.startswith("detective.ui.tui") for m in MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_headless_module_does_not_import_textual(module: str) -> None:
    assert "textual" not in loaded_after(f"import {module}")


def test_all_checks_register_without_textual_or_torch() -> None:
    mods = loaded_after("from detective.core.registry import all_checks; all_checks()")
    assert "textual" not in mods
    assert "torch" not in mods, "check modules must import torch inside measure()"


def test_cli_help_does_not_import_torch() -> None:
    mods = loaded_after("from detective.ui.cli import build_parser; build_parser().format_help()")
    assert "torch" not in mods


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under `src`, with this checkout's contracts."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(src)}
    config = ROOT / "pyproject.toml"
    return subprocess.run(
        [str(exe), "--config", str(config), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=src.parent,
    )


def test_layer_contracts_hold() -> None:
    src = Path(detective.__file__).resolve().parents[1]
    result = lint_imports(src)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted"),
    [
        ("checks", "from detective.ui.cli import main"),  # a check reaching into the CLI
        ("engine", "import textual"),  # the core importing the UI toolkit
    ],
)
def test_layer_contracts_catch_a_planted_import(tmp_path: Path, module: str, planted: str) -> None:
    src = Path(detective.__file__).resolve().parents[1]
    copy = tmp_path / "src"
    shutil.copytree(src / "detective", copy / "detective", ignore=shutil.ignore_patterns("*.pyc"))
    target = copy / "detective" / module
    target = target / "__init__.py" if target.is_dir() else target.with_suffix(".py")
    if not target.exists():  # the package was re-laid: find the module by name
        target = next((copy / "detective").rglob(f"{module}.py"))
    target.write_text(target.read_text() + f"\n\ndef _planted():\n    {planted}\n")
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
