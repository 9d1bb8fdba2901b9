"""The core runs headless: it never imports Textual, and the CLI's start-up never imports torch."""

import subprocess
import sys

import pytest

CORE = [
    "detective.cli",
    "detective.case",
    "detective.context",
    "detective.engine",
    "detective.findings",
    "detective.hypotheses",
    "detective.ledger",
    "detective.playbook",
    "detective.registry",
    "detective.report",
    "detective.session",
    "detective.headless",
    "detective.export.markdown",
    "detective.export.html",
    "detective.export.json",
]


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_textual(module: str) -> None:
    assert "textual" not in loaded_after(f"import {module}")


def test_all_checks_register_without_textual_or_torch() -> None:
    mods = loaded_after("from detective.registry import all_checks; all_checks()")
    assert "textual" not in mods
    assert "torch" not in mods, "check modules must import torch inside measure()"


def test_cli_help_does_not_import_torch() -> None:
    mods = loaded_after("from detective.cli import build_parser; build_parser().format_help()")
    assert "torch" not in mods
