"""One writer per session: an advisory lock file, `<session>/session.lock`.

`fcntl.flock` on the lock file: the kernel releases it when its holder exits, however it dies
(SIGKILL included), so a lock left by a killed process is simply taken over; the pid, host and
start time written into the file are only for the message the next process shows. Readers
(`ledger`, `export`, the TUI's views) do not take it: SQLite's WAL lets them read beside a writer.
On a platform without `fcntl` (Windows) the lock is a no-op.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from detective.core.session import SessionError, SessionReadOnly

if TYPE_CHECKING:
    from detective.core.session import Session

LOCK_NAME = "session.lock"
_POLL_S = 0.25


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    started_at: float
    command: str

    def describe(self) -> str:
        since = dt.datetime.fromtimestamp(self.started_at).strftime("%Y-%m-%d %H:%M:%S")
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where} since {since} ({self.command})"


class SessionBusy(SessionError):
    """Another process holds the session's lock."""

    def __init__(self, path: Path, holder: Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        super().__init__(
            f"session {path} is in use by {who}; wait for it to finish (--wait waits) or stop it"
        )
        self.holder = holder


class SessionLock:
    """Held while a process writes findings or experiments to a session."""

    def __init__(self, path: Path, fd: int | None, previous: Holder | None) -> None:
        self.path = path
        self._fd = fd
        self.taken_over = previous  # a stale holder whose lock we took (it had died)

    @classmethod
    def acquire(
        cls,
        session_dir: str | Path,
        *,
        wait: bool = False,
        on_wait: Callable[[str], None] | None = None,
        command: str = "",
    ) -> SessionLock:
        """Take the session's lock, or raise SessionBusy (with `wait`, block until it is free;
        `on_wait` is told once whom we wait for, or whose stale lock we took over). Raises
        OSError if the lock file cannot be created (a read-only folder)."""
        session_dir = Path(session_dir)
        path = session_dir / LOCK_NAME
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return cls(path, None, None)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _read(fd)
                    if not wait:
                        raise SessionBusy(session_dir, holder) from None
                    if on_wait is not None and not told:
                        told = True
                        who = holder.describe() if holder else "another process"
                        on_wait(f"session {session_dir} is in use by {who}: waiting…")
                    time.sleep(_POLL_S)
            previous = _read(fd)
            stale = previous if previous and previous.pid != os.getpid() else None
            if stale is not None and not told and on_wait is not None:
                # Its holder released nothing yet the kernel freed the lock: it was killed.
                on_wait(f"took over session {session_dir} from {stale.describe()}: it is gone")
            me = Holder(os.getpid(), socket.gethostname(), time.time(), command or _command())
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
            return cls(path, fd, stale)
        except BaseException:
            os.close(fd)
            raise

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale holder left behind for the next message
        os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> SessionLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_session(
    session_dir: Path,
    *,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> SessionLock:
    """The session folder (created if new) and its writer lock; every failure a SessionError:
    SessionBusy (held elsewhere), SessionReadOnly (the folder cannot be written)."""
    if session_dir.exists() and not session_dir.is_dir():
        raise SessionError(
            f"{session_dir} is a file, not a session folder; choose another --session"
        )
    try:
        session_dir.mkdir(parents=True, exist_ok=True)
        return SessionLock.acquire(session_dir, wait=wait, on_wait=on_wait)
    except PermissionError as e:
        raise SessionReadOnly(
            f"session is read-only: {session_dir} (cannot write its lock file: {e.strerror})"
        ) from e
    except OSError as e:
        raise SessionError(f"cannot use the session folder {session_dir}: {e.strerror}") from e


def open_writer(
    session_dir: str | Path,
    *,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Session:
    """An existing session opened for writing, holding its writer lock until closed."""
    from detective.core.session import Session

    session_dir = Path(session_dir)
    Session.open(session_dir, readonly=True).close()  # damaged/newer: refused before any write
    lock = lock_session(session_dir, wait=wait, on_wait=on_wait)
    try:
        session = Session.open(session_dir)
    except BaseException:
        lock.release()
        raise
    session.hold(lock)
    return session


def _read(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode()) if raw.strip() else None
        if not data:
            return None
        return Holder(
            int(data["pid"]), str(data["host"]), float(data["started_at"]), str(data["command"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _command() -> str:
    return " ".join(["detective", *sys.argv[1:2]])
