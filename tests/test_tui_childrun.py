"""The TUI's runs of checks happen in a child process: events reach the app, the child commits
the findings and holds the writer lock, cancel means "interrupted", a killed child is reported."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from test_tui import SLOW_CASE, new_session, running, screen_name, text_of, until
from textual.message import Message

from detective.core.engine import (
    CheckFinished,
    CheckLog,
    CheckProgress,
    CheckSkipped,
    CheckStarted,
    HookWaiting,
    RunFinished,
    RunStarted,
    RunStatus,
)
from detective.core.findings import Finding, Metric, Table, Verdict
from detective.core.session import Session
from detective.core.sessionlock import SessionBusy, SessionLock, _read
from detective.ui.tui.app import DetectiveApp
from detective.workflows.childrun import RUN_KEY, ChildRun, decode, encode


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_event_round_trips_through_its_json_line() -> None:
    finding = Finding(
        "per_class_report",
        Verdict.FAIL,
        "class 2 is bad",
        metrics=(Metric("recall_min", 0.125),),
        tables=(Table("worst", ("class", "recall"), (("2", 0.125), ("7", float("nan")))),),
        duration_s=1.5,
    )
    events = [
        RunStarted("s", ("a", "b"), ("a",), "f-1", "cpu"),
        CheckStarted("b", "B", "pipeline", 1, 2),
        CheckProgress("b", 0.5, "half", 2.0),
        CheckLog("b", "a line"),
        HookWaiting("model", ""),
        CheckSkipped("a", "already done"),
        CheckFinished("per_class_report", finding, 7),
        RunFinished(RunStatus.INTERRUPTED, "cancelled during b", 1, 0, ""),
    ]
    for event in events:
        back = decode(encode(event))
        assert type(back) is type(event)
        assert encode(back) == encode(event)  # equal field by field (NaN included)
    back = decode(encode(events[6]))
    assert isinstance(back, CheckFinished)
    assert back.finding.tables[0].rows[0] == ("2", 0.125)
    with pytest.raises(ValueError, match="not an event"):
        decode('{"event": "Nope", "data": {}}')
    with pytest.raises(ValueError, match="not an event"):
        decode("hello from the case's print()")


def record() -> tuple[list[object], object]:
    """The engine's events as the app received them (the playbook screen's messages)."""
    seen: list[object] = []

    def hook(message: Message) -> None:
        event = getattr(message, "event", None)
        if type(message).__name__ == "Engine" and event is not None:
            seen.append(event)

    return seen, hook


def drive(app: DetectiveApp, scenario, hook) -> None:  # noqa: ANN001
    async def main() -> None:
        async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())


def lock_holder(session: Path) -> int | None:
    fd = os.open(session / "session.lock", os.O_RDONLY)
    try:
        holder = _read(fd)
    finally:
        os.close(fd)
    return holder.pid if holder else None


def test_a_run_happens_in_a_child_that_commits_findings_and_holds_the_lock(
    workdir: Path,
) -> None:
    path = new_session(workdir, SLOW_CASE)
    app = DetectiveApp(str(path))
    seen, hook = record()
    pids: list[int] = []

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("r")  # case_contract, the selected check
        await until(pilot, lambda: app.screen.running_check == "case_contract")
        child = app.screen.child
        assert child is not None and child.pid != os.getpid()
        pids.append(child.pid)
        await until(pilot, lambda: lock_holder(path) == child.pid)  # the writer is the child
        with pytest.raises(SessionBusy):
            SessionLock.acquire(path).release()
        await until(pilot, lambda: not running(app), timeout=120)
        assert child.proc.wait(timeout=30) == 0
        # The app re-read the session the child wrote: the board shows the finding.
        assert app.screen.rows[0].status != "pending"
        # The app holds no lock once the run is over (it never did: the child did).
        SessionLock.acquire(path).release()

    drive(app, scenario, hook)
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert "CheckStarted" in kinds and "CheckFinished" in kinds
    finished = next(e for e in seen if isinstance(e, CheckFinished))
    with Session.open(path, readonly=True) as s:
        stored = s.findings()
        assert [f.check_id for f in stored] == ["case_contract", "interventions"]
        assert stored[0].id == finished.finding_id
        assert stored[0].finding.summary == finished.finding.summary
        assert s.kv_get(RUN_KEY) == ""  # the run ended in order: not "interrupted"
    assert isinstance(seen[-1], RunFinished) and seen[-1].status is RunStatus.COMPLETED


def test_cancelling_the_child_records_interrupted_and_keeps_committed_findings(
    workdir: Path,
) -> None:
    path = new_session(workdir, SLOW_CASE)
    app = DetectiveApp(str(path))
    seen, hook = record()

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("a")
        # The first check's finding is committed (the board re-read it) and another runs.
        await until(
            pilot,
            lambda: (
                app.screen.rows[0].status != "pending"
                and app.screen.running_check not in ("", "case_contract")
            ),
            timeout=180,
        )
        child = app.screen.child
        await pilot.press("c")
        await until(pilot, lambda: not running(app), timeout=120)
        assert child.proc.wait(timeout=30) == 130  # the child has ended: interrupted
        assert "Stopped" in text_of(app, "#run-label")
        assert "interrupted" not in text_of(app, "#next")  # stopped by the user, on purpose

    drive(app, scenario, hook)
    end = seen[-1]
    assert isinstance(end, RunFinished) and end.status is RunStatus.INTERRUPTED
    with Session.open(path, readonly=True) as s:
        assert "case_contract" in {f.check_id for f in s.findings()}
        assert s.kv_get(RUN_KEY) == ""


def test_a_killed_child_is_reported_in_the_status_line_and_the_session_is_intact(
    workdir: Path,
) -> None:
    path = new_session(workdir, SLOW_CASE)
    app = DetectiveApp(str(path))
    seen, hook = record()

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("a")
        await until(
            pilot,
            lambda: (
                app.screen.rows[0].status != "pending"
                and app.screen.running_check not in ("", "case_contract")
            ),
            timeout=180,
        )
        os.kill(app.screen.child.pid, signal.SIGKILL)  # an OOM killer, a crash in C code
        await until(pilot, lambda: screen_name(app) == "ErrorDialog", timeout=60)
        assert "died (killed by signal SIGKILL)" in app.screen.message
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(app) == "PlaybookScreen")
        status = app.status_text()
        assert "checks stopped" in status and "SIGKILL" in status
        assert "last run was interrupted" in text_of(app, "#next")  # and offers resume
        assert app.is_running
        SessionLock.acquire(path).release()  # the dead child's lock is free

    drive(app, scenario, hook)
    end = seen[-1]
    assert isinstance(end, RunFinished) and end.status is RunStatus.FAILED
    with Session.open(path) as s:  # opens, reads, and keeps what was committed
        assert "case_contract" in {f.check_id for f in s.findings()}
        assert s.kv_get(RUN_KEY) == "running"


def test_a_child_that_cannot_take_the_lock_says_who_holds_it(workdir: Path) -> None:
    path = new_session(workdir, SLOW_CASE)
    with SessionLock.acquire(path, command="detective run"):
        events = list(ChildRun(path).events())
    assert len(events) == 1 and isinstance(events[0], RunFinished)
    assert events[0].status is RunStatus.FAILED
    assert f"in use by pid {os.getpid()}" in events[0].message


def test_a_read_only_session_opens_for_viewing_and_is_never_written(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archived session (a folder nobody may write): the app shows it and writes nothing.
    As root, permissions do not bind, so the store refuses writers as a read-only folder would."""
    from test_tui_snapshots import build_session

    from detective.core.session import SessionReadOnly
    from detective.ui.tui import current

    path = build_session(workdir / "sessions", with_failures=False)
    db = path / "session.sqlite"
    opened = Session.open

    def archived(p: str | Path, *, readonly: bool = False) -> Session:
        if not readonly:
            raise SessionReadOnly(f"session is read-only: {db}")
        return opened(p, readonly=True)

    monkeypatch.setattr(current.Session, "open", staticmethod(archived))

    def stored() -> tuple[bytes, bytes]:
        """The database and its WAL (absent = empty: a reader may create an empty one)."""
        wal = path / "session.sqlite-wal"
        return db.read_bytes(), wal.read_bytes() if wal.exists() else b""

    before = stored()
    app = DetectiveApp(str(path))
    notes: list[str] = []

    async def scenario(pilot) -> None:  # noqa: ANN001
        await until(pilot, lambda: screen_name(app) == "PlaybookScreen")
        assert app.current.readonly
        await pilot.press("3")
        await until(pilot, lambda: screen_name(app) == "LedgerScreen")
        await pilot.press("down", "a")  # add a hypothesis: refused, and says why
        await pilot.pause()
        assert screen_name(app) == "LedgerScreen"  # no dialog to type into
        notes.extend(str(n.message) for n in app._notifications)
        await pilot.press("2", "a")  # a run: refused before any process starts
        await pilot.pause()
        assert app.screen.child is None and not running(app)

    drive(app, scenario, None)
    assert any("Viewing only" in n and "read-only" in n for n in notes), notes
    assert stored() == before
