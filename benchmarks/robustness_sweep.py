"""robustness_sweep on the demo case: its cost, with its one-thread guard for tiny CPU models vs
the same sweep with torch's default thread count, measured in the same run (alternating).

    /work/venv/bin/python benchmarks/robustness_sweep.py [--repeats 3]

The guard matters most on a busy machine, where intra-op threads of a tiny model's forwards spend
more time synchronising than computing; on an idle one the two are close.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from detective.core.case import load_case
from detective.core.context import RunContext, RunOptions
from detective.core.progress import Progress
from detective.core.registry import get_check

DEMO = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "detective"
    / "casekit"
    / "demo"
    / "digits_case.py"
)


def _no_guard(*_args: object) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


def run_once(guard: bool) -> float:
    tmp = Path(tempfile.mkdtemp())
    ctx = RunContext(load_case(DEMO), RunOptions(device="cpu"), tmp / "a", tmp / "c")
    ctx.model()
    check = get_check("robustness_sweep")()
    patch = (contextlib.nullcontext() if guard else
             mock.patch("detective.analysis.learning.recipe._few_cpu_threads", _no_guard))
    with patch:
        t = time.perf_counter()
        check.measure(ctx, Progress())
        return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    run_once(True)  # warm-up: imports, the demo's cached model, matplotlib
    guarded, default = [], []
    for _ in range(args.repeats):
        guarded.append(run_once(True))
        default.append(run_once(False))
    g, d = min(guarded), min(default)
    print(f"torch threads by default: {torch.get_num_threads()}")
    print(f"sweep with the one-thread guard: best {g:.2f} s  (runs {guarded})")
    print(f"sweep with default threads:      best {d:.2f} s  (runs {default})")
    print(f"ratio default / guarded: {d / g:.2f}x")


if __name__ == "__main__":
    main()
