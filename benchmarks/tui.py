"""TUI responsiveness: time to an interactive first screen, and key latency while checks run.

1. Startup: a fresh process, from spawn to the start screen composed and accepting keys (headless;
   the recent-sessions list then fills in from a worker), against a bare Textual app with one
   Static in the same run: the ratio is what detective adds on top of Textual itself. Goal: under
   1 s in absolute terms on an idle machine.
2. Key latency: a key that moves the playbook's cursor, pressed every 100 ms, timed from the
   key event until the cursor has moved; with no run in progress (baseline) and while the demo's
   whole playbook runs in the worker thread (torch, PIL, numpy all busy). Prints medians and p95.

Usage: python benchmarks/tui.py [--repeats 5] [--presses 60] [--keys-only]
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
from pathlib import Path

STARTUP_DETECTIVE = """
import asyncio, sys, time
from detective.tui.app import DetectiveApp
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


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def key_latency(session: Path, presses: int) -> tuple[list[float], list[float], int]:
    from detective.tui.app import DetectiveApp
    from detective.tui.widgets.run_panel import RunPanel

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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sessions"
        root.mkdir()
        if not args.keys_only:
            startup_report(root, args.repeats)
        keys_report(tmp, root, args.presses)


def startup_report(root: Path, repeats: int) -> None:
    print(f"startup, {repeats} fresh processes each (median):")
    bare = startup(STARTUP_BARE, root, repeats)
    ours = startup(STARTUP_DETECTIVE, root, repeats)
    mb, mo = statistics.median(bare), statistics.median(ours)
    print(f"  bare Textual app        {mb * 1000:7.0f} ms")
    print(f"  detective start screen  {mo * 1000:7.0f} ms   ratio {mo / mb:.2f}x bare")
    print(f"  under 1 s: {'yes' if mo < 1.0 else 'NO'}")


def keys_report(tmp: str, root: Path, presses: int) -> None:
    from detective.case import load_case
    from detective.demo import DEMO_CASE, DEMO_SYMPTOM
    from detective.investigation import IntakeForm, start

    t = time.perf_counter()
    load_case(DEMO_CASE).model()  # train (or load) the demo's model before timing keys
    print(f"demo model ready in {time.perf_counter() - t:.1f} s (trained once, then cached)")
    session = root / "demo"
    start(IntakeForm(str(DEMO_CASE), str(session), DEMO_SYMPTOM)).session.close()
    os.chdir(tmp)
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
