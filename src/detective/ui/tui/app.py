"""The app: opens a session if given one, pushes the first screen, shows errors as dialogs."""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from detective.ui.tui.runs import (
    Ended,
    ExperimentEnded,
    ExperimentLog,
    ExperimentProgress,
    ExperimentRun,
    experiment_job,
    unfinished,
)
from detective.ui.tui.screens import make_screen
from detective.ui.tui.screens.start import StartScreen

if TYPE_CHECKING:
    from detective.ui.tui.current import OpenSession


# Screens composed once per open session and kept: switching back to them only refreshes their
# data (composing a screen anew costs more than a keypress should). The playbook's worker runs
# the checks, so it must stay alive anyway. Failures is composed afresh: its tables depend on
# which checks have run.
KEPT = ("playbook", "ledger", "experiments", "export", "intake")


class DetectiveApp(App[int]):
    TITLE = "detective"
    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: focus moves the moment tab is read, so the keys after it in the same burst
        # (a paste without bracketing, SSH batching) land in the next field, not this one.
        Binding("tab", "focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True),
        Binding("q", "quit", "Quit", show=False),
        Binding("question_mark", "help", "Help", show=False),
    ]

    def __init__(self, session: str | Path | None = None, sessions_root: str | Path = "sessions"):
        super().__init__()
        self.initial = session
        self.sessions_root = Path(sessions_root)
        self.current: OpenSession | None = None
        self.experiment: ExperimentRun | None = None  # the one experiment, across screens

    def get_default_screen(self) -> Screen:
        return StartScreen()

    def on_mount(self) -> None:
        if self.initial is not None:
            self.open_session(self.initial, land=True)

    # --- the open session -------------------------------------------------------------------
    def open_session(self, path: str | Path, land: bool = False) -> bool:
        """Open a session and show where the user last was (or its playbook)."""
        from detective.core.session import SessionError
        from detective.ui.tui.current import OpenSession

        if self.running() or self.experimenting():
            self.notify(
                "Something is running: cancel it first (2 or 5, then c).", severity="warning"
            )
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
            self.get_screen("playbook").stop()  # type: ignore[attr-defined]
            self.get_screen("playbook").workers.cancel_all()
        for name in KEPT:
            if self.is_screen_installed(name):
                self.uninstall_screen(name)
        if self.current is not None:
            self.current.close()
            self.current = None

    def experimenting(self) -> bool:
        return self.experiment is not None and self.experiment.running

    def running(self) -> bool:
        return self.is_screen_installed("playbook") and getattr(
            self.get_screen("playbook"), "busy", False
        )

    def _unwind(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def goto(self, name: str, check_id: str | None = None) -> None:
        """Show a session screen above the start screen; a finding sits above the playbook.

        The shown screen is switched in place (never pop to the start screen, then push): each
        screen that resumes is restyled whole, and the start screen would list the sessions
        again — a screen switch would cost hundreds of milliseconds."""
        if name != "start" and self.current is None:
            return
        if name == "start":
            self._unwind()
            return
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if name not in KEPT and name != "finding":
            self._show(make_screen(name))
            return
        shown = name if name in KEPT else "playbook"  # a finding sits above the playbook
        if not self.is_screen_installed(shown):
            self.install_screen(make_screen(shown), shown)
        self._show(self.get_screen(shown))
        if name == "finding" and check_id:
            self.push_screen(make_screen("finding", check_id))

    def _show(self, screen: Screen) -> None:
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def action_goto(self, name: str) -> None:
        self.goto(name)

    # --- the experiment: owned here so that switching screens neither cancels nor forgets it -
    def start_experiment(self, change: str, name: str | None) -> bool:
        if self.current is None or self.running() or self.experimenting():
            return False
        run = self.experiment = ExperimentRun(change, name)
        job = partial(experiment_job, self.current, run, self.post_message)
        self.run_worker(
            job, thread=True, group="experiment", name="experiment", exit_on_error=False
        )
        self._experiment_changed()
        return True

    def cancel_experiment(self) -> bool:
        if not self.experimenting():
            return False
        assert self.experiment is not None
        self.experiment.cancel.set()
        self.experiment.add_log("cancelling: the experiment stops at its next step")
        self._experiment_changed()
        return True

    def on_experiment_progress(self, message: ExperimentProgress) -> None:
        if self.experiment is not None:
            self.experiment.fraction, self.experiment.message = message.fraction, message.message
            self._experiment_changed()

    def on_experiment_log(self, message: ExperimentLog) -> None:
        if self.experiment is not None:
            self.experiment.add_log(message.text)
            self._experiment_changed()

    def on_experiment_ended(self, message: ExperimentEnded) -> None:
        if self.experiment is not None:
            self.experiment.ended, self.experiment.experiment = message.ended, message.experiment
            self._experiment_changed()

    def _experiment_changed(self) -> None:
        shown = getattr(self.screen, "experiment_changed", None)
        if shown is not None:
            shown()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Workers of the App (the experiment): an error becomes a dialog, never a crash."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            if self.experiment is not None and self.experiment.ended is None:
                self.experiment.ended = Ended.FAILED  # the job could not even record it
                self._experiment_changed()
            self.show_exception(f"{event.worker.name} failed", event.worker.error)

    def status_text(self) -> str:
        """What runs, for the status line of every screen (markup)."""
        from detective.ui.tui.text import safe

        parts = []
        if self.is_screen_installed("playbook"):
            checks = getattr(self.get_screen("playbook"), "status_text", None)
            if checks is not None and (text := checks()):
                parts.append(text)
        run = self.experiment
        if run is not None:
            if run.running:
                parts.append(
                    f"[b]▶ experiment[/b] {safe(run.change)} {run.fraction:4.0%}"
                    + (" [b]cancelling[/b]" if run.cancel.is_set() else "")
                )
            else:
                parts.append(f"experiment {safe(run.change)}: [b]{run.ended}[/b]")
        return " · ".join(parts) or "[dim]Nothing runs.[/] ? help · q quit"

    # --- help -------------------------------------------------------------------------------
    def action_help(self) -> None:
        from detective.ui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # --- errors -----------------------------------------------------------------------------
    def show_error(self, title: str, message: str, details: str = "") -> None:
        from detective.ui.tui.screens.dialogs import ErrorDialog  # not needed for the first frame

        self.push_screen(ErrorDialog(title, message, details))

    def show_exception(self, title: str, error: BaseException) -> None:
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        details = getattr(error, "details", "") or "".join(traceback.format_exception(error))
        self.show_error(title, message, details)

    # --- command palette: every action of the app, the current screen's first ---------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from detective.ui.tui.screens.help import other_screens_commands

        commands = getattr(screen, "commands", None)
        if commands is not None:
            yield from commands()
        if self.current is not None:
            yield from other_screens_commands(self, screen)
        yield SystemCommand("Help: every key", "The keys of every screen (?)", self.action_help)
        yield from super().get_system_commands(screen)

    async def action_quit(self) -> None:
        self.stop_runs()  # first: Textual waits for thread workers before it exits
        self.exit()

    def stop_runs(self) -> None:
        """Quitting: the running check and experiment stop at their next step; the experiment is
        recorded as cancelled now, while the session is open (unless it has just ended)."""
        run = self.experiment
        if run is not None and run.running and self.current is not None:
            run.record_once(
                self.current,
                unfinished(run.change, run.name, Ended.CANCELLED, "the app was closed"),
            )
            run.cancel.set()
        if self.is_screen_installed("playbook"):
            self.get_screen("playbook").stop()  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        self.stop_runs()
        if self.current is not None:
            self.current.close()


def run_app(session: str | Path | None = None) -> int:
    from detective.ui.tui.widgets.graphics import prepare

    prepare()  # before Textual owns the terminal: can it draw real pixels?
    DetectiveApp(session).run()
    return 0
