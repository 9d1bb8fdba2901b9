"""TUI responsiveness: time to an interactive first screen, and key latency while checks run.

1. Startup: a fresh process, from spawn to the start screen composed and accepting keys (headless;
   the recent-sessions list then fills in from a worker), against a bare Textual app with one
   Static in the same run: the ratio is what detective adds on top of Textual itself. Goal: under
   1 s in absolute terms on an idle machine.
2. Key latency: a key that moves the playbook's cursor, pressed every 100 ms, timed from the
   key event until the cursor has moved; with no run in progress (baseline) and while the demo's
   whole playbook runs (in its child process: torch, PIL, numpy busy on the other core). Prints
   medians and p95.

3. Through a real pseudo-terminal (what a user over SSH gets): time from spawn until the first
   frame's text reaches the terminal, and key → repaint latency of a screen switch (keys 3 / 2)
   while the demo's playbook runs, each against a bare Textual app doing the same in the same
   run. Goals: first frame ≤ 0.5 s, p99 key latency ≤ 100 ms; the ratios say what detective adds.

Usage: python benchmarks/tui.py [--repeats 5] [--presses 60] [--keys-only] [--pty-only]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

STARTUP_DETECTIVE = """
import asyncio, sys, time
from detective.ui.tui.app import DetectiveApp
async def main():
    app = DetectiveApp(sessions_root=sys.argv[1])
    async with app.run_test() as pilot:
        assert type(app.screen).__name__ == "StartScreen"
        ready = time.time()  # composed, mounted, accepting keys
        await app.workers.wait_for_complete()
        await pilot.pause()
        print(time.time(), ready)
asyncio.run(main())
"""

STARTUP_BARE = """
import asyncio, sys, time
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("hello")
async def main():
    async with Bare().run_test() as pilot:
        await pilot.pause()
        print(time.time())
asyncio.run(main())
"""


def startup(code: str, root: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), str(root)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        stamps = [float(v) for v in out.strip().splitlines()[-1].split()]
        times.append(min(stamps) - t0)  # the first screen (the bare app has only that)
    return times


# --- through a pseudo-terminal ----------------------------------------------------------------
PTY_BARE = """
from textual.app import App
from textual.screen import Screen
from textual.widgets import Static

class Page(Screen):
    def __init__(self, text):
        super().__init__()
        self.text = text
    def compose(self):
        yield Static(self.text)

class Bare(App):
    BINDINGS = [("3", "show('hypothesis')"), ("2", "show('summary')")]
    def on_mount(self):
        self.push_screen(Page("New investigation"))
    def action_show(self, text):
        self.switch_screen(Page(text))

Bare().run()
"""


class Pty:
    """A process on an 80×24 pseudo-terminal; reads what it paints."""

    def __init__(self, argv: list[str], cwd: str | None = None) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True
        )
        os.close(slave)

    def wait_for(self, marker: bytes, timeout: float = 60.0) -> float:
        """Seconds until `marker` has been painted (searched in what arrives from now on)."""
        import select

        t0, seen = time.perf_counter(), b""
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(self.master, 65536)
                except OSError:
                    break
                if marker in seen:
                    return time.perf_counter() - t0
                seen = seen[-4096:]
        raise TimeoutError(f"{marker!r} never painted")

    def drain(self, quiet: float = 0.3) -> None:
        import select

        while select.select([self.master], [], [], quiet)[0]:
            try:
                os.read(self.master, 65536)
            except OSError:
                return

    def key(self, key: bytes) -> None:
        os.write(self.master, key)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.master)


def pty_first_frame(argv: list[str], marker: bytes, repeats: int, cwd: str) -> list[float]:
    out = []
    for _ in range(repeats):
        term = Pty(argv, cwd)
        try:
            term.wait_for(marker)
            out.append(time.perf_counter() - term.t0)
        finally:
            term.close()
    return out


def pty_switches(term: Pty, presses: int, busy: Callable[[], bool] | None = None) -> list[float]:
    """Keys 3 and 2 in turn; each timed until the other screen's header is painted."""
    out = []
    for i in range(presses):
        if busy is not None and not busy():
            break
        key, marker = (b"3", b"hypothesis") if i % 2 == 0 else (b"2", b"summary")
        term.key(key)
        out.append(term.wait_for(marker, timeout=10))
        time.sleep(0.1)
    return out


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def pty_report(tmp: str, root: Path, repeats: int, presses: int) -> None:
    bare = [sys.executable, "-c", textwrap.dedent(PTY_BARE)]
    ours = [sys.executable, "-m", "detective"]
    print(f"through a pty at 80×24, first frame, {repeats} fresh processes each (median):")
    fb = statistics.median(pty_first_frame(bare, b"New investigation", repeats, tmp))
    fo = statistics.median(pty_first_frame(ours, b"New investigation", repeats, tmp))
    print(f"  bare Textual app        {fb * 1000:7.0f} ms")
    print(f"  detective start screen  {fo * 1000:7.0f} ms   ratio {fo / fb:.2f}x bare")
    print(f"  ≤ 0.5 s: {'yes' if fo <= 0.5 else 'NO'}")

    term = Pty(bare, tmp)
    term.wait_for(b"New investigation")
    term.drain()
    base = pty_switches(term, presses)
    term.close()
    session = root / "demo"
    term = Pty([sys.executable, "-m", "detective", "open", str(session)], tmp)
    term.wait_for(b"summary")
    term.drain()
    term.key(b"a")  # run every pending check; keys are timed while it runs
    time.sleep(3.0)
    term.drain(0.05)
    stop = time.perf_counter() + 120
    busy = pty_switches(term, presses, lambda: time.perf_counter() < stop)
    term.key(b"2")
    term.key(b"c")
    term.close()
    print(f"key → repaint, screen switch (3 / 2), {len(base)} bare, {len(busy)} detective mid-run:")
    print(
        f"  bare Textual app       median {statistics.median(base) * 1000:6.1f} ms   "
        f"p99 {p99(base) * 1000:6.1f} ms"
    )
    ratio = statistics.median(busy) / statistics.median(base)
    print(
        f"  detective, checks run  median {statistics.median(busy) * 1000:6.1f} ms   "
        f"p99 {p99(busy) * 1000:6.1f} ms   ratio {ratio:.2f}x bare"
    )
    print(f"  p99 ≤ 100 ms: {'yes' if p99(busy) <= 0.1 else 'NO'}")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def key_latency(session: Path, presses: int) -> tuple[list[float], list[float], int]:
    from detective.ui.tui.app import DetectiveApp
    from detective.ui.tui.widgets.run_panel import RunPanel

    app = DetectiveApp(str(session))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("DataTable")

        async def measure(n: int, while_running: bool) -> list[float]:
            out = []
            for i in range(n):
                if while_running and not app.screen.query_one(RunPanel).running:
                    break
                before = table.cursor_row
                t0 = time.perf_counter()
                # Post the key as a terminal would and poll for its effect (pilot.press would
                # also wait for every message queue to go idle, which never happens mid-run).
                app.simulate_key("down" if i % 2 == 0 else "up")
                while table.cursor_row == before:
                    await asyncio.sleep(0.0005)
                out.append(time.perf_counter() - t0)
                await asyncio.sleep(0.1)
            return out

        idle = await measure(presses, False)
        await pilot.press("a")  # run every pending check
        while not app.screen.query_one(RunPanel).running:
            await pilot.pause(0.05)
        await asyncio.sleep(1.0)  # well into the first check
        busy = await measure(presses, True)
        checks_seen = sum(1 for r in app.screen.rows if r.status != "pending")
        app.screen.action_cancel()
        while app.screen.query_one(RunPanel).running:
            await pilot.pause(0.1)
    return idle, busy, checks_seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--keys-only", action="store_true", help="skip the startup part")
    parser.add_argument("--pty-only", action="store_true", help="only the pseudo-terminal part")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sessions"
        root.mkdir()
        if not args.keys_only and not args.pty_only:
            startup_report(root, args.repeats)
        keys_report(tmp, root, 0 if args.pty_only else args.presses)
        pty_report(tmp, root, args.repeats, args.presses)


def startup_report(root: Path, repeats: int) -> None:
    print(f"startup, {repeats} fresh processes each (median):")
    bare = startup(STARTUP_BARE, root, repeats)
    ours = startup(STARTUP_DETECTIVE, root, repeats)
    mb, mo = statistics.median(bare), statistics.median(ours)
    print(f"  bare Textual app        {mb * 1000:7.0f} ms")
    print(f"  detective start screen  {mo * 1000:7.0f} ms   ratio {mo / mb:.2f}x bare")
    print(f"  under 1 s: {'yes' if mo < 1.0 else 'NO'}")


def keys_report(tmp: str, root: Path, presses: int) -> None:
    from detective.casekit.demo import DEMO_CASE, DEMO_SYMPTOM
    from detective.core.case import load_case
    from detective.workflows.investigation import IntakeForm, start

    t = time.perf_counter()
    load_case(DEMO_CASE).model()  # train (or load) the demo's model before timing keys
    print(f"demo model ready in {time.perf_counter() - t:.1f} s (trained once, then cached)")
    session = root / "demo"
    start(IntakeForm(str(DEMO_CASE), str(session), DEMO_SYMPTOM)).session.close()
    os.chdir(tmp)
    if not presses:
        return
    idle, busy, seen = asyncio.run(key_latency(session, presses))
    print(f"key latency (cursor move), {len(idle)} presses idle, {len(busy)} while running:")
    print(
        f"  idle           median {statistics.median(idle) * 1000:6.1f} ms   "
        f"p95 {p95(idle) * 1000:6.1f} ms"
    )
    if busy:
        ratio = statistics.median(busy) / statistics.median(idle)
        print(
            f"  checks running median {statistics.median(busy) * 1000:6.1f} ms   "
            f"p95 {p95(busy) * 1000:6.1f} ms   ratio {ratio:.2f}x idle "
            f"({seen} check(s) finished meanwhile)"
        )
    else:
        print("  the run finished before any key could be timed")


if __name__ == "__main__":
    main()
