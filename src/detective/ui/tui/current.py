"""The session the app has open: its store, its playbook, and (loaded on demand, off the UI
thread) the case and run context that experiments need.

The app never holds the session's writer lock while it only shows the session: runs of checks
take it in their own process, an experiment for as long as it runs. A session whose folder cannot
be written (an archive, a read-only mount) opens for viewing only."""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from detective.core.session import Session, SessionReadOnly

if TYPE_CHECKING:
    from detective.core.playbook import Playbook
    from detective.ui.headless import Prepared

SCREEN_KEY = "ui.screen"  # Session.kv: the screen to land on when the session is reopened
FINDING_KEY = "ui.finding"  # Session.kv: the check whose finding was last shown


class OpenSession:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.session = Session.open(self.path)  # raises SessionError with a message
        except SessionReadOnly as e:
            self.session = Session.open(self.path, readonly=True)
            self.readonly_reason = str(e)
        else:
            self.readonly_reason = ""
        self._prepared: Prepared | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def readonly(self) -> bool:
        return bool(self.readonly_reason)

    @cached_property
    def playbook(self) -> Playbook:
        from detective.core.playbook import resolve_playbook
        from detective.core.registry import all_checks

        return resolve_playbook(self.session.info.playbook, set(all_checks()))

    def prepared(self) -> Prepared:
        """The loaded case and run context (imports torch), holding the session's writer lock
        until `forget_case`: call from a worker thread only."""
        with self._lock:
            if self._prepared is None:
                from detective.workflows.investigation import reopen

                self._prepared = reopen(self.path)
            return self._prepared

    def forget_case(self) -> None:
        """Reload the case before the next run (the intake changed its options)."""
        with self._lock:
            if self._prepared is not None:
                self._prepared.session.close()
                self._prepared = None

    def remember(self, screen: str, finding: str | None = None) -> None:
        if self.readonly:
            return
        self.session.kv_set(SCREEN_KEY, screen)
        if finding is not None:
            self.session.kv_set(FINDING_KEY, finding)

    def landing(self) -> tuple[str, str | None]:
        return self.session.kv_get(SCREEN_KEY) or "playbook", self.session.kv_get(FINDING_KEY)

    def close(self) -> None:
        self.forget_case()
        self.session.close()
