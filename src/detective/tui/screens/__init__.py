"""Screens, imported when first shown so that the start screen appears fast."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from textual.screen import Screen

_SCREENS = {
    "intake": ("detective.tui.screens.intake", "IntakeScreen"),
    "playbook": ("detective.tui.screens.playbook", "PlaybookScreen"),
    "finding": ("detective.tui.screens.finding", "FindingScreen"),
    "ledger": ("detective.tui.screens.ledger", "LedgerScreen"),
    "failures": ("detective.tui.screens.failures", "FailuresScreen"),
    "experiments": ("detective.tui.screens.experiments", "ExperimentsScreen"),
    "export": ("detective.tui.screens.export", "ExportScreen"),
}


def make_screen(name: str, *args: Any) -> Screen[Any]:
    module, cls = _SCREENS.get(name, _SCREENS["playbook"])  # an unknown saved name: the playbook
    return getattr(import_module(module), cls)(*args)
