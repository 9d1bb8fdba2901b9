"""The real app in a real terminal: tmux gives it an 80×24 pseudo-terminal, keys arrive as bytes
(bursts, bracketed pastes) and the screen is read back as the user sees it. Not the pilot."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_tui_snapshots import build_session

from detective.casekit.demo import DEMO_CASE
from detective.core.findings import Finding, Verdict
from detective.core.session import Session

# tmux when it is installed; otherwise a pseudo-terminal read through pyte (a pure-Python
# terminal emulator, in the test extra). DETECTIVE_TEST_TERMINAL=pyte forces the latter.
BACKEND = os.environ.get("DETECTIVE_TEST_TERMINAL") or ("tmux" if shutil.which("tmux") else "pyte")
KEYS = {"Enter": "\r", "Down": "\x1b[B", "Up": "\x1b[A", "Escape": "\x1b", "Tab": "\t"}
SGR = {"bold": "1", "reverse": "7"}


class Terminal:
    """One tmux server (own socket) running one command in an 80×24 window."""

    def __init__(self, tmp: Path, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.socket = str(tmp / "tmux.sock")
        base = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        command = " ".join(
            [
                "env",
                *(shlex.quote(f"{k}={v}") for k, v in (env or {}).items()),
                *(shlex.quote(a) for a in argv),
            ]
        )
        self._tmux(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-s",
            "t",
            command,
            cwd=tmp,
            env=base | {"TERM": "xterm-256color"},
        )
        self._tmux("set-option", "-t", "t", "remain-on-exit", "on")

    def _tmux(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        return subprocess.run(
            ["tmux", "-S", self.socket, *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
            env=env,
        ).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def styles_of(self, text: str) -> set[str]:
        """The attributes ("bold", "reverse") `text` is painted with, where it first appears."""
        for line in self._tmux("capture-pane", "-p", "-e", "-t", "t").splitlines():
            if text in re.sub(r"\x1b\[[0-9;]*m", "", line):
                m = re.search(r"((?:\x1b\[[0-9;]*m)*)" + re.escape(text), line)
                codes = ";".join(re.findall(r"\x1b\[([0-9;]*)m", m.group(1))) if m else ""
                return {name for name, sgr in SGR.items() if sgr in codes.split(";")}
        return set()

    def keys(self, *keys: str) -> None:
        for key in keys:  # one write each, as a user types
            self._tmux("send-keys", "-t", "t", key)
            time.sleep(0.05)

    def burst(self, text: str) -> None:
        """Every byte in one write, as SSH batching delivers a quick sequence."""
        self._tmux("send-keys", "-t", "t", "-l", text)

    def paste(self, text: str) -> None:
        """A bracketed paste, as a terminal sends one."""
        self._tmux("set-buffer", "-b", "p", text)
        self._tmux("paste-buffer", "-p", "-d", "-b", "p", "-t", "t")

    def wait(self, condition: Callable[[str], bool], what: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.2)

    def wait_text(self, text: str, timeout: float = 60.0) -> str:
        return self.wait(lambda s: text in s, repr(text), timeout)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


class PyteTerminal:
    """The same, on a pseudo-terminal of our own, its output interpreted by pyte."""

    def __init__(self, tmp: Path, argv: list[str], env: dict[str, str] | None = None) -> None:
        import fcntl
        import pty
        import struct
        import termios
        import threading

        import pyte

        self.screen_ = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen_)
        self.lock = threading.Lock()
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", **(env or {})}
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=tmp,
            env=full_env,
            start_new_session=True,
        )
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.stream.feed(data)

    def screen(self) -> str:
        with self.lock:
            return "\n".join(self.screen_.display)

    def styles_of(self, text: str) -> set[str]:
        with self.lock:
            for y, line in enumerate(self.screen_.display):
                x = line.find(text)
                if x >= 0:
                    char = self.screen_.buffer[y][x]
                    return {name for name in SGR if getattr(char, name)}
        return set()

    def keys(self, *keys: str) -> None:
        for key in keys:
            os.write(self.master, KEYS.get(key, key).encode())
            time.sleep(0.05)

    def burst(self, text: str) -> None:
        os.write(self.master, text.encode())

    def paste(self, text: str) -> None:
        os.write(self.master, b"\x1b[200~" + text.encode() + b"\x1b[201~")

    wait = Terminal.wait
    wait_text = Terminal.wait_text

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.master)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal | PyteTerminal]]:
    opened: list[Terminal | PyteTerminal] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Terminal:
        kind = Terminal if BACKEND == "tmux" else PyteTerminal
        t = kind(tmp_path, [sys.executable, "-m", "detective", *args], env)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


def line_with(screen: str, text: str) -> str:
    return next((line for line in screen.splitlines() if text in line), "")


def export_json(t: Terminal | PyteTerminal, session: Path) -> dict:
    report = session / "report.json"
    report.unlink(missing_ok=True)
    t.keys("6")
    t.wait_text("JSON")
    t.keys("j")
    deadline = time.monotonic() + 60
    while not report.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    t.wait_text("report.json")
    return json.loads(report.read_text(encoding="utf-8"))


def test_an_experiment_survives_two_screen_switches_and_is_exported(
    tmp_path: Path, terminal: Callable[..., Terminal | PyteTerminal]
) -> None:
    path = build_session(tmp_path / "sessions")
    with Session.open(path) as s:
        s.update_info(case_path=str(DEMO_CASE))
    t = terminal("open", str(path))
    t.wait_text("Playbook")
    t.keys("5")
    t.wait_text("No experiments yet")
    t.keys("n")
    t.wait_text("One change")
    t.burst("train.lr=1e-4")
    t.keys("Enter")
    t.wait_text("▶ experiment", 30)  # the status line says it runs
    t.keys("3")  # switch away twice
    t.wait(lambda s: "hypothesis" in s and "▶ experiment" in s, "the ledger, still running")
    t.keys("2")
    t.wait_text("summary")
    t.keys("5")
    screen = t.wait(
        lambda s: re.search(r"train\.lr=0\.0001\s+val_acc", s) is not None,
        "the finished experiment in the table",
        600,
    )
    assert "cancelled" not in screen and "failed" not in screen
    exported = export_json(t, path)["experiments"]
    assert [e["name"] for e in exported] == ["train.lr=0.0001"]
    assert exported[0]["verdict"] not in ("cancelled", "failed")
    assert isinstance(exported[0]["after"], float)


def test_a_confusion_pair_is_reviewed_and_exported_as_a_pair(
    tmp_path: Path, terminal: Callable[..., Terminal | PyteTerminal]
) -> None:
    path = build_session(tmp_path / "sessions")
    t = terminal("open", str(path))
    t.wait_text("Playbook")
    t.keys("4")
    t.wait_text("pair ×6")
    # The list has the focus on entry: down moves the cursor, not the page.
    t.keys("Down", "Down", "Down", "y")

    def review(screen: str, row: str) -> str:  # the list's side of the row, not the viewer's
        return line_with(screen, row).split("│")[0]

    # The mark's glyph, not its word: the review column widens to "✓ agree" only once the app is
    # idle, and a frame painted before that (under load) stays as "✓ agre" (Textual's DataTable
    # caches the line). Only an agree is marked "✓" (✗ disagree, – skip, · none), and the export
    # below checks the stored verdict itself.
    t.wait(lambda s: "✓" in review(s, "pair ×6"), "the pair marked agreed")
    assert "✓" not in review(t.screen(), "val:12")
    reviews = export_json(t, path)["reviews"]
    assert [(r["target_kind"], r["target_id"], r["verdict"]) for r in reviews] == [
        ("pair", "3→8", "agree")
    ]


@pytest.mark.parametrize("how", ["paste", "burst"])
def test_path_tab_name_lands_in_two_fields(
    terminal: Callable[..., Terminal | PyteTerminal], how: str
) -> None:
    t = terminal()
    t.wait_text("New investigation")
    t.keys("n")
    t.wait_text("Case file")
    row = "cases/mycase.py\tsessions/pasted"
    t.paste(row) if how == "paste" else t.burst(row)
    screen = t.wait(
        lambda s: "sessions/pasted" in line_with(s, "Session folder"), "the session folder"
    )
    assert "cases/mycase.py" in line_with(screen, "Case file")
    assert "sessions/pasted" not in line_with(screen, "Case file")
    assert "cases/mycase.py" not in line_with(screen, "Session folder")


def test_under_no_color_the_failing_check_is_marked_by_glyph_and_weight(
    tmp_path: Path, terminal: Callable[..., Terminal | PyteTerminal]
) -> None:
    path = build_session(tmp_path / "sessions", with_failures=False)
    with Session.open(path) as s:
        s.save_finding(Finding("case_contract", Verdict.PASS, "fine"), "fp")
    t = terminal("open", str(path), env={"NO_COLOR": "1"})
    screen = t.wait_text("✗ fail")
    assert "preprocessing_parity" in line_with(screen, "✗ fail")
    assert "✓ pass" in line_with(screen, "case_contract")
    # Bold reverse video in the terminal's own colours, not a grey level, sets it apart.
    assert t.styles_of("✗ fail") == {"bold", "reverse"}
