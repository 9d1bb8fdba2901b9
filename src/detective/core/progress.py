"""Progress reporting and cooperative cancellation for checks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a check when the user asked to stop; the check's partial work is discarded."""


@dataclass(frozen=True)
class ProgressUpdate:
    fraction: float
    message: str
    elapsed_s: float


class Progress:
    """Handed to every check. `update` never goes backwards and raises `Cancelled` on request.

    Checks should call `update` (or `check_cancelled`) at least once per batch, so Ctrl-C and the
    TUI's cancel key take effect within a batch.
    """

    def __init__(
        self,
        on_update: Callable[[ProgressUpdate], None] | None = None,
        cancel: threading.Event | None = None,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        self._on_update = on_update
        self._on_log = on_log
        self.cancel_event = cancel or threading.Event()
        self._fraction = 0.0
        self._start = time.monotonic()
        self._last_emit = 0.0

    @property
    def fraction(self) -> float:
        return self._fraction

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def update(self, done: float, total: float | None = None, message: str = "") -> None:
        self.check_cancelled()
        fraction = done if total is None else (done / total if total else 1.0)
        fraction = min(1.0, max(self._fraction, float(fraction)))
        self._fraction = fraction
        now = time.monotonic()
        # Coalesce: at most ~20 updates a second reach the UI, but always the final one.
        if self._on_update is not None and (fraction >= 1.0 or now - self._last_emit > 0.05):
            self._last_emit = now
            self._on_update(ProgressUpdate(fraction, message, now - self._start))

    def log(self, message: str) -> None:
        if self._on_log is not None:
            self._on_log(message)

    def span(self, start: float, end: float) -> Progress:
        """A child progress mapping its own 0..1 onto [start, end] of this one."""
        parent = self

        class _Span(Progress):
            def update(self, done: float, total: float | None = None, message: str = "") -> None:
                f = done if total is None else (done / total if total else 1.0)
                parent.update(start + (end - start) * min(1.0, max(0.0, float(f))), None, message)

            def check_cancelled(self) -> None:
                parent.check_cancelled()

            def log(self, message: str) -> None:
                parent.log(message)

        return _Span(cancel=self.cancel_event)
