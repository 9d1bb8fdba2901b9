"""Normalization vs what the model expects: the statistics of the tensors the model receives.

Per split, streamed over a bounded sample: per-channel mean, std, min and max of the model's
inputs. The value range is then explained by candidate pipelines (the declared Normalize, none,
[0,255], [0,255] then normalized, normalized twice, ImageNet constants, (x-0.5)/0.5, channels
reversed): the one whose expected range fits the observed range names what the data loader does.
Training inputs that are off are a normalization mismatch; correct training inputs with different
eval inputs are a train/eval parity problem (owned by `preprocessing_parity`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.analysis.channelstats import ChannelMoments, SplitStats, raw_stats
from detective.core.findings import (
    Concern,
    Finding,
    Metric,
    Strength,
    Table,
    Verdict,
    refutes,
    supports,
)
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

DECLARED = "as declared"
NONE = "not normalized, [0, 1]"
RAW255 = "not normalized, [0, 255]"
RAW255_NORM = "[0, 255] then normalized"
TWICE = "normalized twice"
IMAGENET_C = "ImageNet constants"
HALF = "(x - 0.5) / 0.5, [-1, 1]"
REVERSED = "declared, channels reversed (RGB/BGR)"
#: Explanations of training inputs that are wrong whatever the model (the declared constants are
#: in [0, 1] pixel units, see the case format).
GROSS = (RAW255, RAW255_NORM, TWICE, NONE)


@dataclass(frozen=True)
class NormThresholds:
    fit: float = 0.1  # range-fit error under which a candidate explains the inputs
    misfit: float = 0.25  # range-fit error above which the declared normalization does not
    max_shift: float = 0.25  # |mean_val - mean_train| in train σ, per channel
    max_std_ratio: float = 1.25


@dataclass(frozen=True)
class NormSettings:
    """How much normalization measures (read by measure only)."""

    sample: int = 512  # images per split


@dataclass(frozen=True)
class NormMeasurement:
    declared_mean: tuple[float, ...]  # empty when the case declares no NORMALIZATION
    declared_std: tuple[float, ...]
    splits: tuple[SplitStats, ...]
    backbone: str  # a torchvision.models class inside the model ("" when none)
    # The same items' raw images (raw_datasets, [0, 1] pixels, before any transform): whether
    # a train/val difference is in the images themselves or made by the pipeline.
    raw: tuple[SplitStats, ...] = ()


@register
class NormalizationMismatch(Check[NormMeasurement]):
    id = "normalization_mismatch"
    title = "Normalization of the model's inputs"
    stage = Stage.PIPELINE
    description = (
        "Per-channel mean/std and value range of the tensors the model receives, per split, "
        "against ≈0/1, the declared NORMALIZATION and ImageNet statistics; names the pipeline "
        "that explains them ([0,255], none, doubled, other constants, channels swapped)."
    )
    needs = ("model", "datasets")
    hypotheses = ("normalization_mismatch", "preprocessing_parity", "distribution_shift")
    measurement_type = NormMeasurement
    thresholds_type = NormThresholds
    settings_type = NormSettings

    def measure(self, ctx, progress) -> NormMeasurement:

        splits = []
        names = [s for s in ("train", "val", "test") if ctx.has_split(s)]
        for k, split in enumerate(names):
            span = progress.span(k / len(names), (k + 1) / len(names))
            indices = ctx.sample_indices(split, min(ctx.options.sample, self.settings.sample))
            acc = ChannelMoments()
            for batch in ctx.batches(split, indices, progress=span):
                acc.add(batch.x.transpose(0, 1).flatten(1), batch.x.shape[0])  # [C, B*H*W]
            stats = acc.stats(split)
            if stats is not None:
                splits.append(stats)
        raw = []
        if ctx.case.has("raw_datasets"):
            for split in names:
                indices = ctx.sample_indices(split, min(ctx.options.sample, self.settings.sample))
                stats = raw_stats(ctx, split, indices)
                if stats is not None:
                    raw.append(stats)
        norm = ctx.case.normalization
        progress.update(1.0)
        return NormMeasurement(
            declared_mean=norm.mean if norm else (),
            declared_std=norm.std if norm else (),
            splits=tuple(splits),
            backbone=_backbone(ctx.model()),
            raw=tuple(raw),
        )

    def judge(self, m: NormMeasurement) -> Finding:
        by = {s.split: s for s in m.splits}
        if "train" not in by:
            return Finding(self.id, Verdict.ERROR, "No train item could be read.")
        fits = {s.split: _explain(s, m) for s in m.splits}
        training, train_ok = self._training_inputs(m, fits)
        parity = self._parity(m, fits, train_ok)
        concerns = [training, parity]
        if train_ok and not any(e.hypothesis == "normalization_mismatch" for e in training.effects):
            concerns.append(self._consistent(m, fits, bool(parity.problems)))
        return self.present(m, fits, tuple(concerns), train_ok)

    # --- the judgement, one concern at a time (thresholds only here) -------------------------

    def _training_inputs(
        self, m: NormMeasurement, fits: dict[str, list[tuple[str, float]]]
    ) -> tuple[Concern, bool]:
        """The training inputs against the declared normalization (or sane scaling); whether
        they are fine."""
        th = self.thresholds
        train = next(s for s in m.splits if s.split == "train")
        train_best, train_err = fits["train"][0]
        declared_err = dict(fits["train"]).get(DECLARED, math.nan)
        effects, problems, next_steps = [], [], []
        train_ok = True
        if m.declared_mean:
            if declared_err > th.misfit:
                train_ok = False
                if train_best in GROSS and train_err < th.fit:
                    why = f"training inputs look {train_best}, not the declared normalization"
                    strength = Strength.STRONG
                else:
                    why = (
                        f"training inputs (range {_rng(train)}) do not match the declared "
                        f"normalization (expected {_rng_declared(m)})"
                        + (f"; closest explanation: {train_best}" if train_err < th.fit else "")
                    )
                    strength = Strength.MODERATE
                problems.append(why)
                effects.append(supports("normalization_mismatch", strength, why))
                next_steps.append(
                    "Make the training transform end in ToTensor() (→[0,1]) then one "
                    "Normalize(mean, std) with the declared constants."
                )
            elif train_best != DECLARED and train_err < th.fit and declared_err > th.fit:
                # Consistent but not what was declared: wrong constants somewhere.
                train_ok = False
                why = (
                    f"training inputs look {train_best}, not the declared normalization "
                    f"(mean {list(m.declared_mean)}, std {list(m.declared_std)})"
                )
                problems.append(why)
                effects.append(supports("normalization_mismatch", Strength.MODERATE, why))
                next_steps.append(
                    "Use one set of Normalize constants everywhere: the ones the model's "
                    "(pre)training used."
                )
        elif train_best == RAW255 and train_err < th.fit:
            train_ok = False
            why = "training inputs are raw [0, 255] pixel values (no NORMALIZATION declared)"
            problems.append(why)
            effects.append(supports("normalization_mismatch", Strength.MODERATE, why))
            next_steps.append("Scale inputs to [0, 1] (ToTensor) and normalize them.")
        if m.backbone and len(train.mean) == 3:
            imagenet_like = _close(m.declared_mean or train.mean, IMAGENET[0], 0.06) or (
                dict(fits["train"]).get(IMAGENET_C, 1.0) < th.fit
            )
            if not imagenet_like:
                why = (
                    f"the model contains torchvision's {m.backbone}, whose pretrained weights "
                    "expect ImageNet-normalized inputs; these inputs are not"
                )
                problems.append(why)
                effects.append(supports("normalization_mismatch", Strength.MODERATE, why))
        concern = Concern(tuple(effects), tuple(problems), next_steps=tuple(next_steps))
        return concern, train_ok

    def _parity(
        self, m: NormMeasurement, fits: dict[str, list[tuple[str, float]]], train_ok: bool
    ) -> Concern:
        """Eval inputs against training inputs."""
        th = self.thresholds
        by = {s.split: s for s in m.splits}
        train = by["train"]
        train_best = fits["train"][0][0]
        metrics = []
        parity: list[tuple[str, bool]] = []  # (what differs, a named pipeline explains it)
        for split in ("val", "test"):
            if split not in by:
                continue
            s = by[split]
            if len(s.mean) != len(train.mean):
                parity.append(
                    (f"{split} inputs have {len(s.mean)} channels, train {len(train.mean)}", True)
                )
                continue
            shift = max(
                abs(a - b) / max(sd, 1e-6)
                for a, b, sd in zip(s.mean, train.mean, train.std, strict=False)
            )
            ratio = max(
                max(a, 1e-6) / max(b, 1e-6)
                for a, b in (
                    *zip(s.std, train.std, strict=False),
                    *zip(train.std, s.std, strict=False),
                )
            )
            metrics.append(Metric(f"{split} mean shift vs train", shift, "train σ"))
            metrics.append(Metric(f"{split} std ratio vs train", ratio, "×, either way"))
            swapped = len(s.mean) == 3 and _swap_fits(s, train, m)
            if shift > th.max_shift or ratio > th.max_std_ratio or swapped:
                best, err = fits[split][0]
                what = (
                    f"{split} inputs are shifted {shift:.2f} train σ and scaled {ratio:.2f}× "
                    "relative to training inputs"
                )
                named = swapped or (err < th.fit and best != train_best)
                if swapped:
                    what += "; reversing their channel order (RGB↔BGR) matches training"
                elif named:
                    what += f"; they look {best}, training inputs {train_best}"
                parity.append((what, named))
        if not parity:
            return Concern(metrics=tuple(metrics))
        named = any(n for _, n in parity)
        what = "; ".join(p for p, _ in parity)
        step = (
            "Build the eval transform from the training transform minus augmentation "
            "(same scaling, Normalize constants and channel order)."
        )
        source = self._source(m)
        if source is not None and not named:
            # The raw images say where the difference is made: in the data (the pipeline
            # carries it through unchanged) or by the pipeline (the raw images agree).
            verdict, raw_what, raw_metrics = source
            metrics.extend(raw_metrics)
            if verdict == "data":
                return Concern(
                    (
                        supports("distribution_shift", Strength.STRONG, raw_what),
                        refutes(
                            "preprocessing_parity", Strength.MODERATE,
                            "the raw images differ as the model inputs do: the pipeline treats "
                            "both splits alike",
                        ),
                    ),
                    (f"{what}; {raw_what}",),
                    tuple(metrics),
                    next_steps=(
                        "Compare val and train images: collect or re-split val from the "
                        "distribution you deploy on (or normalize each source's images).",
                    ),
                )
            if verdict == "pipeline":
                return Concern(
                    (supports("preprocessing_parity",
                              Strength.STRONG if train_ok else Strength.MODERATE,
                              f"{what}; {raw_what}"),),
                    (f"{what}; {raw_what}",),
                    tuple(metrics),
                    next_steps=(step,),
                )
            what = f"{what}; {raw_what}"  # both differ, by different amounts
        # Different images per split: statistics alone could be a data shift, so MODERATE;
        # a distinct named pipeline or a channel swap is a preprocessing difference.
        effect = supports(
            "preprocessing_parity",
            Strength.STRONG if named and train_ok else Strength.MODERATE,
            what,
        )
        return Concern((effect,), (what,), tuple(metrics), next_steps=(step,))

    def _source(self, m: NormMeasurement) -> tuple[str, str, list[Metric]] | None:
        """Where the val inputs' difference from train comes from: "data" when the raw images
        differ by as much (in train σ, per channel, the same for std ratios) as the model
        inputs, "pipeline" when the raw images agree, "both" otherwise; None without raw."""
        th = self.thresholds
        raw = {s.split: s for s in m.raw}
        by = {s.split: s for s in m.splits}
        if not {"train", "val"} <= raw.keys() or "val" not in by:
            return None
        rt, rv, it, iv = raw["train"], raw["val"], by["train"], by["val"]
        if not len(rt.mean) == len(rv.mean) == len(it.mean) == len(iv.mean):
            return None

        def shifts(v: SplitStats, t: SplitStats) -> list[float]:
            return [(a - b) / max(sd, 1e-6) for a, b, sd in zip(v.mean, t.mean, t.std,
                                                                   strict=True)]

        def ratios(v: SplitStats, t: SplitStats) -> list[float]:
            return [math.log(max(a, 1e-6) / max(b, 1e-6)) for a, b in zip(v.std, t.std,
                                                                            strict=True)]

        d_raw, d_in = shifts(rv, rt), shifts(iv, it)
        r_raw, r_in = ratios(rv, rt), ratios(iv, it)
        raw_shift = max(abs(d) for d in d_raw)
        raw_ratio = math.exp(max(abs(r) for r in r_raw))
        residual = max(
            max(abs(a - b) for a, b in zip(d_in, d_raw, strict=True)),
            max(abs(a - b) for a, b in zip(r_in, r_raw, strict=True)),
        )
        metrics = [
            Metric("raw val mean shift vs raw train", raw_shift, "train σ"),
            Metric("raw val std ratio vs raw train", raw_ratio, "×, either way"),
            Metric("input shift not explained by the raw images", residual, "train σ"),
        ]
        raw_differs = raw_shift > th.max_shift or raw_ratio > th.max_std_ratio
        carried = residual <= th.max_shift and residual <= math.log(th.max_std_ratio)
        pixels = ", ".join(
            f"{b:.3f}→{a:.3f}" for a, b in zip(rv.mean, rt.mean, strict=True)
        )
        if raw_differs and carried:
            return "data", (
                f"the raw val images already differ from the raw train images before any "
                f"transform (mean pixel {pixels}, shift {raw_shift:.2f} train σ, std ratio "
                f"{raw_ratio:.2f}×), and the pipeline carries that difference unchanged"
            ), metrics
        if not raw_differs:
            return "pipeline", (
                f"the raw images agree (mean pixel {pixels}, shift {raw_shift:.2f} train σ): "
                "the eval pipeline makes the difference"
            ), metrics
        return "both", (
            f"the raw images differ too (shift {raw_shift:.2f} train σ) but the pipeline adds "
            f"{residual:.2f} train σ of its own"
        ), metrics

    def _consistent(
        self, m: NormMeasurement, fits: dict[str, list[tuple[str, float]]], parity: bool
    ) -> Concern:
        """Fine training inputs: evidence against a normalization problem."""
        th = self.thresholds
        train_best, train_err = fits["train"][0]
        basis = (
            "training inputs match the declared normalization"
            if m.declared_mean
            else f"training inputs look {train_best}"
            if train_err < th.fit
            else "training inputs have no recognisable scaling problem"
        )
        # When eval inputs differ the training inputs say little about what the model meets
        # at eval time: only weak evidence against a normalization problem.
        return Concern(
            (
                refutes(
                    "normalization_mismatch",
                    Strength.MODERATE if m.declared_mean and not parity else Strength.WEAK,
                    basis,
                ),
            )
        )

    # --- presentation (no thresholds but the table's "explained by" cut-off) -----------------

    def present(
        self,
        m: NormMeasurement,
        fits: dict[str, list[tuple[str, float]]],
        concerns: tuple[Concern, ...],
        train_ok: bool,
    ) -> Finding:
        th = self.thresholds
        train = next(s for s in m.splits if s.split == "train")
        train_best = fits["train"][0][0]
        declared_err = dict(fits["train"]).get(DECLARED, math.nan)
        rows = []
        for s in m.splits:
            best, err = fits[s.split][0]
            for c in range(len(s.mean)):
                rows.append(
                    (
                        s.split,
                        c,
                        round(s.mean[c], 4),
                        round(s.std[c], 4),
                        round(s.low[c], 4),
                        round(s.high[c], 4),
                        best if err < th.fit else f"unexplained (closest: {best})",
                    )
                )
        table = Table(
            "model inputs per split and channel",
            ("split", "channel", "mean", "std", "min", "max", "explained by"),
            tuple(rows),
        )
        metrics = (
            Metric("train max |mean|", max(abs(v) for v in train.mean)),
            Metric("train min std", min(train.std)),
            Metric("train max std", max(train.std)),
            Metric("train range fit to declared", declared_err, "fraction of range"),
            *(x for c in concerns for x in c.metrics),
        )
        training, parity = concerns[0], concerns[1]
        effects = tuple(e for c in concerns for e in c.effects)
        if not training.problems and not parity.problems:
            summary = (
                f"Model inputs are consistent: training inputs {_rng(train)} "
                + ("fit the declared normalization" if m.declared_mean else f"look {train_best}")
                + "; eval inputs match training statistics."
            )
            return Finding(
                self.id,
                Verdict.PASS,
                summary,
                metrics=metrics,
                tables=(table,),
                effects=effects,
            )
        parts = [*training.problems, *parity.problems]
        if train_ok and parity.problems:
            parts.insert(0, "training inputs match the declared normalization; only eval differs")
        return self.finding(
            "; ".join(parts) + ".",
            metrics=metrics,
            tables=(table,),
            effects=effects,
            next_step=" ".join(s for c in concerns for s in c.next_steps),
            concern=True,
        )


def _backbone(model) -> str:  # noqa: ANN001
    for module in model.modules():
        if type(module).__module__.startswith("torchvision.models."):
            return type(module).__name__
    return ""


def _close(a, b, tol: float) -> bool:  # noqa: ANN001
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=False))


def _candidates(m: NormMeasurement, channels: int) -> dict[str, list[tuple[float, float]]]:
    """Expected per-channel input range of each candidate pipeline, pixels p in [0, 1]."""
    out: dict[str, list[tuple[float, float]]] = {
        NONE: [(0.0, 1.0)] * channels,
        RAW255: [(0.0, 255.0)] * channels,
        HALF: [(-1.0, 1.0)] * channels,
    }
    if channels == 3:
        out[IMAGENET_C] = [((0 - a) / s, (1 - a) / s) for a, s in zip(*IMAGENET, strict=False)]
    mean, std = m.declared_mean, m.declared_std
    if len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    if len(mean) == channels:
        out[DECLARED] = [((0 - a) / s, (1 - a) / s) for a, s in zip(mean, std, strict=False)]
        out[RAW255_NORM] = [((0 - a) / s, (255 - a) / s) for a, s in zip(mean, std, strict=False)]
        out[TWICE] = [
            (((0 - a) / s - a) / s, ((1 - a) / s - a) / s) for a, s in zip(mean, std, strict=False)
        ]
        if channels == 3 and tuple(mean) != tuple(reversed(mean)):
            out[REVERSED] = [
                ((0 - a) / s, (1 - a) / s)
                for a, s in zip(reversed(mean), reversed(std), strict=False)
            ]
    return out


def _explain(s: SplitStats, m: NormMeasurement) -> list[tuple[str, float]]:
    """Candidates sorted by how well their expected range fits the observed one (0 = exactly).

    Overflow beyond the expected range counts fully; an unused part of it counts half (an image
    set need not reach pure black and white).
    """
    scored = []
    for name, ranges in _candidates(m, len(s.mean)).items():
        err = 0.0
        for (lo, hi), olo, ohi in zip(ranges, s.low, s.high, strict=False):
            width = max(hi - lo, 1e-6)
            over = max(0.0, lo - olo) + max(0.0, ohi - hi)
            under = max(0.0, olo - lo) + max(0.0, hi - ohi)
            err += (over + 0.5 * under) / width
        scored.append((name, err / max(len(s.mean), 1)))
    # Ties (e.g. declared constants equal to ImageNet's) go to the declared pipeline.
    scored.sort(key=lambda t: (round(t[1], 3), t[0] != DECLARED))
    return scored


def _swap_fits(s: SplitStats, train: SplitStats, m: NormMeasurement) -> bool:
    """Does reversing the channel order of `s` explain its difference from training inputs?

    The swap may happen after Normalize (the tensors' channels reversed) or before it (BGR
    pixels normalized with RGB constants); the second is tested in pixel units with the
    declared constants.
    """

    def gap(mean: tuple[float, ...]) -> float:
        return sum(
            abs(a - b) / max(d, 1e-6) for a, b, d in zip(mean, train.mean, train.std, strict=True)
        )

    direct = gap(s.mean)
    options = [gap(tuple(reversed(s.mean)))]
    if len(m.declared_mean) == 3:
        pixels = [
            v * sd + mu for v, sd, mu in zip(s.mean, m.declared_std, m.declared_mean, strict=True)
        ]
        options.append(
            gap(
                tuple(
                    (p - mu) / sd
                    for p, sd, mu in zip(
                        reversed(pixels), m.declared_std, m.declared_mean, strict=True
                    )
                )
            )
        )
    return direct > 0.3 and min(options) < 0.5 * direct


def _rng(s: SplitStats) -> str:
    return f"[{min(s.low):.3g}, {max(s.high):.3g}]"


def _rng_declared(m: NormMeasurement) -> str:
    lo = min((0 - a) / s for a, s in zip(m.declared_mean, m.declared_std, strict=False))
    hi = max((1 - a) / s for a, s in zip(m.declared_mean, m.declared_std, strict=False))
    return f"[{lo:.3g}, {hi:.3g}]"
