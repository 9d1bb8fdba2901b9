"""The collection pass vs a bare `torch.no_grad()` loop over the same data and batch size.

Both run side by side in this process (interleaved, best of R repeats each, so machine load hits
both alike) on a synthetic image set served the way a user's Dataset serves it (per-item
`__getitem__`, a DataLoader with the case's batch size). The goal from the issue: the pass costs
at most 1.2x the bare loop, and its peak memory grows only with the records it keeps.

    python benchmarks/collect.py                 # CPU here; --device cuda on a GPU box
    python benchmarks/collect.py --sizes 1000 4000 16000 --image 64 --width 64

Peak memory is measured with tracemalloc on the Python heap (numpy records live there) for the
collection, and CUDA peak allocation when on a GPU. Records per example: index, label, top-3,
K log-probabilities, loss, 4 properties (+ features for failures and a 2048-row sample).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

CASE = '''
import torch
from torch import nn
from detective.casekit.demo import kit

CLASSES = [str(i) for i in range(10)]
N, SIZE, WIDTH = {n}, {image}, {width}
EVAL = {{"batch_size": {batch}}}


class Synthetic(torch.utils.data.Dataset):
    """Items made on the fly (like decoding files): memory does not grow with N."""

    def __len__(self):
        return N

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.rand(3, SIZE, SIZE, generator=g), i % 10


def datasets():
    return {{"train": Synthetic(), "val": Synthetic()}}


def model():
    torch.manual_seed(0)
    if "{arch}" == "resnet18":
        from torchvision.models import resnet18

        return resnet18(num_classes=10).eval()
    return kit.SmallCNN(in_channels=3, width=WIDTH).eval()
'''


def bare_loop(ctx, split: str, batch_size: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    model = ctx.model()
    loader = DataLoader(ctx.dataset(split), batch_size=batch_size, shuffle=False)
    start = time.perf_counter()
    with torch.no_grad():
        for x, _y in loader:
            model(x.to(ctx.device))
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def collection_pass(ctx, split: str, batch_size: int) -> tuple[float, int]:
    import torch

    from detective.analysis.collect import ShardSpec, _run_pass  # the pass itself, no disk cache

    idx = list(range(len(ctx.dataset(split))))
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    start = time.perf_counter()
    part = _run_pass(ctx, split, idx, ShardSpec(), None, batch_size, 2048)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(part["index"]) == len(idx)
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--image", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", choices=("smallcnn", "resnet18"), default="smallcnn")
    args = parser.parse_args()

    import torch

    from detective.core.case import load_case
    from detective.core.context import RunContext, RunOptions

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    arch = f"SmallCNN width {args.width}" if args.arch == "smallcnn" else "ResNet-18"
    print(
        f"device {args.device}, images 3x{args.image}x{args.image}, {arch}, "
        f"batch {args.batch}, best of {args.repeats}"
    )
    print(
        f"{'N':>7} {'bare s':>8} {'pass s':>8} {'ratio':>6} {'peak MB':>8} "
        f"{'records MB':>10} {'peak/N KB':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"bench_{n}.py"
            path.write_text(
                textwrap.dedent(
                    CASE.format(
                        n=n, image=args.image, width=args.width, batch=args.batch, arch=args.arch
                    )
                )
            )
            ctx = RunContext(
                load_case(path),
                RunOptions(device=args.device, sample=n),
                Path(tmp) / "a",
                Path(tmp) / "c",
            )
            ctx.model()
            bare_loop(ctx, "val", args.batch)  # warm-up (allocator, kernels)
            bare, ours, peak = [], [], 0
            for _ in range(args.repeats):
                bare.append(bare_loop(ctx, "val", args.batch))
                t, p = collection_pass(ctx, "val", args.batch)
                ours.append(t)
                peak = max(peak, p)
            k = 10
            records = n * (8 + 8 + 3 * 8 + 3 * 4 + k * 4 + 4 + 4 * 4) + min(n, 2048) * (
                2 * args.width * 4 + 8 + 1
            )
            print(
                f"{n:>7} {min(bare):>8.3f} {min(ours):>8.3f} {min(ours) / min(bare):>6.2f} "
                f"{peak / 2**20:>8.1f} {records / 2**20:>10.1f} {peak / n / 1024:>9.2f}"
            )
    print(
        "ratio = collection pass / bare no_grad loop (goal <= 1.2); peak = Python-heap peak "
        "of the pass, which should track the records, not N x image size "
        f"({3 * args.image**2 * 4 / 1024:.0f} KB per image)."
    )


if __name__ == "__main__":
    main()
