"""Overhead of the learning checks' instrumentation over a plain training step, side by side.

    python benchmarks/learning.py [--steps 200] [--repeats 5] [--device cpu] [--threads N]

Times the same model/batch/optimizer three ways, interleaved so machine load hits all alike:
plain steps; steps with per-layer gradient norms every step (`GradNorms`, what gradient_flow
records); and steps with gradient norms plus weight norms/update sizes (`WeightTracker`, what
weight_updates records). Prints the median time per step and the ratios to plain (goal for
gradient norms: < 1.3×).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    import torch

    from detective.analysis.learning.recipe import GradNorms, WeightTracker
    from detective.analysis.torchutil import resolve_device
    from detective.casekit.demo.kit import SmallCNN

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=16, help="image side (the demo's digits are 8)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    x = torch.randn(64, 1, args.size, args.size, device=device)
    y = torch.randint(0, 10, (64,), device=device)

    def run(mode: str) -> float:
        torch.manual_seed(0)
        model = SmallCNN().to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        grads = GradNorms(model) if mode != "plain" else None
        weights = WeightTracker(model) if mode == "grads+weights" else None
        if grads:
            grads.__enter__()
        try:

            def step() -> None:
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                float(loss.detach())  # every variant syncs once for the loss, as the loops do
                if grads:
                    grads.end_step()
                if weights:
                    weights.step()

            for _ in range(10):  # warm-up
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return (time.perf_counter() - start) / args.steps
        finally:
            if grads:
                grads.__exit__(None, None, None)

    modes = ("plain", "grads", "grads+weights")
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode in modes:  # interleaved: load changes hit every variant alike
            times[mode].append(run(mode))
    base = statistics.median(times["plain"])
    print(
        f"device {device}, {args.steps} steps × {args.repeats} repeats, batch 64, "
        f"{args.size}×{args.size} images, SmallCNN, torch threads {torch.get_num_threads()}"
    )
    for mode in modes:
        med = statistics.median(times[mode])
        print(f"{mode:>14}: {med * 1e3:7.2f} ms/step   ratio {med / base:5.2f}×")
    ratio = statistics.median(times["grads"]) / base
    print(
        f"gradient norms every step: {ratio:.2f}× a plain step (goal < 1.3×): "
        + ("OK" if ratio < 1.3 else "ABOVE GOAL")
    )


if __name__ == "__main__":
    main()
