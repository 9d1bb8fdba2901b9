"""Shortcut learning: does the model rely on context correlated with the class in training?

Four measurements on a sample of each split (detective.analysis.shortcut holds the arithmetic):

- the **context-swap intervention**: keep each image's object, paste it onto the context of an
  image of another class (and, as a second intervention, onto a flat mean context), and measure
  how far accuracy and true-class confidence move, with an exact McNemar test over the paired
  examples and a paired 95 % CI; plus how often the prediction follows the donor's class, against
  a placebo class drawn the same way (paired too);
- a **context-only probe**: a linear probe (scikit-learn) on model-free features of the context
  alone, cross-validated in train and fitted-on-train scored on val — and the same probe on the
  object alone, so a split whose labels are broken everywhere is not mistaken for a shortcut;
- **conditional statistics**: properties of the context per class in train vs val, with the
  within-class effect size next to the all-classes one (a shortcut is invisible in aggregate);
- **attribution**: the share of Grad-CAM mass on the context for correct train examples and val
  failures, against the context's share of the image.

The object region comes from the case's optional `object_mask(split, index)` hook ([H, W], true on
the object), else the centre of the image (a border band is the context). Supported only when the
swap moves the metric significantly AND the context predicts the label in train clearly better
than in val; a model that uses context that is informative in both splits is not flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detective.analysis.shortcut import ClassContextStat, PairedChange, ProbeScore
from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import (
    Artifact,
    Finding,
    InterventionOutcome,
    Metric,
    Moved,
    Side,
    Table,
    Verdict,
    refutes,
    supports,
)
from detective.core.findings import Strength as S  # noqa: N817
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

if TYPE_CHECKING:
    import numpy as np
    import torch

HYPOTHESIS = "shortcut_learning"


@dataclass(frozen=True)
class ShortcutSettings:
    samples: int = 400  # per split, at most (and at most --sample)
    border_fraction: float = 0.1875  # default context: a band of 3/16 of the short side
    gallery: int = 8
    cam_examples: int = 64


@dataclass(frozen=True)
class ShortcutThresholds:
    alpha: float = 1e-3  # significance of the paired tests
    min_drop: float = 0.15  # accuracy fall under the donor swap that counts (absolute)
    min_follow: float = 0.15  # follows-the-donor rate above the placebo rate that counts
    min_probe_gap: float = 0.20  # context probe: train (cv) − val
    min_probe_lift: float = 0.20  # context probe: train (cv) above the majority-class share
    min_gap_excess: float = 0.15  # context probe gap above the object probe's gap
    # A shortcut leaves the object informative in val: the object probe keeps at least this
    # share of its lift over chance there. Labels (or images) broken across the whole val split
    # sink the object with the context (a shifted class index: 80 % → 31 %, chance 20 %).
    min_object_retention: float = 0.5


@dataclass(frozen=True)
class SwapResult:
    split: str
    intervention: str  # "donor context" | "mean context"
    accuracy: PairedChange  # correct before → after
    confidence_before: float  # mean softmax probability of the true class
    confidence_after: float
    confidence_ci_low: float  # 95 % CI of the paired fall in confidence
    confidence_ci_high: float
    follows: PairedChange | None  # before = prediction is the donor's class, after = placebo's


@dataclass(frozen=True)
class ShortcutMeasurement:
    classes: tuple[str, ...]
    mask_source: str  # "hook" | "centre" | ""
    object_area: float  # mean share of the image that is object
    train_n: int
    val_n: int
    swaps: tuple[SwapResult, ...]
    context_probe: ProbeScore | None
    object_probe: ProbeScore | None
    stats: tuple[ClassContextStat, ...]
    cam_layer: str
    cam_train_correct: float  # share of Grad-CAM mass on the context; NaN when not measured
    cam_val_failures: float
    gallery: str
    reason: str = ""  # why nothing was measured


def _probs(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(torch.softmax(model(x[i : i + batch_size]).float(), 1).cpu())
    return torch.cat(out).numpy()


def _confidence_change(before: np.ndarray, after: np.ndarray) -> tuple[float, float, float, float]:
    d = before - after
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else math.nan
    return float(before.mean()), float(after.mean()), float(d.mean()) - half, float(d.mean()) + half


def _cam_context_share(model, layer, x, targets, m) -> float:  # noqa: ANN001
    from detective.checks.capacity.gradcam import gradcam_maps

    if len(x) == 0 or layer is None:
        return math.nan
    cams = gradcam_maps(model, layer, x, targets)
    total = cams.flatten(1).sum(1)
    ctx = (cams * (~m).to(cams.dtype)).flatten(1).sum(1)
    ok = total > 0
    return float((ctx[ok] / total[ok]).mean()) if bool(ok.any()) else math.nan


@register
class ShortcutContext(Check[ShortcutMeasurement]):
    id = "shortcut_context"
    title = "Shortcut learning: object vs context"
    stage = Stage.ERROR_ANALYSIS
    description = (
        "Keeps each image's object and swaps its context for another class's (or a flat mean): "
        "how far accuracy and confidence move and how often predictions follow the donor's class "
        "(paired McNemar tests); a linear probe on the context alone in train vs val; per-class "
        "context statistics train vs val; Grad-CAM mass on the context. Object region from an "
        "optional object_mask(split, index) hook, else the image centre."
    )
    needs = ("model", "datasets")
    hypotheses = (HYPOTHESIS,)
    measurement_type = ShortcutMeasurement
    thresholds_type = ShortcutThresholds
    settings_type = ShortcutSettings

    shrinkable = (Knob("samples", 100),)

    def cost(self, size: CaseSize) -> Cost:
        """Per split sample item: the swaps and probes (≈ 6 forwards); Grad-CAM on a few.
        Calibrated on the ResNet-18 scale case (≈ 12 forward items per val item in all)."""
        val = min(self.settings.samples, size.sample, size.val_n)
        train = min(self.settings.samples, size.sample, size.train_n)
        return Cost(forward_items=6 * (val + train) + 3 * self.settings.cam_examples)

    def measure(self, ctx, progress) -> ShortcutMeasurement:  # noqa: ANN001
        import numpy as np
        import torch

        from detective.analysis import shortcut as sc
        from detective.analysis.imageprops import denormalize
        from detective.checks.capacity.gradcam import cam_layer

        st = self.settings
        classes = tuple(ctx.case.classes)
        k = len(classes)
        seed = ctx.options.seed
        model = ctx.model()
        bs = ctx.case.eval_settings.batch_size
        n = min(st.samples, ctx.options.sample)
        data = {}
        for i, split in enumerate(("train", "val")):
            progress.check_cancelled()
            progress.update(0.02 + 0.08 * i, message=f"loading a {split} sample")
            x, y, kept = ctx.tensors(split, ctx.sample_indices(split, n, seed=seed))
            masks, source = sc.object_masks(ctx.case, split, kept, x.shape[-2], x.shape[-1],
                                            st.border_fraction)
            m = torch.as_tensor(np.ascontiguousarray(masks), device=x.device)
            data[split] = (x, y, m, source)
        shapes = {s: tuple(data[s][0].shape[1:]) for s in data}
        if shapes["train"] != shapes["val"]:
            # Object and context are not comparable across the splits; preprocessing_parity
            # names that bug, and this check has nothing honest to add until it is fixed.
            return ShortcutMeasurement(classes, "", 0.0, 0, 0, (), None, None, (), "", math.nan,
                                       math.nan, "", reason=f"train and val reach the model at "
                                       f"different sizes ({shapes['train']} vs {shapes['val']})")
        source = data["train"][3]
        x_tr, y_tr, m_tr, _ = data["train"]
        y_tr_np = y_tr.cpu().numpy()
        fill = sc.context_mean(x_tr, m_tr)
        object_area = float(torch.cat([data[s][2] for s in data]).float().mean())
        swaps: list[SwapResult] = []
        predictions: dict[str, tuple[np.ndarray, np.ndarray, torch.Tensor]] = {}
        for i, split in enumerate(("train", "val")):
            progress.check_cancelled()
            progress.update(0.12 + 0.2 * i, message=f"context interventions on {split}")
            x, y, m, _ = data[split]
            y_np = y.cpu().numpy()
            p0 = _probs(model, x, bs)
            pred0 = p0.argmax(1)
            rows = np.arange(len(y_np))
            conf0 = p0[rows, y_np]
            # One donor pool for both splits: the train sample, whose contexts the model learned.
            donor_rows = sc.pick_donors(y_np, y_tr_np, seed + i)
            has = donor_rows >= 0
            swapped = x.clone()
            if has.any():
                idx = torch.as_tensor(donor_rows[has], device=x.device)
                sel = torch.as_tensor(np.flatnonzero(has), device=x.device)
                swapped[sel] = sc.swap_context(x[sel], m[sel], x_tr[idx])
            filled = sc.fill_context(x, m, fill)
            predictions[split] = (y_np, pred0, swapped)
            for name, xi in (("donor context", swapped), ("mean context", filled)):
                p1 = _probs(model, xi, bs)
                pred1 = p1.argmax(1)
                follows = None
                if name == "donor context" and has.any():
                    donor_y = y_tr_np[donor_rows[has]]
                    placebo = sc.placebo_labels(y_np[has], list(range(k)), seed + i)
                    follows = sc.paired_change(pred1[has] == donor_y, pred1[has] == placebo)
                c = _confidence_change(conf0, p1[rows, y_np])
                swaps.append(SwapResult(split, name, sc.paired_change(pred0 == y_np,
                                                                      pred1 == y_np),
                                        *c, follows))
        progress.update(0.5, message="context-only and object-only probes")
        feats = {}
        for split, (x, _y, m, _) in data.items():
            feats[split] = (sc.region_features(sc.context_only(x, m)),
                            sc.region_features(sc.fill_context(x, m, fill)))
        y_va_np = data["val"][1].cpu().numpy()
        ctx_probe = sc.linear_probe(feats["train"][0], y_tr_np, feats["val"][0], y_va_np, k, seed)
        progress.check_cancelled()
        obj_probe = sc.linear_probe(feats["train"][1], y_tr_np, feats["val"][1], y_va_np, k, seed)
        progress.update(0.65, message="per-class context statistics")
        norm = ctx.case.normalization
        props = {s: sc.context_properties(denormalize(data[s][0].float(), norm), data[s][2])
                 for s in data}
        stats = sc.conditional_stats(props["train"], y_tr_np, props["val"], y_va_np, k)
        progress.check_cancelled()
        progress.update(0.72, message="Grad-CAM mass on the context")
        found = cam_layer(model, x_tr[:1])
        layer_name, layer = found if found else ("", None)
        y_tr_np, pred_tr, _ = predictions["train"]
        ok = np.flatnonzero(pred_tr == y_tr_np)[: st.cam_examples]
        y_va_np2, pred_va, _ = predictions["val"]
        bad = np.flatnonzero(pred_va != y_va_np2)[: st.cam_examples]
        x_va, _, m_va, _ = data["val"]
        dev = x_tr.device
        cam_ok = _cam_context_share(model, layer, x_tr[ok], torch.as_tensor(pred_tr[ok],
                                    device=dev), m_tr[ok]) if len(ok) else math.nan
        cam_bad = _cam_context_share(model, layer, x_va[bad], torch.as_tensor(pred_va[bad],
                                     device=dev), m_va[bad]) if len(bad) else math.nan
        progress.update(0.88, message="gallery")
        gallery = self._gallery(ctx, data["train"], predictions["train"], fill, layer, classes)
        progress.update(1.0)
        return ShortcutMeasurement(
            classes=classes, mask_source=source, object_area=object_area,
            train_n=len(y_tr_np), val_n=len(y_va_np), swaps=tuple(swaps),
            context_probe=ctx_probe, object_probe=obj_probe, stats=tuple(stats[:40]),
            cam_layer=layer_name, cam_train_correct=cam_ok, cam_val_failures=cam_bad,
            gallery=gallery,
        )

    def _gallery(self, ctx, train, preds, fill, layer, classes) -> str:  # noqa: ANN001
        """Train examples whose prediction the donor swap changed first: image | object |
        context | Grad-CAM | object on another class's context."""
        import numpy as np
        import torch

        from detective.analysis import shortcut as sc
        from detective.analysis.imageprops import denormalize
        from detective.analysis.pngplots import image_grid
        from detective.checks.capacity.gradcam import gradcam_maps, overlay

        x, y, m, _ = train
        y_np, pred0, swapped = preds
        model = ctx.model()
        p1 = _probs(model, swapped, ctx.case.eval_settings.batch_size).argmax(1)
        changed = np.flatnonzero((pred0 == y_np) & (p1 != y_np))
        rest = np.setdiff1d(np.arange(len(y_np)), changed)
        order = np.concatenate([changed, rest])
        # Round-robin over classes (changed examples first within each), so one class does not
        # fill the whole grid.
        rank = np.empty(len(order), np.int64)
        for c in np.unique(y_np):
            mine = np.flatnonzero(y_np[order] == c)
            rank[mine] = np.arange(len(mine))
        rows = order[np.lexsort((np.arange(len(order)), rank))][: self.settings.gallery]
        if not len(rows):
            return ""
        sel = torch.as_tensor(rows, device=x.device)
        xs = x[sel]
        versions = [xs, sc.fill_context(xs, m[sel], fill), sc.context_only(xs, m[sel]),
                    swapped[sel]]
        px = [denormalize(v.detach().cpu().float(), ctx.case.normalization) for v in versions]
        lo = px[0].flatten(1).min(1).values.view(-1, 1, 1, 1)
        hi = px[0].flatten(1).max(1).values.view(-1, 1, 1, 1)
        px = [((v - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1) for v in px]
        cams = (gradcam_maps(model, layer, xs, torch.as_tensor(pred0[rows], device=x.device))
                .cpu() if layer is not None else None)

        def show(t: torch.Tensor) -> np.ndarray:
            return t.permute(1, 2, 0).numpy() if t.shape[0] == 3 else t[0].numpy()

        images, captions = [], []
        for j, r in enumerate(rows):
            images += [show(px[0][j]), show(px[1][j]), show(px[2][j])]
            captions += [f"{classes[y_np[r]]}"[:16], "object", "context"]
            if cams is not None:
                images.append(overlay(px[0][j], cams[j]).numpy())
                captions.append("Grad-CAM")
            images.append(show(px[3][j]))
            captions.append(f"swap: {classes[p1[r]]}"[:16])
        path, rel = ctx.artifact(self.id, "gallery.png")
        image_grid(images, captions, columns=5 if cams is not None else 4).save(path)
        return rel

    def judge(self, m: ShortcutMeasurement) -> Finding:
        th = self.thresholds
        if not m.swaps:
            return Finding(self.id, Verdict.NOT_APPLICABLE, f"Nothing measured: {m.reason}.")
        donor = {s.split: s for s in m.swaps if s.intervention == "donor context"}
        moved = [s for s in donor.values() if _moves(s, th, len(m.classes))]
        cp, op = m.context_probe, m.object_probe
        train_only = (
            cp is not None
            and cp.gap >= th.min_probe_gap
            and cp.train_cv - cp.train_chance >= th.min_probe_lift
            and cp.gap - (op.gap if op is not None else 0.0) >= th.min_gap_excess
            and (op is None or _retention(op) >= th.min_object_retention)
        )
        where = "centre of the image" if m.mask_source == "centre" else "object_mask() hook"
        metrics = self._metrics(m)
        tables = self._tables(m)
        art = (Artifact("gallery", m.gallery, "image · object alone · context alone · "
                        "Grad-CAM · object on another class's context (prediction)"),) \
            if m.gallery else ()
        swap_text = "; ".join(_swap_sentence(s) for s in (moved or list(donor.values())))
        probe_text = (
            f"the context alone predicts the label in {cp.train_cv:.0%} of train images "
            f"(cross-validated) and {cp.val:.0%} of val (majority class {cp.val_chance:.0%})"
            + (f"; the object alone {op.train_cv:.0%} and {op.val:.0%}" if op else "")
            if cp is not None else "the context probe could not be fitted"
        )
        carrier = _carrier(m)
        if moved and train_only:
            reason = (f"Object kept, context swapped: {swap_text}. And {probe_text}"
                      + (f". Carried by {carrier}" if carrier else "") + ".")
            return Finding(
                self.id, Verdict.FAIL,
                f"The model relies on a training-set shortcut in the context ({where} as the "
                f"object): {swap_text}; {probe_text}.",
                metrics=metrics, tables=tables, artifacts=art,
                effects=(supports(HYPOTHESIS, S.STRONG, reason),),
                interventions=tuple(_outcome(s, Moved.RECOVERS, len(m.classes)) for s in moved[:1]),
                next_step="Break the correlation in training: balance or randomize the context "
                "across classes (or crop/mask it), then retrain and re-check val accuracy.",
            )
        if train_only:
            return Finding(
                self.id, Verdict.WARN,
                f"The context carries label information in train that val lacks ({probe_text})"
                f", but the model does not follow a swapped-in context ({swap_text}).",
                metrics=metrics, tables=tables, artifacts=art,
                effects=(supports(HYPOTHESIS, S.WEAK, f"{probe_text}; the model does not follow "
                                  f"a swapped-in context significantly"),),
                next_step="A shortcut waiting to be learned: balance the context across classes.",
            )
        if moved:
            return Finding(
                self.id, Verdict.PASS,
                f"The model uses the context ({swap_text}), but the context is as informative "
                f"in val as in train ({probe_text}): not a training-set shortcut.",
                metrics=metrics, tables=tables, artifacts=art,
                effects=(refutes(HYPOTHESIS, S.WEAK, "the context predicts the label in val as "
                                 "well as in train"),),
            )
        return Finding(
            self.id, Verdict.PASS,
            f"Object kept, context swapped for another class's: the predictions do not follow the "
            f"donor's class ({swap_text}); {probe_text}.",
            metrics=metrics, tables=tables, artifacts=art,
            effects=(refutes(HYPOTHESIS, S.MODERATE, f"with the context swapped for another "
                             f"class's, predictions do not follow it ({swap_text})"),),
            interventions=tuple(
                _outcome(s, Moved.NO_EFFECT, len(m.classes)) for s in list(donor.values())[:1]
            ),
        )

    def _metrics(self, m: ShortcutMeasurement) -> tuple[Metric, ...]:
        out = []
        for s in m.swaps:
            if s.intervention != "donor context":
                continue
            out.append(Metric(f"{s.split} accuracy, object on another class's context",
                              s.accuracy.after, "share",
                              f"{s.accuracy.before:.1%} before, p = {s.accuracy.p_value:.2g}"))
            if s.follows is not None:
                out.append(Metric(f"{s.split} predictions that follow the donor's class",
                                  s.follows.before, "share",
                                  f"placebo {s.follows.after:.1%}, p = {s.follows.p_value:.2g}"))
        if m.context_probe is not None:
            out += [Metric("context-only probe accuracy, train (cv)", m.context_probe.train_cv,
                           "share"),
                    Metric("context-only probe accuracy, val", m.context_probe.val, "share",
                           f"majority class {m.context_probe.val_chance:.1%}")]
        if m.object_probe is not None:
            out += [Metric("object-only probe accuracy, train (cv)", m.object_probe.train_cv,
                           "share"),
                    Metric("object-only probe accuracy, val", m.object_probe.val, "share")]
        out.append(Metric("Grad-CAM mass on the context, correct train examples",
                          m.cam_train_correct, "share",
                          f"context = {1 - m.object_area:.0%} of the image"))
        out.append(Metric("Grad-CAM mass on the context, val failures", m.cam_val_failures,
                          "share"))
        return tuple(out)

    def _tables(self, m: ShortcutMeasurement) -> tuple[Table, ...]:
        def pct(v: float) -> float | None:
            return None if math.isnan(v) else round(100 * v, 1)

        swaps = Table(
            "context interventions (object kept; paired over the same examples)",
            ("split", "intervention", "n", "accuracy before %", "after %", "fall %",
             "fall 95% CI", "McNemar p", "true-class confidence before", "after",
             "follows donor class %", "placebo %", "p"),
            tuple(
                (s.split, s.intervention, s.accuracy.n, pct(s.accuracy.before),
                 pct(s.accuracy.after), pct(s.accuracy.drop),
                 f"{100 * s.accuracy.ci_low:.1f} … {100 * s.accuracy.ci_high:.1f}",
                 float(f"{s.accuracy.p_value:.3g}"), round(s.confidence_before, 3),
                 round(s.confidence_after, 3),
                 pct(s.follows.before) if s.follows else None,
                 pct(s.follows.after) if s.follows else None,
                 float(f"{s.follows.p_value:.3g}") if s.follows else None)
                for s in m.swaps
            ),
        )
        out = [swaps]
        cp = m.context_probe
        if cp is not None:
            top = _top_stat_per_class(m)
            rows = []
            for c, name in enumerate(m.classes):
                st = top.get(c)
                rows.append((
                    name, pct(cp.train_recall[c]), pct(cp.val_recall[c]),
                    st.prop if st else None,
                    round(st.train_mean, 3) if st else None,
                    round(st.val_mean, 3) if st else None,
                    round(st.d_class, 2) if st else None,
                    round(st.d_all, 2) if st else None,
                ))
            rows.sort(key=lambda r: -((r[1] or 0) - (r[2] or 0)))
            out.append(Table(
                "context that carries the label, per class: context-only probe recall and the "
                "context property that differs most between train and val within the class",
                ("class", "context predicts it, train (cv) %", "val %", "property",
                 "train mean", "val mean", "Cohen's d in class", "d, all classes"),
                tuple(rows),
            ))
        if m.stats:
            out.append(Table(
                "per-class context statistics, train vs val (largest within-class effect first)",
                ("class", "property", "train mean", "val mean", "Cohen's d in class",
                 "d, all classes"),
                tuple((m.classes[s.class_index], s.prop, round(s.train_mean, 3),
                       round(s.val_mean, 3), round(s.d_class, 2), round(s.d_all, 2))
                      for s in m.stats[:12]),
            ))
        return tuple(out)


def _moves(s: SwapResult, th: ShortcutThresholds, num_classes: int) -> bool:
    """With three or more classes: predictions follow the donor's class significantly more often
    than a placebo class — a fall in accuracy alone can come from an object the default centre
    region cut into. With two classes following the donor is falling, so the fall decides."""
    f = s.follows
    if num_classes > 2:
        return f is not None and f.drop >= th.min_follow and f.p_value < th.alpha
    a = s.accuracy
    return a.drop >= th.min_drop and a.p_value < th.alpha


def _outcome(s: SwapResult, effect: Moved, num_classes: int) -> InterventionOutcome:
    """The context swap as the shortcut's intervention: the ledger judges by it. Its share of
    the gap: the part of the accuracy above chance that depended on the context."""
    a = s.accuracy
    above = a.before - 1.0 / max(num_classes, 1)
    share = (min(1.0, max(0.0, a.drop / above))
             if effect is Moved.RECOVERS and above > 1e-9 else None)
    return InterventionOutcome(
        hypothesis=HYPOTHESIS,
        label="check.shortcut_context",
        side=Side.CHECK,
        change=f"keeping each {s.split} object and swapping its context for another class's",
        metric=f"{s.split}_acc",
        before=a.before,
        after=a.after,
        ci_low=-a.ci_high,  # the CI is of the fall; the outcome's is of after − before
        ci_high=-a.ci_low,
        p_value=a.p_value,
        test="exact McNemar (one-sided, paired over the same examples)",
        effect=effect,
        predicted=-1,
        n=a.n,
        gap_share=share,
    )


def _swap_sentence(s: SwapResult) -> str:
    a = s.accuracy
    text = (f"{s.split} accuracy {a.before:.1%} → {a.after:.1%} with each object on another "
            f"class's context (fall {100 * a.drop:.1f} points, 95% CI {100 * a.ci_low:.1f}–"
            f"{100 * a.ci_high:.1f}, McNemar p = {a.p_value:.2g})")
    if s.follows is not None:
        text += (f", {s.follows.before:.0%} of predictions follow the donor's class "
                 f"(placebo {s.follows.after:.0%})")
    return text


def _top_stat_per_class(m: ShortcutMeasurement) -> dict[int, ClassContextStat]:
    top: dict[int, ClassContextStat] = {}
    for s in m.stats:  # sorted by |d| within class, largest first
        if s.class_index not in top:
            top[s.class_index] = s
    return top


def _carrier(m: ShortcutMeasurement) -> str:
    """The class whose context predicts it most in train but not in val, in words."""
    cp = m.context_probe
    if cp is None:
        return ""
    gaps = [(tr - va, c) for c, (tr, va) in enumerate(zip(cp.train_recall, cp.val_recall,
                                                            strict=True))
            if not (math.isnan(tr) or math.isnan(va))]
    if not gaps:
        return ""
    _, c = max(gaps)
    text = (f"the context of class {m.classes[c]}: it predicts the class in "
            f"{cp.train_recall[c]:.0%} of its train images, {cp.val_recall[c]:.0%} of val")
    st = _top_stat_per_class(m).get(c)
    if st is not None:
        text += (f" ({st.prop} {st.train_mean:.2f} in train vs {st.val_mean:.2f} in val, "
                 f"d = {st.d_class:.1f}; over all classes d = {st.d_all:.1f})")
    return text


def _retention(p: ProbeScore) -> float:
    """The share of the probe's lift over chance in train (cross-validated) that it keeps in
    val; 1 when it has no lift in train to lose."""
    lift = p.train_cv - p.train_chance
    return 1.0 if lift <= 0 else (p.val - p.val_chance) / lift
