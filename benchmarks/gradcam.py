"""Grad-CAM throughput: our batched path vs captum's plain per-image use, same model, same run.

    /work/venv/bin/python benchmarks/gradcam.py [--n 256] [--size 32] [--device auto]

Both compute LayerGradCam maps for the same images and targets on the same layer, upsampled to
the input size; the maps are checked to agree before the ratio is printed.
"""

from __future__ import annotations

import argparse
import time

import torch
from captum.attr import LayerAttribution, LayerGradCam

from detective.analysis.torchutil import resolve_device
from detective.casekit.demo.kit import SmallCNN
from detective.checks.capacity.gradcam import cam_layer, gradcam_maps


def per_image(model, layer, x, targets):  # noqa: ANN001, ANN201
    cam = LayerGradCam(model, layer)
    out = []
    for i in range(len(x)):
        a = cam.attribute(x[i : i + 1], target=int(targets[i]), relu_attributions=True)
        out.append(LayerAttribution.interpolate(a, tuple(x.shape[-2:]), "bilinear")[0, 0])
    return torch.stack(out).detach().clamp_min(0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = SmallCNN(in_channels=args.channels, width=32).to(device).eval()
    x = torch.randn(args.n, args.channels, args.size, args.size, device=device)
    targets = torch.randint(0, 10, (args.n,), device=device)
    _, layer = cam_layer(model, x)
    gradcam_maps(model, layer, x[:8], targets[:8])  # warm-up
    per_image(model, layer, x[:8], targets[:8])
    t0 = time.perf_counter()
    ours = gradcam_maps(model, layer, x, targets, batch_size=64)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = per_image(model, layer, x, targets)
    t_ref = time.perf_counter() - t0
    # Batch-norm in eval mode makes rows independent, so the maps must match.
    err = float((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
    assert err < 1e-4, f"batched maps differ from per-image maps (max rel. error {err:.2e})"
    print(f"device {device}, {args.n} images {args.channels}x{args.size}x{args.size}, layer "
          f"output of the last conv block")
    print(f"captum per image : {args.n / t_ref:8.1f} images/s ({t_ref:.2f} s)")
    print(f"ours, batched 64 : {args.n / t_ours:8.1f} images/s ({t_ours:.2f} s)")
    print(f"speed-up         : {t_ref / t_ours:8.1f}x   (maps agree to {err:.1e})")


if __name__ == "__main__":
    main()
