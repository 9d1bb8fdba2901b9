"""Grad-CAM on failures: where does the model look when it is confidently wrong?

Class-activation maps (captum's LayerGradCam on the last Conv2d, batched: one forward/backward per
batch with a target per row) for the most confidently wrong val examples, for the predicted and
the true class, overlaid on the raw image. The share of the map's mass on the image border, the
centre and each corner makes "the model looks at the background" a number, per failure cluster
(detective.analysis.clusters) or per true class, against correctly classified examples as reference.

captum rather than pytorch-grad-cam: captum installs in seconds on top of torch, while
pytorch-grad-cam pulls OpenCV, matplotlib and scipy; benchmarks/gradcam.py measures our batched
use against captum's plain per-image use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detective.core.budget import CaseSize, Cost, Knob, SharedCost
from detective.core.findings import Artifact, ArtifactKind, Finding, Metric, Table, Verdict

if TYPE_CHECKING:
    import torch

from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

REGIONS = ("border", "centre", "top-left", "top-right", "bottom-left", "bottom-right")


@dataclass(frozen=True)
class GradCamThresholds:
    border_excess: float = 0.15  # failures' border share above the reference's by this → warn
    corner_factor: float = 3.0  # a corner holding this many times its area share …
    corner_excess: float = 0.10  # … and this much more than on correct examples → warn


@dataclass(frozen=True)
class GradCamSettings:
    """How much gradcam_failures measures (read by measure only)."""

    failures: int = 256  # failures whose maps are measured (most confident first)
    gallery: int = 12  # shown in the PNG grid
    reference: int = 128  # correctly classified examples measured as the reference
    min_failures: int = 5


@dataclass(frozen=True)
class RegionShares:
    """Mean share of positive Grad-CAM mass per region (sums of border+centre = 1)."""

    border: float
    centre: float
    top_left: float
    top_right: float
    bottom_left: float
    bottom_right: float

    def get(self, region: str) -> float:
        return getattr(self, region.replace("-", "_"))


@dataclass(frozen=True)
class GroupShares:
    group: str  # "cluster <rank> (<id>)", as failure_clusters names it, or "class <name>"
    size: int
    shares: RegionShares


@dataclass(frozen=True)
class GradCamMeasurement:
    layer: str
    failures: int
    measured: int
    reference: int
    border_area: float  # share of the image area in the border band
    corner_area: float  # share of the image area in one corner square
    failure_shares: RegionShares | None
    reference_shares: RegionShares | None
    true_class_shares: RegionShares | None  # maps for the true class of the same failures
    groups: tuple[GroupShares, ...]
    grouping: str  # "clusters" | "classes"
    grid: str  # artifact path, "" when none
    reason: str = ""  # why nothing was measured


def cam_layer(model: torch.nn.Module, x: torch.Tensor) -> tuple[str, torch.nn.Module] | None:
    """The last leaf module, in execution order, whose output is still a spatial map [B,C,H,W]
    with H·W > 1 (the last conv block's activation, after its norm and ReLU): the usual Grad-CAM
    layer, found by one traced forward pass rather than by guessing names."""
    import torch

    seen: list[tuple[str, torch.nn.Module]] = []
    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue

        def hook(m, _inp, out, name=name) -> None:  # noqa: ANN001
            spatial = isinstance(out, torch.Tensor) and out.ndim == 4
            if spatial and out.shape[-1] * out.shape[-2] > 1:
                seen.append((name, m))

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return seen[-1] if seen else None


def gradcam_maps(
    model: torch.nn.Module,
    layer: torch.nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int = 64,
) -> torch.Tensor:
    """Grad-CAM maps [N, H, W] (ReLU'd, upsampled to the input size), batched, on x's device."""
    import torch
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(model, layer)
    out = []
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].detach().requires_grad_(False)
            a = cam.attribute(xb, target=targets[i : i + batch_size], relu_attributions=True)
            a = LayerAttribution.interpolate(a, tuple(x.shape[-2:]), interpolate_mode="bilinear")
            out.append(a[:, 0].detach().clamp_min(0))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else x.new_zeros((0, *x.shape[-2:]))


def region_masks(h: int, w: int) -> dict[str, torch.Tensor]:
    """Boolean masks: a border band of 1/8 of the short side, the centre, four corner squares of
    1/4 of the short side."""
    import torch

    b = max(1, round(min(h, w) / 8))
    c = max(1, round(min(h, w) / 4))
    border = torch.ones(h, w, dtype=torch.bool)
    border[b : h - b, b : w - b] = False
    masks = {"border": border, "centre": ~border}
    for name, (ys, xs) in {
        "top-left": (slice(0, c), slice(0, c)),
        "top-right": (slice(0, c), slice(w - c, w)),
        "bottom-left": (slice(h - c, h), slice(0, c)),
        "bottom-right": (slice(h - c, h), slice(w - c, w)),
    }.items():
        m = torch.zeros(h, w, dtype=torch.bool)
        m[ys, xs] = True
        masks[name] = m
    return masks


def shares_per_map(cams: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per map, the share of its mass in each region; NaN for an all-zero map."""
    import torch

    masks = {k: v.to(cams.device) for k, v in region_masks(*cams.shape[-2:]).items()}
    total = cams.flatten(1).sum(1)
    out = {}
    for name, m in masks.items():
        s = (cams * m).flatten(1).sum(1) / total.clamp_min(1e-12)
        out[name] = torch.where(total > 0, s, torch.full_like(s, math.nan))
    return out


def mean_shares(per_map: dict[str, torch.Tensor], rows: torch.Tensor | None = None) -> RegionShares:
    import torch

    vals = {}
    for name in REGIONS:
        v = per_map[name] if rows is None else per_map[name][rows]
        v = v[~torch.isnan(v)]
        vals[name.replace("-", "_")] = float(v.mean()) if len(v) else math.nan
    return RegionShares(**vals)


def overlay(image: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """[C,H,W] image in [0,1] + [H,W] map → [H,W,3] in [0,1], the map in red-yellow."""
    import torch

    gray = image.mean(0) if image.shape[0] != 3 else None
    rgb = image.permute(1, 2, 0) if gray is None else gray.unsqueeze(-1).expand(-1, -1, 3)
    c = cam / cam.max().clamp_min(1e-12)
    heat = torch.stack([c.clamp(0, 1), (2 * c - 1).clamp(0, 1), torch.zeros_like(c)], -1)
    alpha = 0.55 * c.unsqueeze(-1)
    return (rgb * (1 - alpha) + heat * alpha).clamp(0, 1)


@register
class GradCamFailures(Check[GradCamMeasurement]):
    id = "gradcam"
    title = "Grad-CAM on confident failures"
    stage = Stage.CAPACITY
    description = (
        "Grad-CAM maps of the most confidently wrong val examples (predicted and true class) "
        "overlaid on the images, and how much of the map falls on the border vs the centre, per "
        "failure cluster or class, against correctly classified examples."
    )
    needs = ("model", "datasets")
    hypotheses = ()
    measurement_type = GradCamMeasurement
    thresholds_type = GradCamThresholds
    settings_type = GradCamSettings

    shrinkable = (Knob("failures", 32), Knob("reference", 32))

    def cost(self, size: CaseSize) -> Cost:
        """A gradient (≈ 3 forwards) per failure and reference image, after the collection."""
        n = min(size.sample, size.val_n)
        st = self.settings
        return Cost(
            forward_items=3 * min(st.failures + st.reference, n),
            shared=(SharedCost(f"collection@{n}", forward_items=n),),
        )

    def measure(self, ctx, progress) -> GradCamMeasurement:
        import numpy as np
        import torch

        from detective.analysis.collect import collect
        model = ctx.model()
        col = collect(ctx, "val", progress.span(0.0, 0.3))
        failed = np.flatnonzero(~col.correct)
        empty = GradCamMeasurement("", len(failed), 0, 0, 0.0, 0.0, None, None, None, (), "", "")
        if len(failed) < self.settings.min_failures:
            return _replace(empty, reason=f"only {len(failed)} val failure(s)")
        probe_x, _, _ = ctx.tensors("val", [int(col.index[failed[0]])])
        found = cam_layer(model, probe_x)
        if found is None:
            return _replace(empty, reason="the model has no spatial feature map to attribute")
        name, layer = found
        order = failed[np.argsort(-col.confidence[failed], kind="stable")][: self.settings.failures]
        ok = np.flatnonzero(col.correct)
        rng = np.random.default_rng(ctx.options.seed)
        ref = np.sort(rng.choice(ok, size=min(self.settings.reference, len(ok)), replace=False))
        fail_idx = [int(i) for i in col.index[order]]
        ref_idx = [int(i) for i in col.index[ref]]
        xf, yf, kept_f = ctx.tensors("val", fail_idx)
        pos = {d: r for r, d in zip(order, col.index[order], strict=True)}
        pred_f = torch.as_tensor(np.array([col.pred[pos[i]] for i in kept_f]), device=xf.device)
        progress.update(0.35, message="Grad-CAM for the predicted class")
        cam_pred = gradcam_maps(model, layer, xf, pred_f)
        progress.update(0.55, message="Grad-CAM for the true class")
        n_show = min(self.settings.gallery, len(kept_f))
        cam_true = gradcam_maps(model, layer, xf, yf)
        shares_f = shares_per_map(cam_pred)
        shares_t = shares_per_map(cam_true)
        ref_shares = None
        if ref_idx:
            xr, yr, _ = ctx.tensors("val", ref_idx)
            progress.update(0.7, message="Grad-CAM for correct examples (reference)")
            ref_shares = mean_shares(shares_per_map(gradcam_maps(model, layer, xr, yr)))
        progress.update(0.85, message="grouping")
        groups, grouping = self._groups(ctx, col, order, kept_f, shares_f)
        masks = region_masks(*xf.shape[-2:])
        area = xf.shape[-1] * xf.shape[-2]
        path, rel = ctx.artifact(self.id, "failures.png")
        from detective.analysis.rawimages import display_images

        disp = torch.stack(display_images(ctx, "val", kept_f[:n_show], xf[:n_show].cpu()))
        images, captions = [], []
        classes = ctx.case.classes
        for j in range(n_show):
            p, t = int(pred_f[j]), int(yf[j])
            images += [disp[j].permute(1, 2, 0).numpy() if disp.shape[1] == 3
                       else disp[j, 0].numpy(),
                       overlay(disp[j], cam_pred[j].cpu()).numpy(),
                       overlay(disp[j], cam_true[j].cpu()).numpy()]
            captions += [f"#{kept_f[j]} true {classes[t]}"[:18],
                         f"CAM pred {classes[p]}"[:18], f"CAM true {classes[t]}"[:18]]
        from detective.analysis.pngplots import image_grid

        image_grid(images, captions, columns=6).save(path)
        progress.update(1.0)
        return GradCamMeasurement(
            layer=name,
            failures=len(failed),
            measured=len(kept_f),
            reference=len(ref_idx),
            border_area=float(masks["border"].sum()) / area,
            corner_area=float(masks["top-left"].sum()) / area,
            failure_shares=mean_shares(shares_f),
            reference_shares=ref_shares,
            true_class_shares=mean_shares(shares_t),
            groups=tuple(groups),
            grouping=grouping,
            grid=rel,
        )

    def _groups(self, ctx, col, order, kept, shares) -> tuple[list[GroupShares], str]:  # noqa: ANN001
        """Per failure cluster (failure_clusters' clusters of the same collection) when
        clustering finds clusters, else per true class."""
        import numpy as np
        import torch

        row_of = {int(d): i for i, d in enumerate(kept)}
        groups: list[GroupShares] = []
        try:
            from detective.analysis.clusters import ClusterSettings, cluster_collection

            # failure_clusters' own clustering (same collection, its default settings): the
            # cluster ids here are the ids in its table and in the reviews.
            clustering = cluster_collection(col, ClusterSettings(seed=ctx.options.seed))
            for c in clustering.clusters:
                rows = [row_of[int(m)] for m in c.members if int(m) in row_of]
                if rows:
                    groups.append(GroupShares(f"cluster {c.rank} ({c.id})", len(rows),
                                              mean_shares(shares, torch.tensor(rows))))
            if groups:
                return groups, "clusters"
        except ImportError:
            pass
        labels = np.array([col.label[np.flatnonzero(col.index == d)[0]] for d in kept])
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            groups.append(GroupShares(f"class {ctx.case.classes[int(c)]}", len(rows),
                                      mean_shares(shares, torch.as_tensor(rows))))
        return groups, "classes"

    def judge(self, m: GradCamMeasurement) -> Finding:
        th = self.thresholds
        if m.failure_shares is None:
            return Finding(self.id, Verdict.NOT_APPLICABLE, f"Nothing to attribute: {m.reason}.")
        f, r = m.failure_shares, m.reference_shares
        ref_border = r.border if r is not None else m.border_area
        corners = {k: f.get(k) for k in REGIONS[2:]}
        top_corner = max(corners, key=lambda k: -1 if math.isnan(corners[k]) else corners[k])
        metrics = (
            Metric("failures' Grad-CAM mass on the border", f.border, "share",
                   f"border band = {m.border_area:.0%} of the image"),
            Metric("correct examples' Grad-CAM mass on the border", ref_border, "share"),
            Metric("failures' Grad-CAM mass in the centre", f.centre, "share"),
            Metric(f"failures' Grad-CAM mass in the {top_corner} corner", corners[top_corner],
                   "share", f"corner square = {m.corner_area:.0%} of the image"),
            Metric("failures measured", m.measured),
        )
        header = ("group", "failures", *REGIONS)

        def row(name: str, n: int, s: RegionShares) -> tuple:
            return (name, n, *(round(s.get(k), 3) for k in REGIONS))

        rows = [row("all failures (predicted class)", m.measured, f)]
        if m.true_class_shares is not None:
            rows.append(row("all failures (true class)", m.measured, m.true_class_shares))
        if r is not None:
            rows.append(row("correct examples (reference)", m.reference, r))
        rows += [row(g.group, g.size, g.shares) for g in m.groups]
        table = Table(f"share of Grad-CAM mass per region (layer {m.layer}; per {m.grouping})",
                      header, tuple(rows))
        caption = (
            "image · CAM for the predicted class · CAM for the true class, most confident "
            "failures first"
        )
        art = (
            (Artifact("failures", m.grid, caption, kind=ArtifactKind.OVERLAY),) if m.grid else ()
        )
        worst = max(m.groups, key=lambda g: -1 if math.isnan(g.shares.border) else
                    g.shares.border, default=None)
        excess = f.border - ref_border
        corner = corners[top_corner]
        ref_corner = r.get(top_corner) if r is not None else m.corner_area
        if corner > th.corner_factor * m.corner_area and corner - ref_corner > th.corner_excess:
            return Finding(
                self.id,
                Verdict.WARN,
                f"On its confident failures the model looks at the {top_corner} corner: "
                f"{corner:.0%} of the Grad-CAM mass falls on a square covering "
                f"{m.corner_area:.0%} of the image, vs {ref_corner:.0%} on correct examples.",
                metrics=metrics, tables=(table,), artifacts=art,
                next_step="Look at the grid: a marker, watermark or background the model keys "
                "on is a shortcut; crop it away or balance it across classes.",
            )
        if excess > th.border_excess and f.border > 1.5 * m.border_area:
            return Finding(
                self.id,
                Verdict.WARN,
                f"On its confident failures the model looks at the image border: "
                f"{f.border:.0%} of the Grad-CAM mass falls on a band covering {m.border_area:.0%}"
                f" of the image, vs {ref_border:.0%} on correct examples"
                + (f" (worst: {worst.group}, {worst.shares.border:.0%})" if worst else "")
                + f"; the {top_corner} corner alone holds {corners[top_corner]:.0%}.",
                metrics=metrics, tables=(table,), artifacts=art,
                next_step="Look at the grid: a marker, watermark or background the model keys "
                "on is a shortcut; crop it away or balance it across classes.",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            f"Failures' Grad-CAM mass sits where correct examples' does: border {f.border:.0%} "
            f"vs {ref_border:.0%} (band = {m.border_area:.0%} of the image), centre "
            f"{f.centre:.0%}.",
            metrics=metrics, tables=(table,), artifacts=art,
        )


def _replace(m: GradCamMeasurement, **kw: object) -> GradCamMeasurement:
    from dataclasses import replace

    return replace(m, **kw)
