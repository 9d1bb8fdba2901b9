"""The batch as the model sees it: a captioned grid of real training inputs after all transforms,
de-normalized with the declared NORMALIZATION, beside the same images raw."""

from __future__ import annotations

from dataclasses import dataclass

from detective.core.findings import Artifact, ArtifactKind, Finding, Metric, Verdict
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

TILE = 72  # pixels per tile side in the PNG


@dataclass(frozen=True)
class BatchThresholds:
    blank_share: float = 0.5  # the batch "looks blank" when this share of its images does


@dataclass(frozen=True)
class BatchSettings:
    """How much visualize_batch measures (read by measure only)."""

    images: int = 32
    blank_std: float = 1e-3  # an image whose pixel std is below this shows nothing


@dataclass(frozen=True)
class BatchMeasurement:
    images: int
    indices: tuple[int, ...]
    labels: tuple[str, ...]
    blank_images: int
    pixel_range: tuple[float, float]  # after de-normalization
    denormalized: bool
    grid: str  # artifact paths relative to the session's artifact folder ("" when not written)
    raw_grid: str
    problems: tuple[str, ...]


@register
class VisualizeBatch(Check[BatchMeasurement]):
    id = "visualize_batch"
    title = "Batch as the model sees it"
    stage = Stage.PIPELINE
    description = (
        "A grid of real training inputs after all transforms, de-normalized with the declared "
        "NORMALIZATION and captioned with class names, beside the raw images: look before "
        "blaming the model."
    )
    needs = ("model", "datasets")
    hypotheses = ()
    measurement_type = BatchMeasurement
    thresholds_type = BatchThresholds
    settings_type = BatchSettings

    def measure(self, ctx, progress) -> BatchMeasurement:
        import torch

        from detective.analysis.imageprops import denormalize
        from detective.analysis.pngplots import image_grid
        from detective.analysis.rawimages import resized, to_unit_tensor
        indices = ctx.sample_indices("train", min(ctx.options.sample, self.settings.images))
        xs, ids, ys = [], [], []
        for batch in ctx.batches("train", indices, progress=progress.span(0, 0.6)):
            xs.append(batch.x.cpu())
            ids.extend(batch.indices.tolist())
            ys.extend(batch.y.tolist())
        problems = [
            f"train item {i}: {why}"
            for i, why in sorted(ctx.item_problems.get("train", {}).items())
            if i in set(indices)
        ]
        if not xs:
            return BatchMeasurement(0, (), (), 0, (0.0, 0.0), False, "", "", tuple(problems))
        x = torch.cat(xs).float()
        norm = ctx.case.normalization
        px = denormalize(x, norm)
        denormalized = norm is not None and len(norm.mean) == x.shape[1]
        blank = int((px.flatten(1).std(1) < self.settings.blank_std).sum())
        lo, hi = float(px.min()), float(px.max())
        names = tuple(ctx.case.classes[y] for y in ys)
        progress.update(0.7, None, "drawing the grid")
        path, rel = ctx.artifact(self.id, "batch.png")
        image_grid(list(_displayable(px)), [n[:12] for n in names], cell=TILE).save(path)
        raw_rel = ""
        if ctx.case.has("raw_datasets"):
            raw = ctx.raw_dataset("train")
            tiles = []
            for i in ids:
                try:
                    tiles.append(resized(_rgb(to_unit_tensor(raw[i][0])), px.shape[-1]))
                except Exception as e:  # one unreadable raw image leaves a black tile
                    problems.append(f"raw train item {i}: {type(e).__name__}: {e}")
                    tiles.append(torch.zeros(3, px.shape[-2], px.shape[-1]))
            raw_path, raw_rel = ctx.artifact(self.id, "raw.png")
            tiles = [t.clamp(0, 1) for t in tiles]
            image_grid(tiles, [n[:12] for n in names], cell=TILE).save(raw_path)
        progress.update(1.0)
        return BatchMeasurement(
            images=len(ids),
            indices=tuple(ids),
            labels=names,
            blank_images=blank,
            pixel_range=(round(lo, 4), round(hi, 4)),
            denormalized=denormalized,
            grid=rel,
            raw_grid=raw_rel,
            problems=tuple(problems[:20]),
        )

    def judge(self, m: BatchMeasurement) -> Finding:
        th = self.thresholds
        if not m.images:
            return Finding(
                self.id,
                Verdict.ERROR,
                "No training item could be read.",
                notes=m.problems,
                error="\n".join(m.problems),
            )
        artifacts = [
            Artifact(
                "batch",
                m.grid,
                f"{m.images} training inputs after all transforms"
                + (", de-normalized with the declared NORMALIZATION" if m.denormalized else ""),
                kind=ArtifactKind.GALLERY,
            )
        ]
        if m.raw_grid:
            artifacts.append(Artifact(
                    "raw",
                    m.raw_grid,
                    "the same images from raw_datasets()",
                    kind=ArtifactKind.GALLERY,
                ))
        metrics = (
            Metric("images shown", m.images),
            Metric("blank images", m.blank_images),
            Metric("min pixel (de-normalized)", m.pixel_range[0]),
            Metric("max pixel (de-normalized)", m.pixel_range[1]),
        )
        notes = list(m.problems)
        if not m.denormalized:
            notes.append("No usable NORMALIZATION declared: tiles are shown min-max scaled.")
        if m.blank_images >= th.blank_share * m.images:
            return Finding(
                self.id,
                Verdict.WARN,
                f"{m.blank_images} of {m.images} training inputs are blank (constant): the "
                "transforms may erase the images (a crop outside the object, a wrong scale).",
                metrics=metrics,
                artifacts=tuple(artifacts),
                notes=tuple(notes),
                next_step="Open the grid, then check the training transform step by step.",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            f"{m.images} training inputs drawn as the model sees them"
            + (" beside the raw images" if m.raw_grid else "")
            + f" (de-normalized range [{m.pixel_range[0]:.2f}, {m.pixel_range[1]:.2f}]).",
            metrics=metrics,
            artifacts=tuple(artifacts),
            notes=tuple(notes),
        )


def _rgb(x):  # noqa: ANN001, ANN202
    """[C, H, W] → 3 channels for display (grey repeated, alpha dropped)."""
    if x.shape[0] == 1:
        return x.expand(3, -1, -1)
    return x[:3] if x.shape[0] >= 3 else x[:1].expand(3, -1, -1)


def _displayable(px):  # noqa: ANN001, ANN202
    """[B, C, H, W] in about [0, 1] → RGB in [0, 1]; min-max scaled when far outside [0, 1]."""
    import torch

    if float(px.min()) < -0.5 or float(px.max()) > 1.5:
        lo = px.flatten(1).min(1).values.view(-1, 1, 1, 1)
        hi = px.flatten(1).max(1).values.view(-1, 1, 1, 1)
        px = (px - lo) / (hi - lo).clamp_min(1e-6)
    return torch.stack([_rgb(t) for t in px]).clamp(0, 1)
