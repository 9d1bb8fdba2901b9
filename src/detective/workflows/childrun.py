"""A playbook run in a child process: the engine's events as JSON lines on a pipe.

The terminal UI must answer a key within 100 ms while checks run. A check thread in the UI's own
process competes with it for the GIL (torch, numpy and PIL release it only in part), so the UI runs
the checks in a child: `python -m detective.workflows.childrun SESSION [--only a,b] [--rerun]`.
The child takes the session's writer lock and commits each finding as it finishes — the session's
SQLite is the channel of record; the events only say when to re-read it. It writes one JSON line
per engine event to its stdout; whatever the case's code prints goes to its stderr, kept in
`SESSION/cache/run.log`. SIGTERM cancels (the run ends "interrupted", finished findings saved). A
child that dies without saying how its run ended is reported by the parent as a failed run, with
the log's last line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, get_args

from detective.core.engine import CheckLog, Event, RunFinished, RunStatus
from detective.core.serde import from_jsonable, to_jsonable

# Session.kv: set by the child while its run is in flight, cleared when the run ends in an orderly
# way (completed, failed, cancelled by the user). Found set while no run is in flight, it means
# the run's process died mid-run (killed, crashed, its terminal gone).
RUN_KEY = "ui.run"
LOG_NAME = "run.log"  # under SESSION/cache: the child's stderr (the case's prints, tracebacks)
KILL_AFTER_S = 20.0  # a cancelled child that has not stopped after this long is killed
# The run yields the CPU to the UI it reports to: on a 2-core box torch's threads would otherwise
# take both cores from the process that has to answer a key within 100 ms.
NICE = 5

EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in get_args(Event)}


def encode(event: Event) -> str:
    return json.dumps({"event": type(event).__name__, "data": to_jsonable(event)})


def decode(line: str) -> Event:
    """One event from its JSON line; ValueError when the line is not one."""
    try:
        raw = json.loads(line)
        cls = EVENT_TYPES[raw["event"]]
        event: Event = from_jsonable(cls, raw["data"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not an event: {line[:80]!r}") from e
    return event


# --- the parent's side ------------------------------------------------------------------------
class ChildRun:
    """A run of the playbook in a child process; `events()` yields what it reports."""

    def __init__(
        self,
        session_dir: str | Path,
        *,
        only: Sequence[str] | None = None,
        rerun: bool = False,
    ) -> None:
        self.session_dir = Path(session_dir)
        self.log_path = self.session_dir / "cache" / LOG_NAME
        self.cancelled = False
        argv = [sys.executable, "-m", "detective.workflows.childrun", str(self.session_dir)]
        if only:
            argv += ["--only", ",".join(only)]
        if rerun:
            argv.append("--rerun")
        # The child imports this very package, wherever it was imported from.
        src = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH", "")
        env = {**os.environ, "PYTHONPATH": src + (os.pathsep + path if path else "")}
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file(),
            env=env,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # the terminal's signals are the UI's, not the run's
        )

    def _log_file(self) -> IO[str] | int:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            return self.log_path.open("w", encoding="utf-8")  # the child inherits it
        except OSError:  # a read-only session: the child will say so itself
            return subprocess.DEVNULL

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self) -> Iterator[Event]:
        """The child's events as they come; always ends with one RunFinished."""
        assert self.proc.stdout is not None
        finished = False
        for line in self.proc.stdout:
            if not line.strip():
                continue
            try:
                event = decode(line)
            except ValueError as e:
                yield CheckLog("", str(e))
                continue
            finished = finished or isinstance(event, RunFinished)
            yield event
        code = self.proc.wait()
        if not finished:
            yield self._died(code)

    def _died(self, code: int) -> RunFinished:
        """The child ended without saying how its run ended."""
        if self.cancelled:
            return RunFinished(RunStatus.INTERRUPTED, "the run's process was stopped")
        how = (
            f"killed by signal {signal.Signals(-code).name}"
            if code < 0 and -code in signal.valid_signals()
            else f"exit code {code}"
        )
        last = _last_line(self.log_path)
        return RunFinished(
            RunStatus.FAILED,
            f"the run's process died ({how}); finished findings are saved"
            + (f". Its last words: {last}" if last else "")
            + f" (log: {self.log_path})",
        )

    def cancel(self) -> None:
        """Ask the child to stop at its next step; kill it if it has not after a while."""
        self.cancelled = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            timer = threading.Timer(KILL_AFTER_S, self._kill_if_alive)
            timer.daemon = True
            timer.start()

    def _kill_if_alive(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


# --- the child's side -------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m detective.workflows.childrun")
    parser.add_argument("session")
    parser.add_argument("--only", default="")
    parser.add_argument("--rerun", action="store_true")
    args = parser.parse_args(argv)
    # Events go to the pipe that was stdout; anything else printed (the case's code) to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no os.nice (Windows)
        os.nice(NICE)
    cancel, orphaned = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    _watch_parent(cancel, orphaned)
    only = tuple(c for c in args.only.split(",") if c) or None
    return _run(Path(args.session), only, args.rerun, _emitter(out, cancel), cancel, orphaned)


def _emitter(out: IO[str], cancel: threading.Event):  # noqa: ANN202 - a closure
    def emit(event: Event) -> None:
        try:
            out.write(encode(event) + "\n")
            out.flush()
        except OSError:  # the parent is gone: stop at the next step, findings stay saved
            cancel.set()

    return emit


def _watch_parent(cancel: threading.Event, orphaned: threading.Event) -> None:
    """The UI died (its terminal closed): stop at the next step, as if cancelled, but leave the
    run marked as interrupted for the next time the session is opened."""
    parent = os.getppid()

    def watch() -> None:
        while not cancel.wait(0.5):
            if os.getppid() != parent:
                orphaned.set()
                cancel.set()

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _run(
    session_dir: Path,
    only: tuple[str, ...] | None,
    rerun: bool,
    emit,  # noqa: ANN001 - Callable[[Event], None]
    cancel: threading.Event,
    orphaned: threading.Event,
) -> int:
    import traceback

    from detective.core.case import CaseError
    from detective.core.engine import run_playbook
    from detective.core.playbook import PlaybookError
    from detective.core.session import SessionError
    from detective.workflows.investigation import reopen

    try:
        prep = reopen(session_dir)  # takes the writer lock, or says who holds it
    except SessionError as e:
        emit(RunFinished(RunStatus.FAILED, str(e)))
        return 5
    except (CaseError, PlaybookError) as e:
        emit(RunFinished(RunStatus.FAILED, getattr(e, "message", "") or str(e)))
        return 4
    except Exception as e:  # a bug: its traceback goes to the log
        traceback.print_exc()
        emit(RunFinished(RunStatus.FAILED, f"{type(e).__name__}: {e}"))
        return 3
    end = RunFinished(RunStatus.FAILED, "the run ended without saying how")
    try:
        prep.session.kv_set(RUN_KEY, "running")
        for event in run_playbook(
            prep.session, prep.playbook, prep.ctx, cancel=cancel, only=only, rerun=rerun
        ):
            if isinstance(event, RunFinished):
                end = event  # said last, once the lock is free for the UI's next run
            else:
                emit(event)
        if not orphaned.is_set():
            prep.session.kv_set(RUN_KEY, "")  # it ended, and the UI is told how
    finally:
        prep.session.close()  # releases the lock
    emit(end)
    return {RunStatus.COMPLETED: 0, RunStatus.INTERRUPTED: 130}.get(end.status, 4)


if __name__ == "__main__":
    raise SystemExit(main())
