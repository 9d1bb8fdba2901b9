"""Robustness sweep: accuracy under ImageNet-C-style perturbations and a small FGSM attack.

The unchanged model (eval mode) is evaluated on a bounded val sample under five severities of
darkening, brightening, contrast loss, blur, Gaussian noise and rotation
(detective.analysis.perturb),
applied in pixel space: de-normalized with the declared NORMALIZATION, perturbed, clamped to
[0, 1], re-normalized. A synthetic curve alone says little (every model breaks somewhere), so each
severity of a perturbation that moves a measured property (brightness, contrast, sharpness) is
mapped to the property value it produces, and compared with the ranges the train and val images
actually have: only a collapse at a level that a real share of val images already has is a
finding, stronger when train lacks that level and when the real val images at that level are
indeed misclassified more. FGSM (one signed gradient per batch, on a private copy of the model)
is reported as evidence of fragility but supports no hypothesis by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detective.analysis.perturb import PERTURBATIONS, Tail
from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import (
    Artifact,
    Effect,
    Finding,
    Metric,
    Strength,
    Table,
    Verdict,
    supports,
)
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class RobustnessThresholds:
    drop: float = 0.25  # accuracy falling by this much (absolute) below clean is a collapse
    min_clean_accuracy: float = 0.5  # below it, the model is broken already: no sweep finding
    min_val_share: float = 0.10  # the collapse level is held by at least this share of val images
    max_train_share: float = 0.02  # … and by at most this share of train images: a shift
    min_tail: int = 20  # real val images at the collapse level needed to check them directly
    tail_gap: float = 0.15  # their accuracy below the rest's by this much corroborates
    slice_gap: float = 0.30  # … by this much, and they are a slice that fails (moderate)


@dataclass(frozen=True)
class RobustnessSettings:
    """How much robustness_sweep measures (read by measure only)."""

    sample: int = 512  # val images swept (at most --sample)
    train_sample: int = 512  # train images whose property ranges are measured
    fgsm_eps: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)  # pixel units


@dataclass(frozen=True)
class Curve:
    """One perturbation: accuracy at severities 0..5 and, when it moves a property, where each
    severity 1..5 lands within the data's own property ranges."""

    perturbation: str
    unit: str
    levels: tuple[float, ...]  # parameter at severities 1..5
    accuracy: tuple[float, ...]  # severities 0..5 (0 = the images as given)
    prop: str = ""  # "" when no measured property follows the perturbation
    tail: str = ""  # "low" | "high": the end of the property's range it pushes towards
    prop_value: tuple[float, ...] = ()  # median property of the perturbed sample, severity 1..5
    val_share: tuple[float, ...] = ()  # share of clean val images at or beyond that value
    train_share: tuple[float, ...] = ()  # share of train images at or beyond it
    tail_n: tuple[int, ...] = ()  # clean val images at or beyond it …
    tail_accuracy: tuple[float, ...] = ()  # … their accuracy as given …
    rest_accuracy: tuple[float, ...] = ()  # … and the other val images' accuracy


@dataclass(frozen=True)
class FgsmPoint:
    eps: float  # pixel units (1/255 = one grey level)
    accuracy: float


@dataclass(frozen=True)
class RobustnessMeasurement:
    images: int  # val images swept
    train_images: int  # train images whose properties were measured
    pixel_space: bool  # perturbed de-normalized pixels (False: the tensors as given)
    clamp: tuple[float, float]  # the valid range perturbed values are clamped to
    clean_accuracy: float
    curves: tuple[Curve, ...]
    fgsm: tuple[FgsmPoint, ...]
    plot: str  # artifact path, "" when none
    reason: str = ""  # why nothing was measured


@dataclass(frozen=True)
class _Collapse:
    curve: Curve
    severity: int  # 1..5
    drop: float
    val_share: float
    train_share: float
    tail_n: int
    tail_accuracy: float
    rest_accuracy: float


def _share(values: np.ndarray, bound: float, tail: str) -> float:
    if not len(values):
        return math.nan
    beyond = values <= bound if tail == Tail.LOW else values >= bound
    return float(beyond.mean())


@register
class RobustnessSweep(Check[RobustnessMeasurement]):
    id = "robustness_sweep"
    title = "Robustness sweep (perturbations, FGSM)"
    stage = Stage.CAPACITY
    description = (
        "Accuracy of the unchanged model on a val sample under increasing brightness, contrast, "
        "blur, noise and rotation perturbations and a small FGSM attack; flags a collapse only "
        "at a severity whose brightness, contrast or sharpness real val images already have."
    )
    needs = ("model", "datasets")
    hypotheses = ("distribution_shift", "slice_failure")
    measurement_type = RobustnessMeasurement
    thresholds_type = RobustnessThresholds
    settings_type = RobustnessSettings

    shrinkable = (Knob("sample", 128), Knob("train_sample", 128))

    def cost(self, size: CaseSize) -> Cost:
        """Per val item: the clean pass, 5 severities of each perturbation, and FGSM (one
        gradient, ≈ 3 forwards, then one forward per ε); train items are only loaded."""
        from detective.analysis.perturb import PERTURBATIONS

        st = self.settings
        val = min(st.sample, size.sample, size.val_n)
        train = min(st.train_sample, size.sample, size.train_n)
        eps = len(st.fgsm_eps)
        per_item = 1 + 5 * len(PERTURBATIONS) + (3 + eps if eps else 0)
        return Cost(forward_items=val * per_item + train)

    def measure(self, ctx, progress) -> RobustnessMeasurement:  # noqa: ANN001
        import numpy as np
        import torch

        from detective.analysis.imageprops import PROPERTIES, denormalize, tensor_properties
        from detective.analysis.perturb import apply, fgsm_sign
        from detective.analysis.torchutil import few_cpu_threads

        st = self.settings
        model = ctx.model()  # eval mode, shared: only read
        norm = ctx.case.normalization

        # 1. Property ranges of train (what the model saw, augmentation included).
        train_props: dict[str, list[np.ndarray]] = {p: [] for p in PROPERTIES}
        lo, hi = math.inf, -math.inf
        train_n = 0
        pixel_space: bool | None = None
        if ctx.has_split("train"):
            idx = ctx.sample_indices("train", min(st.train_sample, ctx.options.sample))
            for b in ctx.batches("train", idx, progress=progress.span(0.0, 0.15)):
                pixel_space = _pixel_space(norm, b.x)
                props = tensor_properties(b.x, norm if pixel_space else None)
                for p in PROPERTIES:
                    train_props[p].append(getattr(props, p))
                lo, hi = min(lo, float(b.x.min())), max(hi, float(b.x.max()))
                train_n += len(b.y)
        train = {p: np.concatenate(v) if v else np.zeros(0) for p, v in train_props.items()}

        # 2. The sweep on val, streamed: every perturbation and severity per batch.
        idx = ctx.sample_indices("val", min(st.sample, ctx.options.sample))
        gen = torch.Generator().manual_seed(ctx.options.seed)
        attacker: torch.nn.Module | None = None
        n = 0
        clean_ok: list[np.ndarray] = []
        clean_props: dict[str, list[np.ndarray]] = {p: [] for p in PROPERTIES}
        correct = np.zeros((len(PERTURBATIONS), 6))
        pert_props: dict[tuple[int, int], list[np.ndarray]] = {}
        fgsm_correct = np.zeros(len(st.fgsm_eps))
        for b in ctx.batches("val", idx, progress=progress.span(0.15, 1.0)):
            if pixel_space is None:
                pixel_space = _pixel_space(norm, b.x)
            if not math.isfinite(lo):  # no train split: the range of the val images as given
                lo, hi = float(b.x.min()), float(b.x.max())
            if pixel_space:
                lo, hi = 0.0, 1.0
            # A tiny model's forwards on CPU lose to intra-op thread synchronisation on a
            # busy machine (demo sweep: 2 s → 10-14 s); one thread then, restored after.
            with few_cpu_threads(model, b.x):
                with torch.no_grad():
                    ok = (model(b.x).argmax(1) == b.y).cpu().numpy()
                clean_ok.append(ok)
                px = denormalize(b.x.float(), norm) if pixel_space else b.x.float()
                props = tensor_properties(px)
                for p in PROPERTIES:
                    clean_props[p].append(getattr(props, p))
                for i, pert in enumerate(PERTURBATIONS):
                    correct[i, 0] += ok.sum()
                    for s, level in enumerate(pert.levels, start=1):
                        out = apply(pert, level, px, lo, hi, gen)
                        with torch.no_grad():
                            pred = model(_renormalize(out, norm) if pixel_space else out).argmax(1)
                        correct[i, s] += float((pred == b.y).sum())
                        if pert.prop:
                            value = getattr(tensor_properties(out), pert.prop)
                            pert_props.setdefault((i, s), []).append(value)
                    progress.check_cancelled()
                if st.fgsm_eps:
                    if attacker is None:  # a private copy: the user's model never sees a gradient
                        attacker = ctx.model_copy().eval()
                        for param in attacker.parameters():
                            param.requires_grad_(False)
                    sign = fgsm_sign(attacker, b.x, b.y)
                    for j, eps in enumerate(st.fgsm_eps):
                        adv = (px + eps * (hi - lo) * sign).clamp(lo, hi)
                        with torch.no_grad():
                            pred = model(_renormalize(adv, norm) if pixel_space else adv).argmax(1)
                        fgsm_correct[j] += float((pred == b.y).sum())
            n += len(b.y)
        if not n:
            return RobustnessMeasurement(0, train_n, bool(pixel_space), (0.0, 0.0), math.nan,
                                         (), (), "", reason="no usable val image in the sample")
        ok_all = np.concatenate(clean_ok)
        val = {p: np.concatenate(v) for p, v in clean_props.items()}
        curves = []
        for i, pert in enumerate(PERTURBATIONS):
            acc = tuple(float(c / n) for c in correct[i])
            if not pert.prop:
                curves.append(Curve(pert.name, pert.unit, pert.levels, acc))
                continue
            values, vshare, tshare, tail_n, tail_acc, rest_acc = [], [], [], [], [], []
            for s in range(1, len(pert.levels) + 1):
                v = float(np.median(np.concatenate(pert_props[(i, s)])))
                beyond = (val[pert.prop] <= v) if pert.tail == Tail.LOW else (val[pert.prop] >= v)
                values.append(v)
                vshare.append(float(beyond.mean()))
                tshare.append(_share(train[pert.prop], v, pert.tail))
                tail_n.append(int(beyond.sum()))
                tail_acc.append(float(ok_all[beyond].mean()) if beyond.any() else math.nan)
                rest_acc.append(float(ok_all[~beyond].mean()) if (~beyond).any() else math.nan)
            curves.append(Curve(pert.name, pert.unit, pert.levels, acc, pert.prop,
                                pert.tail.value, tuple(values), tuple(vshare), tuple(tshare),
                                tuple(tail_n), tuple(tail_acc), tuple(rest_acc)))
        path, rel = ctx.artifact(self.id, "curves.png")
        _plot(path, curves, pixel_space=bool(pixel_space))
        return RobustnessMeasurement(
            images=n,
            train_images=train_n,
            pixel_space=bool(pixel_space),
            clamp=(lo, hi),
            clean_accuracy=float(ok_all.mean()),
            curves=tuple(curves),
            fgsm=tuple(FgsmPoint(e, float(c / n)) for e, c in zip(st.fgsm_eps, fgsm_correct,
                                                                   strict=True)),
            plot=rel,
        )

    def _collapses(self, m: RobustnessMeasurement) -> tuple[list[_Collapse], list[str]]:
        """Per mapped curve, the first severity whose accuracy drop counts as a collapse and
        whose property value a real share of val images has; and, for the notes, collapses at
        levels outside the data's range."""
        th = self.thresholds
        found, outside = [], []
        for c in m.curves:
            for s in range(1, len(c.accuracy)):
                drop = m.clean_accuracy - c.accuracy[s]
                if drop < th.drop:
                    continue
                if not c.prop:
                    outside.append(f"{c.perturbation} {s} (accuracy {c.accuracy[s]:.0%}; no "
                                   "measured property to compare it with the data)")
                    break
                k = s - 1
                if c.val_share[k] >= th.min_val_share:
                    found.append(_Collapse(c, s, drop, c.val_share[k], c.train_share[k],
                                           c.tail_n[k], c.tail_accuracy[k], c.rest_accuracy[k]))
                    break
                outside.append(f"{c.perturbation} {s} (accuracy {c.accuracy[s]:.0%} at "
                               f"{c.prop} {c.prop_value[k]:.3g}, held by {c.val_share[k]:.0%} "
                               "of val images)")
                break
        return found, outside

    def judge(self, m: RobustnessMeasurement) -> Finding:
        th = self.thresholds
        if not m.images:
            return Finding(self.id, Verdict.NOT_APPLICABLE, f"Nothing swept: {m.reason}.")
        space = ("de-normalized pixels, clamped to [0, 1]" if m.pixel_space else
                 f"the tensors as given (no usable NORMALIZATION), clamped to "
                 f"[{m.clamp[0]:.3g}, {m.clamp[1]:.3g}]")
        notes = [f"Perturbations applied to {space}; the model is used unchanged in eval mode, "
                 "FGSM gradients come from a private copy."]
        header = ("perturbation", "parameter", *(f"sev {s}" for s in range(6)))
        rows = tuple(
            (c.perturbation, c.unit, *(round(a, 3) for a in c.accuracy)) for c in m.curves
        )
        tables = [Table(f"accuracy under perturbation ({m.images} val images)", header, rows)]
        range_rows = tuple(
            (c.perturbation, c.prop, s, round(c.prop_value[s - 1], 4),
             round(c.val_share[s - 1], 3), _r(c.train_share[s - 1]), c.tail_n[s - 1],
             _r(c.tail_accuracy[s - 1]), round(c.accuracy[s], 3))
            for c in m.curves if c.prop for s in range(1, len(c.accuracy))
        )
        tables.append(Table(
            "where each severity lands in the data's own property range",
            ("perturbation", "property", "severity", "value", "val share at/beyond",
             "train share at/beyond", "val images there", "their accuracy", "swept accuracy"),
            range_rows,
        ))
        if m.fgsm:
            tables.append(Table("FGSM (one signed-gradient step, pixel units)",
                                ("eps", "eps (grey levels)", "accuracy"),
                                tuple((round(p.eps, 5), round(p.eps * 255, 2),
                                       round(p.accuracy, 3)) for p in m.fgsm)))
        metrics = [Metric("clean accuracy (sample)", m.clean_accuracy, "share"),
                   Metric("val images swept", m.images)]
        for c in m.curves:
            metrics.append(Metric(f"accuracy at {c.perturbation} severity 5", c.accuracy[-1],
                                  "share"))
        for p in m.fgsm:
            metrics.append(Metric(f"FGSM accuracy at eps {p.eps * 255:g}/255", p.accuracy,
                                  "share", "evidence of fragility; supports no hypothesis alone"))
        arts = (Artifact("curves", m.plot, "accuracy vs severity, one line per perturbation"),
                ) if m.plot else ()
        if m.clean_accuracy < th.min_clean_accuracy:
            return Finding(
                self.id, Verdict.PASS,
                f"Clean accuracy on the sample is {m.clean_accuracy:.0%}, below "
                f"{th.min_clean_accuracy:.0%}: the model is broken before any perturbation, so "
                "the sweep is reported but not judged.",
                metrics=tuple(metrics), tables=tuple(tables), artifacts=arts, notes=tuple(notes),
            )
        found, outside = self._collapses(m)
        if outside:
            notes.append("Collapses at levels the data does not contain (not flagged): "
                          + "; ".join(outside) + ".")
        effects: list[Effect] = []
        parts = []
        for f in found:
            c = f.curve
            k = f.severity - 1
            rare = f.train_share <= th.max_train_share
            tail_checked = f.tail_n >= th.min_tail and math.isfinite(f.tail_accuracy)
            gap = f.rest_accuracy - f.tail_accuracy if tail_checked else math.nan
            corroborated = tail_checked and gap >= th.tail_gap
            what = (
                f"accuracy falls from {m.clean_accuracy:.0%} to {c.accuracy[f.severity]:.0%} at "
                f"{c.perturbation} severity {f.severity} ({c.prop} {c.prop_value[k]:.3g}), a level "
                f"{f.val_share:.0%} of val images already have"
                + (f" but only {f.train_share:.1%} of train images" if rare else
                   f" and {f.train_share:.0%} of train images")
                + (f"; those val images score {f.tail_accuracy:.0%} as given vs "
                   f"{f.rest_accuracy:.0%} for the rest" if tail_checked else "")
            )
            if not rare and not corroborated:
                # Train holds such images and the real ones are not worse off: the synthetic
                # perturbation, not the data, breaks the model.
                notes.append(f"Within the data's range but not flagged: {what}.")
                continue
            parts.append(what)
            metrics += [
                Metric(f"{c.perturbation}: collapse severity", f.severity),
                Metric(f"{c.perturbation}: accuracy drop at collapse", f.drop, "share"),
                Metric(f"{c.perturbation}: val share at that {c.prop}", f.val_share, "share"),
                Metric(f"{c.perturbation}: train share at that {c.prop}", f.train_share, "share"),
            ]
            if tail_checked:
                metrics.append(Metric(f"{c.perturbation}: real val images there, accuracy gap",
                                      gap, "share"))
            if rare:
                # Val holds conditions train lacks and the model breaks there: strong when the
                # real val images at that level fail too, weak when they demonstrably do not.
                strength = (Strength.STRONG if corroborated else
                            Strength.WEAK if tail_checked else Strength.MODERATE)
                effects.append(supports("distribution_shift", strength, what))
            if tail_checked and gap >= th.slice_gap:
                effects.append(supports("slice_failure", Strength.MODERATE, what))
        if not parts:
            worst = min(m.curves, key=lambda c: c.accuracy[-1], default=None)
            tail = (f" (lowest: {worst.perturbation} severity 5, {worst.accuracy[-1]:.0%})"
                    if worst else "")
            return Finding(
                self.id, Verdict.PASS,
                f"No accuracy collapse at brightness, contrast or sharpness levels that val "
                f"images have and train lacks or fails on: clean {m.clean_accuracy:.0%}{tail}.",
                metrics=tuple(metrics), tables=tuple(tables), artifacts=arts, notes=tuple(notes),
            )
        effects = _strongest_per_hypothesis(effects)
        return self.finding(
            "The model collapses at image conditions its own val data contains: "
            + "; ".join(parts) + ".",
            metrics=tuple(metrics), tables=tuple(tables), artifacts=arts, effects=tuple(effects),
            notes=tuple(notes),
            next_step="Look at the val images at that level; add such images (or a matching "
            "augmentation, e.g. ColorJitter / GaussianBlur) to training, or fix the capture "
            "pipeline that produces them.",
            concern=True,
        )


def _strongest_per_hypothesis(effects: list[Effect]) -> list[Effect]:
    best: dict[str, Effect] = {}
    for e in effects:
        if e.hypothesis not in best or e.strength.weight > best[e.hypothesis].strength.weight:
            best[e.hypothesis] = e
    return list(best.values())


def _r(v: float) -> float | None:
    return round(v, 3) if math.isfinite(v) else None


def _pixel_space(norm, x) -> bool:  # noqa: ANN001
    return norm is not None and len(norm.mean) == x.shape[1]


def _renormalize(px, norm):  # noqa: ANN001, ANN202
    mean = px.new_tensor(norm.mean).view(1, -1, 1, 1)
    std = px.new_tensor(norm.std).view(1, -1, 1, 1)
    return (px - mean) / std


def _plot(path, curves: list[Curve], *, pixel_space: bool) -> None:  # noqa: ANN001
    from detective.analysis.learning.plots import line_plot

    line_plot(
        path,
        [(c.perturbation, list(range(len(c.accuracy))), list(c.accuracy)) for c in curves],
        title="accuracy under perturbation" + ("" if pixel_space else " (tensors as given)"),
        xlabel="severity (0 = as given)",
        ylabel="accuracy",
    )

