"""Screens, imported when first shown so that the start screen appears fast."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from textual.screen import Screen

_SCREENS = {
    "intake": ("detective.ui.tui.screens.intake", "IntakeScreen"),
    "playbook": ("detective.ui.tui.screens.playbook", "PlaybookScreen"),
    "finding": ("detective.ui.tui.screens.finding", "FindingScreen"),
    "ledger": ("detective.ui.tui.screens.ledger", "LedgerScreen"),
    "failures": ("detective.ui.tui.screens.failures", "FailuresScreen"),
    "experiments": ("detective.ui.tui.screens.experiments", "ExperimentsScreen"),
    "export": ("detective.ui.tui.screens.export", "ExportScreen"),
}


def make_screen(name: str, *args: Any) -> Screen[Any]:
    module, cls = _SCREENS.get(name, _SCREENS["playbook"])  # an unknown saved name: the playbook
    return getattr(import_module(module), cls)(*args)
