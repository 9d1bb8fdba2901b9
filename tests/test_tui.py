"""The TUI driven with Textual's pilot through real flows, on real sessions and cases."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from test_tui_snapshots import build_session

from detective.casekit.demo import DEMO_CASE
from detective.core.findings import Finding, Verdict, image_ref
from detective.core.session import HypothesisStatus, ReviewVerdict, Session
from detective.ui.tui.app import DetectiveApp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def drive(app: DetectiveApp, scenario: Callable[..., Awaitable[None]], size=(100, 30)) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())


async def until(pilot, condition: Callable[[], bool], timeout: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out waiting for the UI on {screen_name(pilot.app)}: {describe(pilot.app)}"
            )
        await pilot.pause(0.05)


def describe(app: DetectiveApp) -> str:
    parts = [w.name + ":" + w.state.name for w in app.workers]
    if app.is_screen_installed("playbook"):
        pb = app.get_screen("playbook")
        parts.append(str(pb.query_one("#run-label").render()))
        parts.append(str([(r.check_id, r.status) for r in pb.rows][:3]))
    return " | ".join(parts)


def screen_name(app: DetectiveApp) -> str:
    return type(app.screen).__name__


def running(app: DetectiveApp) -> bool:
    from detective.ui.tui.widgets.run_panel import RunPanel

    return app.get_screen("playbook").query_one(RunPanel).running


def text_of(app: DetectiveApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


@pytest.mark.usefixtures("workdir")
def test_demo_investigation_end_to_end() -> None:
    """Open the demo, run a check, read its finding, add a hypothesis, set its status and a note,
    review a failure, export: every step lands in the session at once."""
    app = DetectiveApp(sessions_root="sessions")

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("d")
        await until(pilot, lambda: screen_name(app) == "PlaybookScreen")
        assert app.current is not None and app.current.path == Path("sessions/demo")
        await until(pilot, lambda: "case_contract" in text_of(app, "#next"))  # the first, and why
        await pilot.press("n")  # run the recommended check
        # The first run trains the demo's model (cached for the test run; test_demo shares it).
        await until(pilot, lambda: not running(app) and app.screen.rows[0].status != "pending", 600)
        assert [(r.check_id, r.status) for r in app.screen.rows][0] == ("case_contract", "pass")
        assert "preprocessing_parity" in text_of(app, "#next")

        await pilot.press("enter")  # its finding
        await until(pilot, lambda: screen_name(app) == "FindingScreen")
        assert "10 classes" in text_of(app, "#summary")
        assert app.current.session.kv_get("ui.screen") == "finding"

        await pilot.press("3")  # the ledger: add a hypothesis of our own
        await until(pilot, lambda: screen_name(app) == "LedgerScreen")
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*"dark scans", "tab", *"some scans are underexposed", "enter")
        await pilot.pause()
        users = app.current.session.user_hypotheses()
        assert [(u.title, u.explanation) for u in users] == [
            ("dark scans", "some scans are underexposed")
        ]
        ledger = app.screen
        row = next(i for i, h in enumerate(ledger.entries) if h.hypothesis_id == users[0].id)
        ledger.query_one("DataTable").move_cursor(row=row)
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("down", "enter")  # open → supported
        await pilot.pause()
        override = app.current.session.status_overrides()[users[0].id]
        assert override.status is HypothesisStatus.SUPPORTED
        await pilot.press("n", *"checked 20 by eye", "enter")
        await pilot.pause()
        # The row moved (supported sorts first) and the cursor moved with it: the note is on it.
        notes = app.current.session.notes()
        assert [(n.hypothesis_id, n.text) for n in notes] == [(users[0].id, "checked 20 by eye")]

        # An error-analysis check stored failures: they appear and can be reviewed.
        app.current.session.save_finding(
            Finding(
                "error_gallery",
                Verdict.WARN,
                "wrong",
                failures=(image_ref("val", 5, "3", "8", 0.9),),
            ),
            app.current.session.latest_fingerprint() or "fp",
        )
        await pilot.press("4")
        await until(pilot, lambda: screen_name(app) == "FailuresScreen")
        await pilot.press("x")
        await pilot.pause()
        reviews = app.current.session.reviews()
        assert [(r.target_kind, r.target_id, r.verdict) for r in reviews] == [
            ("failure", "val:5", ReviewVerdict.DISAGREE)
        ]

        await pilot.press("6", "m")  # export Markdown
        report = Path("sessions/demo/report.md")
        await until(pilot, lambda: report.exists())
        await until(pilot, lambda: "sessions/demo/report.md" in text_of(app, "#written"))
        assert "dark scans" in report.read_text(encoding="utf-8")

    drive(app, scenario)


def test_a_review_or_status_set_on_a_row_is_never_left_truncated(workdir: Path) -> None:
    """Textual's DataTable widens an auto-width column only when idle, after add_row, and caches
    each painted line under a key that ignores column widths: a frame painted in between (on a
    busy machine) kept "✓ agre" on screen. The columns a review or a status set by hand changes
    are as wide as their widest mark from the start."""
    from textual.widgets import DataTable

    from detective.ui.tui.screens.failures import REVIEW_MARK

    path = build_session(workdir / "sessions")
    with Session.open(path) as s:
        s.kv_set("ui.screen", "failures")
    app = DetectiveApp(str(path))

    async def painted_early(pilot, table: DataTable[object], row: int) -> str:  # noqa: ANN001
        """The row's line after a frame was painted before the table's idle-time resize."""
        table.render_line(row + 1)  # the frame (+1: the header), before the table is idle
        await pilot.pause()  # now idle: the auto-width columns are measured
        return table.render_line(row + 1).text

    async def scenario(pilot) -> None:  # noqa: ANN001
        await until(pilot, lambda: screen_name(app) == "FailuresScreen")
        screen = app.screen
        tables = list(screen.query(DataTable))
        assert [t.id for t in tables][0] == "failures" and len(tables) == 2  # + a cluster table
        for table in tables:
            table.focus()
            await pilot.pause()
            for row, verdict in enumerate(("agree", "disagree", "skip")):
                table.move_cursor(row=min(row, table.row_count - 1))
                screen.action_review(verdict)  # stores it and fills the table again
                line = await painted_early(pilot, table, min(row, table.row_count - 1))
                assert REVIEW_MARK[verdict][0] in line, (verdict, line)

        await pilot.press("3")
        await until(pilot, lambda: screen_name(app) == "LedgerScreen")
        ledger = app.screen
        h = next(e for e in ledger.entries if e.status is HypothesisStatus.INCONCLUSIVE)
        app.current.session.set_status(h.hypothesis_id, HypothesisStatus.INCONCLUSIVE, "by hand")
        ledger.refresh_data()  # what choosing a status in the dialog does
        row = next(i for i, e in enumerate(ledger.entries) if e.hypothesis_id == h.hypothesis_id)
        line = await painted_early(pilot, ledger.query_one(DataTable), row)
        assert "inconclusive ✎" in line, line

    drive(app, scenario)


def test_reopening_lands_where_the_user_was(workdir: Path) -> None:
    path = build_session(workdir / "sessions")
    app = DetectiveApp(str(path))

    async def leave_on_a_finding(pilot) -> None:  # noqa: ANN001
        assert screen_name(app) == "PlaybookScreen"  # a fresh session opens on its playbook
        app.screen.query_one("DataTable").move_cursor(row=1)
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(app) == "FindingScreen")

    drive(app, leave_on_a_finding)
    again = DetectiveApp(str(path))

    async def back(pilot) -> None:  # noqa: ANN001
        assert screen_name(again) == "FindingScreen"
        assert again.screen.check_id == "preprocessing_parity"
        await pilot.press("escape")  # back to the playbook below it
        await until(pilot, lambda: screen_name(again) == "PlaybookScreen")
        await pilot.press("3")
        await until(pilot, lambda: screen_name(again) == "LedgerScreen")

    drive(again, back)
    third = DetectiveApp(str(path))

    async def on_ledger(pilot) -> None:  # noqa: ANN001
        assert screen_name(third) == "LedgerScreen"
        await pilot.press("escape")  # to the start screen, which lists the session
        await until(pilot, lambda: screen_name(third) == "StartScreen")
        await until(pilot, lambda: bool(third.screen.sessions))
        assert third.screen.sessions[0].name == "digits"
        assert "supported" in third.screen.sessions[0].top_status

    drive(third, on_ledger)


CRASHING_CASE = """
import torch
from torch import nn

CLASSES = ["a", "b"]

def model():
    return nn.Linear(4, 2)

def datasets():
    raise RuntimeError("the data mount is gone")
"""


def new_session(workdir: Path, source: str) -> Path:
    from detective.workflows.investigation import IntakeForm, start

    case = workdir / "crashing_case.py"
    case.write_text(textwrap.dedent(source), encoding="utf-8")
    prep = start(IntakeForm(str(case), str(workdir / "sessions" / "crash"), "both_low"))
    prep.session.close()
    return workdir / "sessions" / "crash"


def test_a_check_that_raises_shows_a_dialog_with_the_traceback(workdir: Path) -> None:
    app = DetectiveApp(str(new_session(workdir, CRASHING_CASE)))

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("r")
        await until(pilot, lambda: screen_name(app) == "ErrorDialog")
        dialog = app.screen
        assert "datasets()" in dialog.message and "crashing_case.py" in dialog.message
        assert "RuntimeError: the data mount is gone" in dialog.details
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(app) == "PlaybookScreen")
        assert app.screen.rows[0].status == "error"  # saved as an error finding, not evidence

    drive(app, scenario)


def test_a_case_that_cannot_load_shows_a_dialog_not_a_crash(workdir: Path) -> None:
    path = new_session(workdir, CRASHING_CASE)
    (workdir / "crashing_case.py").write_text("CLASSES = ['a']\nraise ImportError('no cv2')\n")
    app = DetectiveApp(str(path))

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("a")
        await until(pilot, lambda: screen_name(app) == "ErrorDialog")
        assert "ImportError: no cv2" in app.screen.message
        await pilot.press("escape")
        await until(pilot, lambda: not running(app))
        assert app.is_running

    drive(app, scenario)


@pytest.mark.usefixtures("workdir")
def test_intake_validates_then_starts_with_dataset_facts() -> None:
    app = DetectiveApp(sessions_root="sessions")

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("n")
        await until(pilot, lambda: screen_name(app) == "IntakeScreen")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "case file" in text_of(app, "#case_path-error")
        assert "symptom" in text_of(app, "#symptom-error")
        assert app.focused is not None and app.focused.id == "case_path"  # the first invalid
        screen = app.screen
        screen.query_one("#case_path").value = str(DEMO_CASE)
        screen.query_one("#symptom").value = "train_high_val_low"
        screen.query_one("#reported_metric").value = "140%"
        await pilot.pause()
        # Fixed fields lose their error at once; the one still wrong keeps it.
        assert screen.query_one("#case_path-error").has_class("-empty")
        assert screen.query_one("#symptom-error").has_class("-empty")
        assert screen.query_one("#session_dir").value == "sessions/digits_case"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "accuracy" in text_of(app, "#reported_metric-error")
        screen.query_one("#reported_metric").value = "41%"
        screen.query_one("#tried").value = "retrained twice"
        screen.action_facts()
        await until(pilot, lambda: "1,347 items" in text_of(app, "#facts"))
        assert "largest/smallest class" in text_of(app, "#facts")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(app) == "PlaybookScreen", timeout=60)
        s = app.current.session
        assert s.info.options.reported_metric == pytest.approx(0.41)
        assert s.info.symptom == "train_high_val_low"
        await pilot.press("1")  # the intake of the open session edits it as you type
        await until(pilot, lambda: screen_name(app) == "IntakeScreen")
        # The stored form fills the fields and each edit is saved from a message handler: wait
        # for both rather than for one pause (a loaded machine needs more than one frame).
        await until(pilot, lambda: app.screen.query_one("#tried").value == "retrained twice")
        app.screen.query_one("#symptom").value = "one_class_bad"
        await until(pilot, lambda: s.info.symptom == "one_class_bad")

    drive(app, scenario)


def test_the_first_screen_does_not_import_torch() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        from detective.ui.tui.app import DetectiveApp

        async def main():
            app = DetectiveApp(sessions_root="no-such-folder")
            async with app.run_test() as pilot:
                await pilot.pause()
                await app.workers.wait_for_complete()
                assert type(app.screen).__name__ == "StartScreen"
        asyncio.run(main())
        heavy = ("torch", "textual_plotext", "numpy")
        print(" ".join(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == []


def test_command_palette_lists_the_screens_actions(workdir: Path) -> None:
    path = build_session(workdir / "sessions")
    app = DetectiveApp(str(path))

    async def scenario(pilot) -> None:  # noqa: ANN001
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Run every pending check" in titles
        assert "Go to Ledger" in titles
        # Every action of the app, not only this screen's: other screens' go there and do it.
        assert {"Ledger: Add hypothesis", "Experiments: New experiment", "Failures: Agree"} <= set(
            titles
        )
        assert "Help: every key" in titles
        await pilot.press("question_mark")
        await until(pilot, lambda: screen_name(app) == "HelpScreen")
        from detective.ui.tui.screens.help import screen_keys

        listed = {(title, key, what) for title, keys in screen_keys() for key, what in keys}
        expected = {
            ("Ledger", "a", "Add hypothesis"),
            ("Playbook", "r", "Run selected"),
            ("Failures", "g", "Grad-CAM"),
            ("Experiments", "n", "New experiment"),
        }
        assert expected <= listed
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(app) == "PlaybookScreen")
        ledger_add = next(c for c in app.get_system_commands(app.screen) if "Add hyp" in c.title)
        ledger_add.callback()
        await until(pilot, lambda: screen_name(app) == "Prompt")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(app) == "LedgerScreen")
        await pilot.press("6")
        await until(pilot, lambda: screen_name(app) == "ExportScreen")
        assert "Export HTML" in [c.title for c in app.get_system_commands(app.screen)]

    drive(app, scenario)


def test_serve_offers_the_app_on_localhost(tmp_path: Path) -> None:
    import socket
    import urllib.request

    from detective.ui.tui.serve import serve_command

    assert serve_command("sessions/demo").endswith("-m detective open sessions/demo")
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "detective", "serve", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as r:
                    page = r.read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert "textual" in page
        # Offline: everything the page loads (src, href, CSS url()) is on this server.
        loads = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)|url\(["']?([^"')]+)""", page)
        urls = [a or b for a, b in loads]
        assert urls and any("RobotoMono" in u for u in urls)
        remote = [u for u in urls if re.match(r"(https?:)?//", u)]
        assert all(re.match(rf"https?://localhost:{port}/", u) for u in remote), remote
    finally:
        proc.terminate()
        proc.wait(timeout=30)


SLOW_CASE = """
import time
import torch
from torch import nn

CLASSES = ["a", "b"]

class Slow(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        time.sleep(0.25)
        return torch.zeros(1, 4, 4), i % 2

def model():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

def datasets():
    return {"train": Slow(), "val": Slow()}
"""


def test_cancel_key_stops_the_running_check_and_keeps_nothing_partial(workdir: Path) -> None:
    app = DetectiveApp(str(new_session(workdir, SLOW_CASE)))

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("r")
        await until(pilot, lambda: app.screen.running_check == "case_contract")
        assert app.open_session(app.current.path) is False  # no switching under a running check
        await pilot.press("c")
        await until(pilot, lambda: not running(app), timeout=60)
        assert "Stopped" in text_of(app, "#run-label")
        assert app.current.session.findings() == []
        assert app.screen.rows[0].status == "pending"
        assert app.current.session.kv_get("ui.run") == ""  # stopped by the user: not "interrupted"
        assert "interrupted" not in text_of(app, "#next")

    drive(app, scenario)


def test_enter_saves_a_dialog_and_an_empty_required_field_says_so(workdir: Path) -> None:
    path = build_session(workdir / "sessions", with_failures=False)
    app = DetectiveApp(str(path))

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("3", "a")
        await until(pilot, lambda: screen_name(app) == "Prompt")
        await pilot.press("tab", *"why", "enter")  # the title (required) is empty
        await pilot.pause()
        assert "Title" in text_of(app, ".error") and app.focused.id == "field-0"
        await pilot.press("x")
        await pilot.pause()
        assert text_of(app, ".error") == ""  # a stale error goes once the user types
        await pilot.press("enter")  # enter saves from the first field: the hint says so
        await until(pilot, lambda: screen_name(app) == "LedgerScreen")
        users = app.current.session.user_hypotheses()
        assert [(u.title, u.explanation) for u in users] == [("x", "why")]

    drive(app, scenario)


def test_a_run_that_died_mid_way_says_so_and_offers_resume(workdir: Path) -> None:
    path = new_session(workdir, SLOW_CASE)
    with Session.open(path) as s:
        s.kv_set("ui.run", "running")  # what a killed process leaves behind
    app = DetectiveApp(str(path))

    async def scenario(pilot) -> None:  # noqa: ANN001
        await until(pilot, lambda: screen_name(app) == "PlaybookScreen")
        assert "last run was interrupted" in text_of(app, "#next")
        assert "a resumes it" in text_of(app, "#next")

    drive(app, scenario)
    with Session.open(path) as s:
        s.kv_set("ui.run", "")
    clean = DetectiveApp(str(path))

    async def not_interrupted(pilot) -> None:  # noqa: ANN001
        await until(pilot, lambda: screen_name(clean) == "PlaybookScreen")
        assert "interrupted" not in text_of(clean, "#next")
        assert "case_contract" in text_of(clean, "#next")

    drive(clean, not_interrupted)


def test_text_from_user_data_is_shown_literally(workdir: Path) -> None:
    path = build_session(workdir / "sessions", with_failures=False)
    with Session.open(path) as s:
        s.save_finding(
            Finding("case_contract", Verdict.FAIL, "class [bold red]cat[/] \x1b[31mred\x1b[0m"),
            "fp",
        )
    app = DetectiveApp(str(path))

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(app) == "FindingScreen")
        assert text_of(app, "#summary") == "class [bold red]cat[/] red"

    drive(app, scenario)


def test_experiments_survive_screen_switches_and_every_one_is_recorded(workdir: Path) -> None:
    """An experiment belongs to the App: switching screens neither cancels nor forgets it; a
    cancelled one is recorded as cancelled (in the table and the JSON export)."""
    from detective.core.session import Experiment

    path = build_session(workdir / "sessions", with_failures=False)
    with Session.open(path) as s:
        s.add_experiment(Experiment("lower lr", ("train.lr=1e-4",), "val_acc", 0.41, 0.45))
        s.update_info(case_path=str(DEMO_CASE))
    app = DetectiveApp(str(path))

    def verdicts() -> list[str]:
        return [e.verdict for e in app.current.session.experiments()]

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("5")
        await until(pilot, lambda: screen_name(app) == "ExperimentsScreen")
        table = app.screen.query_one("DataTable")
        assert table.row_count == 1 and "+0.040" in str(table.get_row_at(0)[5])
        await pilot.press("n", *"train.nonsense=3", "enter")
        await until(pilot, lambda: screen_name(app) == "ErrorDialog")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(app) == "ExperimentsScreen")
        # The App starts it (as the dialog's Enter does), then the UI switches away and back
        # at once: pilot.press would wait for the app to be idle, i.e. for the run to end.
        assert app.start_experiment("train.lr=0.0001", None) and app.experimenting()
        app.goto("ledger")
        await pilot.pause()
        assert screen_name(app) == "LedgerScreen" and app.experimenting()
        assert "▶ experiment" in app.status_text()
        app.goto("experiments")
        await until(pilot, lambda: len(verdicts()) == 2, 300)
        assert verdicts()[1] not in ("cancelled", "failed", "")
        await until(pilot, lambda: not app.experimenting())  # its end reached the App
        await until(pilot, lambda: app.screen.query_one("DataTable").row_count == 2)
        assert "Done" in str(app.screen.query_one("#run-label").render())

        assert app.start_experiment("train.lr=0.003", None)
        await app.screen.run_action("cancel")  # the c key's action, before the run can end
        await until(pilot, lambda: len(verdicts()) == 3, 120)
        assert verdicts()[2] == "cancelled"
        await until(pilot, lambda: "Cancelled" in str(app.screen.query_one("#run-label").render()))
        assert "cancelled" in str(app.screen.query_one("DataTable").get_row_at(2)[6])

    drive(app, scenario)
    from detective.core.report import build_report
    from detective.ui.export.json import report_dict

    with Session.open(path) as s:
        exported = report_dict(build_report(s))["experiments"]
    assert [e["verdict"] for e in exported][2] == "cancelled"
    assert exported[2]["before"] is None  # no number is made up for a run that did not finish


def test_quitting_mid_experiment_records_it_as_cancelled(workdir: Path) -> None:
    path = build_session(workdir / "sessions", with_failures=False)
    with Session.open(path) as s:
        s.update_info(case_path=str(DEMO_CASE))
    app = DetectiveApp(str(path))

    async def scenario(pilot) -> None:  # noqa: ANN001
        await pilot.press("5")
        await until(pilot, lambda: screen_name(app) == "ExperimentsScreen")
        assert app.start_experiment("train.lr=0.0001", None)
        await app.run_action("quit")  # the q key's action, while it runs

    drive(app, scenario)
    with Session.open(path) as s:
        recorded = [(e.verdict, e.notes) for e in s.experiments()]
    assert recorded == [("cancelled", "the app was closed")]


def test_opening_something_that_is_not_a_session_explains_why(workdir: Path) -> None:
    app = DetectiveApp(str(workdir / "not-a-session"))

    async def scenario(pilot) -> None:  # noqa: ANN001
        await until(pilot, lambda: screen_name(app) == "ErrorDialog")
        assert "no session at" in app.screen.message
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(app) == "StartScreen")

    drive(app, scenario)
