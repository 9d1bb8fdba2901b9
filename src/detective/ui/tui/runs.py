"""Long work that outlives screens: an experiment run, owned by the App (not by a screen).

A screen that starts an experiment hands it to the App; its thread worker posts messages to the
App, which keeps one `ExperimentRun` (touched on the UI thread only). Leaving the Experiments
screen therefore neither cancels nor forgets it; the status line of every screen says what runs.
Every experiment that starts ends in the session's log — finished, cancelled or failed — so it
appears in the table and in the exports.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from detective.core.session import Experiment
    from detective.ui.tui.current import OpenSession

LOG_LINES = 200  # the log a screen replays when it is shown again


class Ended(StrEnum):
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass
class ExperimentRun:
    """The App's one experiment: what, how far, its log and how it ended. UI thread only."""

    change: str
    name: str | None
    cancel: threading.Event = field(default_factory=threading.Event)
    _recorded: bool = False
    _record_lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)
    fraction: float = 0.0
    message: str = ""
    log: list[str] = field(default_factory=list)
    ended: Ended | None = None
    experiment: Experiment | None = None

    @property
    def running(self) -> bool:
        return self.ended is None

    def record_once(self, current: OpenSession, experiment: Experiment) -> bool:
        """Save how it ended, exactly once, from whichever thread gets there first (the job,
        or the App when it quits mid-run). Thread-safe, unlike the rest of this object."""
        with self._record_lock:
            if self._recorded:
                return False
            self._recorded = True
            current.session.add_experiment(experiment)
            return True

    def add_log(self, line: str) -> None:
        self.log.append(line)
        del self.log[:-LOG_LINES]


class ExperimentProgress(Message):
    def __init__(self, fraction: float, message: str) -> None:
        super().__init__()
        self.fraction, self.message = fraction, message

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ExperimentProgress)  # a flood coalesces to the newest


class ExperimentLog(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ExperimentEnded(Message):
    def __init__(self, ended: Ended, experiment: Experiment) -> None:
        super().__init__()
        self.ended, self.experiment = ended, experiment


def unfinished(change: str, name: str | None, ended: Ended, why: str) -> Experiment:
    """The log record of an experiment that did not finish: no numbers, the reason in notes."""
    from detective.core.session import Experiment

    nan = float("nan")
    return Experiment(
        name or change, (change,), "", nan, nan, verdict=ended.value, notes=why.strip()
    )


def experiment_job(
    current: OpenSession, run: ExperimentRun, post: Callable[[Message], bool]
) -> None:
    """Run one experiment (in a thread worker) and record how it ended, whatever happens."""
    from detective.core.progress import Cancelled, Progress, ProgressUpdate
    from detective.workflows.experiments import run_experiment

    change, name = run.change, run.name
    try:
        prep = current.prepared()  # loads the case: torch stays off the UI thread

        def update(u: ProgressUpdate) -> None:
            post(ExperimentProgress(u.fraction, u.message))

        def log(text: str) -> None:
            post(ExperimentLog(text))

        progress = Progress(update, run.cancel, log)
        experiment = run_experiment(prep.ctx, [change], name=name, progress=progress).experiment
        ended = Ended.FINISHED
    except Cancelled:
        experiment = unfinished(change, name, Ended.CANCELLED, "cancelled by the user")
        ended = Ended.CANCELLED
    except Exception as e:  # recorded, and shown as a dialog by the App
        why = "".join(traceback.format_exception_only(e))
        experiment, ended = unfinished(change, name, Ended.FAILED, why), Ended.FAILED
        if run.record_once(current, experiment):
            post(ExperimentEnded(ended, experiment))
        raise
    finally:
        current.forget_case()  # releases the writer lock: a run of checks may take it next
    if run.record_once(current, experiment):
        post(ExperimentEnded(ended, experiment))
