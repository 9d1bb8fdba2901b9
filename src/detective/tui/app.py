"""The app: opens a session if given one, pushes the first screen, shows errors as dialogs."""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.screen import Screen

from detective.tui.screens import make_screen
from detective.tui.screens.dialogs import ErrorDialog
from detective.tui.screens.start import StartScreen

if TYPE_CHECKING:
    from detective.tui.current import OpenSession


class DetectiveApp(App[int]):
    TITLE = "detective"

    def __init__(self, session: str | Path | None = None, sessions_root: str | Path = "sessions"):
        super().__init__()
        self.initial = session
        self.sessions_root = Path(sessions_root)
        self.current: OpenSession | None = None

    def get_default_screen(self) -> Screen:
        return StartScreen()

    def on_mount(self) -> None:
        if self.initial is not None:
            self.open_session(self.initial, land=True)

    # --- the open session -------------------------------------------------------------------
    def open_session(self, path: str | Path, land: bool = False) -> bool:
        """Open a session and show where the user last was (or its playbook)."""
        from detective.session import SessionError
        from detective.tui.current import OpenSession

        if self.running():
            self.notify("Checks are running: cancel them first (2, then c).", severity="warning")
            return False
        try:
            opened = OpenSession(path)
        except SessionError as e:
            self.show_error("Cannot open the session", str(e))
            return False
        self.close_session()
        self.current = opened
        screen, finding = opened.landing() if land else ("playbook", None)
        self.goto(screen, finding)
        return True

    def close_session(self) -> None:
        self._unwind()
        if self.is_screen_installed("playbook"):
            self.get_screen("playbook").workers.cancel_all()
            self.uninstall_screen("playbook")
        if self.current is not None:
            self.current.close()
            self.current = None

    def running(self) -> bool:
        return self.is_screen_installed("playbook") and getattr(
            self.get_screen("playbook"), "busy", False
        )

    def _unwind(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def goto(self, name: str, check_id: str | None = None) -> None:
        """Show a session screen above the start screen; a finding sits above the playbook."""
        if name != "start" and self.current is None:
            return
        self._unwind()
        if name == "start":
            return
        if name not in ("playbook", "finding"):
            self.push_screen(make_screen(name))
            return
        if not self.is_screen_installed("playbook"):  # kept alive: its worker runs the checks
            self.install_screen(make_screen("playbook"), "playbook")
        self.push_screen("playbook")
        if name == "finding" and check_id:
            self.push_screen(make_screen("finding", check_id))

    def action_goto(self, name: str) -> None:
        self.goto(name)

    # --- errors -----------------------------------------------------------------------------
    def show_error(self, title: str, message: str, details: str = "") -> None:
        self.push_screen(ErrorDialog(title, message, details))

    def show_exception(self, title: str, error: BaseException) -> None:
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        details = getattr(error, "details", "") or "".join(traceback.format_exception(error))
        self.show_error(title, message, details)

    # --- command palette: the current screen's actions ---------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = getattr(screen, "commands", None)
        if commands is not None:
            yield from commands()

    def on_unmount(self) -> None:
        if self.is_screen_installed("playbook"):
            self.get_screen("playbook").cancel.set()  # the running check stops at its next batch
        if self.current is not None:
            self.current.close()


def run_app(session: str | Path | None = None) -> int:
    DetectiveApp(session).run()
    return 0
