"""Train/inference parity: the same raw image through the train-time (augmentation off) and the
eval-time transform must give the same tensor, and the model the same prediction."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.core.budget import READ_OPS, CaseSize, Cost, Knob
from detective.core.findings import Finding, Metric, Strength, Table, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class ParityThresholds:
    max_mean_shift: float = 0.2  # |mean_eval - mean_train| in units of the train std, per channel
    max_std_ratio: float = 1.2  # std_eval / std_train (or its inverse)
    max_disagreement: float = 0.01  # share of images whose prediction flips beyond this matters
    # Same statistics but worse predictions (a crop, a resize, an interpolation): the eval transform
    # must lose this much accuracy, and significantly so (exact McNemar on the paired predictions).
    min_accuracy_lost: float = 0.02
    alpha: float = 0.01


@dataclass(frozen=True)
class ParitySettings:
    """How much preprocessing_parity measures (read by measure only)."""

    sample: int = 256


@dataclass(frozen=True)
class ChannelStats:
    channel: int
    train_mean: float
    train_std: float
    eval_mean: float
    eval_std: float


@dataclass(frozen=True)
class ParityMeasurement:
    images: int
    augmentation_removed: bool
    train_shape: tuple[int, ...]
    eval_shape: tuple[int, ...]
    channels: tuple[ChannelStats, ...]
    train_range: tuple[float, float]
    eval_range: tuple[float, float]
    channel_swap_fits_better: bool
    prediction_disagreement: float
    train_tf_accuracy: float
    eval_tf_accuracy: float
    problems: tuple[str, ...]
    # Paired predictions: right only under the train-time transform / only under the eval one.
    train_only_correct: int = 0
    eval_only_correct: int = 0


@register
class PreprocessingParity(Check[ParityMeasurement]):
    id = "preprocessing_parity"
    title = "Train/inference preprocessing parity"
    stage = Stage.PIPELINE
    description = (
        "Runs the same raw val images through the training transform (augmentation switched off) "
        "and the eval transform; compares shape, value range, per-channel statistics, channel "
        "order and the model's predictions on both."
    )
    needs = ("model", "datasets", "raw_datasets", "transforms")
    hypotheses = ("preprocessing_parity",)
    measurement_type = ParityMeasurement
    thresholds_type = ParityThresholds
    settings_type = ParitySettings
    shrinkable = (Knob("sample", 128),)

    def cost(self, size: CaseSize) -> Cost:
        """Each sampled raw val image decoded, through both transforms and both predicted."""
        n = min(size.sample, self.settings.sample, size.val_n)
        return Cost(forward_items=2 * n, host_ops=2 * n * READ_OPS)

    def measure(self, ctx, progress) -> ParityMeasurement:
        import torch

        from detective.analysis.augment import deterministic

        tfs = ctx.case.transforms()
        train_tf, removed = deterministic(tfs["train"])
        eval_tf = tfs["eval"]
        raw = ctx.raw_dataset("val")
        indices = ctx.sample_indices("val", min(ctx.options.sample, self.settings.sample))
        model = ctx.model()
        problems: list[str] = []
        sums = {"t": None, "e": None}
        n_pix = 0
        lo_t = lo_e = math.inf
        hi_t = hi_e = -math.inf
        t_shape: tuple[int, ...] = ()
        e_shape: tuple[int, ...] = ()
        disagree = t_correct = e_correct = count = t_only = e_only = 0
        batch_t, batch_e, labels = [], [], []

        def flush() -> None:
            nonlocal disagree, t_correct, e_correct, count, t_only, e_only
            if not batch_t:
                return
            with torch.no_grad():
                pt = model(torch.stack(batch_t).to(ctx.device)).argmax(1).cpu()
                pe = model(torch.stack(batch_e).to(ctx.device)).argmax(1).cpu()
            y = torch.tensor(labels)
            disagree += int((pt != pe).sum())
            t_correct += int((pt == y).sum())
            e_correct += int((pe == y).sum())
            t_only += int(((pt == y) & (pe != y)).sum())
            e_only += int(((pe == y) & (pt != y)).sum())
            count += len(labels)
            batch_t.clear()
            batch_e.clear()
            labels.clear()

        for n, i in enumerate(indices):
            progress.update(n, len(indices))
            try:
                item = raw[i]  # read once: a raw item may decode a file
                image, label = item[0], int(item[1])
                torch.manual_seed(i)
                xt = train_tf(image)
                xe = eval_tf(image)
            except Exception as e:
                problems.append(f"val item {i}: {type(e).__name__}: {e}")
                continue
            t_shape = t_shape or tuple(xt.shape)
            e_shape = e_shape or tuple(xe.shape)
            if tuple(xt.shape) != t_shape or tuple(xe.shape) != e_shape:
                problems.append(f"val item {i}: shape varies between images")
                continue
            lo_t, hi_t = min(lo_t, float(xt.min())), max(hi_t, float(xt.max()))
            lo_e, hi_e = min(lo_e, float(xe.min())), max(hi_e, float(xe.max()))
            if xt.shape == xe.shape:
                for key, x in (("t", xt), ("e", xe)):
                    flat = x.double().flatten(1)
                    s = torch.stack([flat.sum(1), (flat**2).sum(1)])
                    sums[key] = s if sums[key] is None else sums[key] + s
                n_pix += xt[0].numel()
                batch_t.append(xt.float())
                batch_e.append(xe.float())
                labels.append(label)
                if len(batch_t) >= ctx.case.eval_settings.batch_size:
                    flush()
        flush()
        channels: list[ChannelStats] = []
        swap = False
        if sums["t"] is not None and n_pix:
            mt, me = sums["t"][0] / n_pix, sums["e"][0] / n_pix
            st = (sums["t"][1] / n_pix - mt**2).clamp_min(0).sqrt()
            se = (sums["e"][1] / n_pix - me**2).clamp_min(0).sqrt()
            channels = [
                ChannelStats(c, float(mt[c]), float(st[c]), float(me[c]), float(se[c]))
                for c in range(len(mt))
            ]
            if len(mt) == 3:
                direct = float(((me - mt).abs() / st.clamp_min(1e-6)).sum())
                swapped = float(((me.flip(0) - mt).abs() / st.clamp_min(1e-6)).sum())
                swap = swapped < 0.5 * direct and direct > 0.3
        progress.update(1.0)
        return ParityMeasurement(
            images=count,
            augmentation_removed=removed,
            train_shape=t_shape,
            eval_shape=e_shape,
            channels=tuple(channels),
            train_range=(lo_t if count else 0.0, hi_t if count else 0.0),
            eval_range=(lo_e if count else 0.0, hi_e if count else 0.0),
            channel_swap_fits_better=swap,
            prediction_disagreement=disagree / count if count else 0.0,
            train_tf_accuracy=t_correct / count if count else math.nan,
            eval_tf_accuracy=e_correct / count if count else math.nan,
            problems=tuple(problems[:20]),
            train_only_correct=t_only,
            eval_only_correct=e_only,
        )

    def _accuracy_lost(self, m: ParityMeasurement) -> float | None:
        """McNemar p-value when the eval transform loses accuracy beyond noise, else None."""
        from detective.analysis.paired import mcnemar_exact

        b, c = m.train_only_correct, m.eval_only_correct
        if not m.images or b <= c:
            return None
        if (b - c) / m.images < self.thresholds.min_accuracy_lost:
            return None
        p = mcnemar_exact(b, c, "greater")
        return p if p < self.thresholds.alpha else None

    def judge(self, m: ParityMeasurement) -> Finding:
        th = self.thresholds
        if m.train_shape and m.eval_shape and m.train_shape != m.eval_shape:
            return Finding(
                self.id,
                Verdict.FAIL,
                f"Train-time and eval-time transforms give different shapes: "
                f"{list(m.train_shape)} vs {list(m.eval_shape)}.",
                effects=(
                    supports(
                        "preprocessing_parity",
                        Strength.STRONG,
                        f"shape {list(m.train_shape)} at train time, {list(m.eval_shape)} at eval",
                    ),
                ),
                next_step="Make the eval transform produce the resolution and channels training "
                "uses.",
                notes=m.problems,
            )
        if not m.images:
            return Finding(
                self.id,
                Verdict.ERROR,
                "No raw val image could be transformed.",
                notes=m.problems,
                error="\n".join(m.problems),
            )
        rows = []
        worst_shift, worst_ratio = 0.0, 1.0
        for c in m.channels:
            shift = abs(c.eval_mean - c.train_mean) / max(c.train_std, 1e-6)
            ratio = max(c.eval_std, 1e-6) / max(c.train_std, 1e-6)
            worst_shift = max(worst_shift, shift)
            if abs(math.log(ratio)) > abs(math.log(worst_ratio)):
                worst_ratio = ratio
            rows.append(
                (
                    c.channel,
                    round(c.train_mean, 4),
                    round(c.train_std, 4),
                    round(c.eval_mean, 4),
                    round(c.eval_std, 4),
                    round(shift, 3),
                    round(ratio, 3),
                )
            )
        table = Table(
            "per-channel statistics (train-time vs eval-time transform)",
            (
                "channel",
                "train mean",
                "train std",
                "eval mean",
                "eval std",
                "shift (train σ)",
                "std ratio",
            ),
            tuple(rows),
        )
        drop = m.train_tf_accuracy - m.eval_tf_accuracy
        metrics = (
            Metric("images compared", m.images),
            Metric("max mean shift", worst_shift, "train σ"),
            Metric("std ratio (eval/train)", worst_ratio),
            Metric("prediction disagreement", m.prediction_disagreement, "fraction"),
            Metric("accuracy, train-time transform", m.train_tf_accuracy),
            Metric("accuracy, eval-time transform", m.eval_tf_accuracy),
            Metric("accuracy lost to the eval transform", drop),
        )
        stats_differ = worst_shift > th.max_mean_shift or abs(math.log(worst_ratio)) > math.log(
            th.max_std_ratio
        )
        predictions_differ = m.prediction_disagreement > th.max_disagreement
        notes = list(m.problems)
        geometry = self._accuracy_lost(m)
        if not m.augmentation_removed:
            notes.append(
                "The train transform is not a torchvision Compose; augmentation could not be "
                "switched off, so differences include augmentation noise."
            )
        if stats_differ or m.channel_swap_fits_better:
            what = (
                f"the eval tensors are shifted by {worst_shift:.2f} train σ and scaled by "
                f"{worst_ratio:.2f}× relative to train-time preprocessing"
            )
            if m.channel_swap_fits_better:
                what += "; reversing the channel order (RGB↔BGR) would explain it"
            strong = predictions_differ or drop > 0.01
            effects = [
                supports(
                    "preprocessing_parity",
                    Strength.STRONG if strong else Strength.MODERATE,
                    what + f"; {m.prediction_disagreement:.1%} of predictions change",
                )
            ]
            return Finding(
                self.id,
                Verdict.FAIL if strong else Verdict.WARN,
                f"Eval preprocessing differs from training: {what}; the model changes "
                f"{m.prediction_disagreement:.1%} of its predictions and accuracy moves "
                f"{m.train_tf_accuracy:.1%} → {m.eval_tf_accuracy:.1%}.",
                metrics=metrics,
                tables=(table,),
                effects=tuple(effects),
                notes=tuple(notes),
                next_step="Build the eval transform from the train transform minus augmentation "
                "(same resize, same Normalize constants, same channel order), then re-measure val.",
            )
        if geometry is not None:
            what = (
                f"the same images score {m.train_tf_accuracy:.1%} through the train-time "
                f"transform (augmentation off) and {m.eval_tf_accuracy:.1%} through the eval "
                f"transform ({m.train_only_correct} right only at train time, "
                f"{m.eval_only_correct} only at eval; McNemar p = {geometry:.2g})"
            )
            return Finding(
                self.id,
                Verdict.FAIL,
                f"Eval preprocessing costs accuracy though tensor statistics agree (a crop, a "
                f"resize or an interpolation): {what}.",
                metrics=metrics,
                tables=(table,),
                effects=(supports("preprocessing_parity", Strength.MODERATE, what),),
                notes=tuple(notes),
                next_step="Compare the two transforms' geometry (resize, crop, interpolation) and "
                "build the eval transform from the train transform minus augmentation.",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            f"Train-time and eval-time preprocessing agree (max shift {worst_shift:.2f} σ, std "
            f"ratio "
            f"{worst_ratio:.2f}, {m.prediction_disagreement:.1%} of predictions change).",
            metrics=metrics,
            tables=(table,),
            notes=tuple(notes),
            effects=(
                refutes(
                    "preprocessing_parity",
                    Strength.MODERATE if m.augmentation_removed else Strength.WEAK,
                    "the same image gives the same tensor statistics "
                    "and predictions at train and eval time",
                ),
            ),
        )
