"""Evaluation-side interventions: remove a suspected cause at evaluation time, re-measure.

Each intervention changes one thing about how the val items are evaluated (no retraining, seconds)
and measures val accuracy on the same items before and after. When the hypothesis it tests is
true, the metric moves in the predicted direction; on a clean case it does not. The judgement is
statistical, not a threshold on a raw number:

- paired interventions (the same items, changed inputs or labels) use the exact McNemar test
  (a binomial test on the discordant pairs) and an adjusted-Wald 95 % CI of the paired difference;
- drop interventions (`drop=near_twins`, `drop=corrupt`) compare the kept items with the dropped
  ones (Fisher's exact test) and give a bootstrap 95 % CI of the accuracy change.

The model is never modified: `mode=train` works on a copy. Nothing here writes to a session;
`to_experiment` turns a result into an experiment-log record (`detective experiment --set eval.…`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from detective.core.case import CaseError
from detective.core.findings import InterventionOutcome, Moved, Side
from detective.core.session import Experiment

if TYPE_CHECKING:
    import torch

    from detective.core.context import RunContext
    from detective.core.progress import Progress


class InterventionError(Exception):
    """The intervention cannot run on this case; the message says why, for the user."""


# The smallest change in accuracy an engineer would act on: an effect below it is noise for this
# purpose however significant (the judgement's default `min_effect`).
MIN_EFFECT = 0.02

# The outcome vocabulary is the core's (the ledger judges by it); kept under the old names here.
Effect = Moved


@dataclass(frozen=True)
class Intervention:
    id: str  # "transform=train": the key=value after `eval.` on the command line
    hypothesis: str  # the hypothesis it tests (the core vocabulary)
    side: Side
    description: str  # one line: what it changes
    predicted: int = 1  # +1: accuracy rises when the hypothesis holds; -1: it falls
    auto: bool = True  # run by the judgement phase (False: by hand only)

    @property
    def label(self) -> str:
        return f"{self.side.value}.{self.id}"


INTERVENTIONS: tuple[Intervention, ...] = (
    Intervention(
        "transform=train",
        "preprocessing_parity",
        Side.EVAL,
        "val raw images through the train transform with its augmentation switched off",
    ),
    Intervention(
        "channels=swap",
        "preprocessing_parity",
        Side.EVAL,
        "channel order reversed (RGB↔BGR), each channel re-standardized to the train inputs'",
    ),
    Intervention(
        "normalize=measured",
        "normalization_mismatch",
        Side.EVAL,
        "val inputs re-normalized per channel to the mean/std measured on the train inputs",
    ),
    Intervention(
        "normalize=declared",
        "normalization_mismatch",
        Side.EVAL,
        "val inputs mapped per channel to the statistics the case's declared NORMALIZATION gives "
        "the raw val images ((pixels in [0, 1] − mean) / std)",
    ),
    Intervention(
        "labels=remap",
        "label_misalignment",
        Side.EVAL,
        "val labels remapped by the confusion permutation (Hungarian assignment, cross-fitted)",
    ),
    Intervention(
        "mode=eval",
        "eval_mode_bug",
        Side.EVAL,
        "the user's evaluation (model in train mode, or modules that stay training after "
        ".eval()) replaced by one with every module in eval mode",
    ),
    Intervention(
        "metric=recomputed",
        "metric_bug",
        Side.EVAL,
        "the reported metric replaced by top-1 accuracy recomputed from the predictions",
    ),
    Intervention(
        "mode=train",
        "eval_mode_bug",
        Side.EVAL,
        "the model in train mode (batch-norm batch statistics) at the case's eval batch size",
        auto=False,  # a diagnostic for batch-norm statistics, not the removal of a cause
    ),
    Intervention(
        "drop=near_twins",
        "train_val_leakage",
        Side.EVAL,
        "val without the items that have an exact or near twin in train",
        predicted=-1,
    ),
    Intervention(
        "drop=corrupt",
        "corrupt_inputs",
        Side.EVAL,
        "val without the items that are unreadable or blank/constant",
    ),
)
_BY_ID: dict[str, Intervention] = {}
for _i in INTERVENTIONS:  # an id that tests two hypotheses replays as the first
    _BY_ID.setdefault(_i.id, _i)


def parse_intervention(text: str) -> Intervention:
    """`eval.transform=train` (or `transform=train`) → the Intervention."""
    key = text.strip().replace(" ", "")
    if key.startswith("eval."):
        key = key[len("eval.") :]
    found = _BY_ID.get(key)
    if found is None:
        known = ", ".join(f"eval.{i}" for i in _BY_ID)
        raise InterventionError(f"{text!r}: unknown evaluation intervention; known: {known}")
    return found


def is_intervention(text: str) -> bool:
    return text.strip().startswith("eval.")


@dataclass(frozen=True)
class InterventionResult:
    intervention: Intervention
    metric: str
    before: float
    after: float
    n_before: int  # items measured before
    n_after: int  # items measured after (fewer for drop interventions)
    ci_low: float  # 95 % CI of after − before
    ci_high: float
    p_value: float  # exact McNemar (paired) or Fisher (dropped vs kept), two-sided
    test: str
    fixed: int = 0  # paired: wrong before, right after
    broken: int = 0  # paired: right before, wrong after
    dropped: int = 0  # drop interventions: items removed
    notes: tuple[str, ...] = ()
    alpha: float = 0.05
    seeds: int = 1  # training-side: paired short runs; before/after are means over seeds
    min_delta: float = 0.0  # training-side: the seeds' spread an effect must exceed

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def effect(self) -> Effect:
        if not self.p_value < self.alpha or abs(self.delta) <= self.min_delta:
            return Effect.NO_EFFECT
        toward = self.delta * self.intervention.predicted > 0
        return Effect.RECOVERS if toward else Effect.OPPOSITE

    @property
    def change(self) -> str:
        """What was changed, as a phrase for the sentence."""
        i = self.intervention
        return {
            "transform=train": "evaluating with the train transform",
            "channels=swap": "swapping the channel order",
            "normalize=measured": "re-normalizing val to the train inputs' statistics",
            "labels=remap": "remapping val labels by the confusion permutation",
            "mode=train": "evaluating in train mode",
            "mode=eval": "evaluating with every module in eval mode (as the user's loop did not)",
            "metric=recomputed": "recomputing the reported metric as top-1 accuracy",
            "drop=near_twins": f"dropping the {self.dropped} val items with a twin in train",
            "drop=corrupt": f"dropping the {self.dropped} unreadable or blank val items",
        }.get(i.id, i.description)

    @property
    def sentence(self) -> str:
        return self.to_outcome().sentence

    def to_outcome(
        self, gap_share: float | None = None, cost_s: float = 0.0
    ) -> InterventionOutcome:
        """The typed record a finding carries and the ledger judges by."""
        i = self.intervention
        return InterventionOutcome(
            hypothesis=i.hypothesis,
            label=i.label,
            side=i.side,
            change=self.change,
            metric=self.metric,
            before=self.before,
            after=self.after,
            ci_low=self.ci_low,
            ci_high=self.ci_high,
            p_value=self.p_value,
            test=self.test,
            effect=self.effect,
            predicted=i.predicted,
            n=self.n_after,
            seeds=self.seeds,
            gap_share=gap_share,
            cost_s=round(cost_s, 3),
            notes=self.notes,
        )


# --- statistics ----------------------------------------------------------------------------
def paired_result(
    intervention: Intervention, before: np.ndarray, after: np.ndarray, notes: tuple[str, ...] = ()
) -> InterventionResult:
    """Per-item correctness before/after on the same items → exact McNemar + adjusted Wald CI."""
    from detective.analysis.paired import mcnemar_exact

    b_ok = np.asarray(before, bool)
    a_ok = np.asarray(after, bool)
    n = len(b_ok)
    if n == 0:
        raise InterventionError("no val item could be evaluated")
    fixed = int((~b_ok & a_ok).sum())
    broken = int((b_ok & ~a_ok).sum())
    p = mcnemar_exact(fixed, broken)
    # Agresti–Min: half a pair added to each discordant cell keeps the CI sane at 0 or n.
    fa, br, m = fixed + 0.5, broken + 0.5, n + 2.0
    diff = (fa - br) / m
    se = math.sqrt(max((fa + br) / m - diff**2, 0.0) / m)
    return InterventionResult(
        intervention,
        "val_acc",
        float(b_ok.mean()),
        float(a_ok.mean()),
        n,
        n,
        max(-1.0, diff - 1.96 * se),
        min(1.0, diff + 1.96 * se),
        float(p),
        "exact McNemar (binomial on discordant pairs)",
        fixed=fixed,
        broken=broken,
        notes=notes,
    )


def drop_result(
    intervention: Intervention, correct: np.ndarray, drop: np.ndarray, notes: tuple[str, ...] = ()
) -> InterventionResult:
    """Accuracy on all items vs on the kept ones; Fisher's exact test dropped vs kept."""
    from scipy.stats import fisher_exact

    ok = np.asarray(correct, bool)
    gone = np.asarray(drop, bool)
    n = len(ok)
    kept = ok[~gone]
    if n == 0 or len(kept) == 0:
        raise InterventionError("no val item would remain to evaluate")
    before, after = float(ok.mean()), float(kept.mean())
    k = int(gone.sum())
    if k == 0:
        return InterventionResult(
            intervention, "val_acc", before, after, n, n, 0.0, 0.0, 1.0, "nothing to drop",
            notes=(*notes, "no item matched: nothing dropped"),
        )
    table = [[int(kept.sum()), int((~kept).sum())], [int(ok[gone].sum()), int((~ok[gone]).sum())]]
    p = float(fisher_exact(table).pvalue)
    rng = np.random.default_rng(0)  # fixed: the same items always give the same interval
    draws = rng.integers(0, n, size=(2000, n))
    o, g = ok[draws], gone[draws]
    kept_n = (~g).sum(1)
    boot = np.where(kept_n > 0, (o & ~g).sum(1) / np.maximum(kept_n, 1), np.nan) - o.mean(1)
    lo, hi = np.nanquantile(boot, [0.025, 0.975])
    return InterventionResult(
        intervention, "val_acc", before, after, n, n - k, float(lo), float(hi), p,
        "Fisher exact (dropped vs kept items)", dropped=k, notes=notes,
    )


# --- measuring -----------------------------------------------------------------------------
def _predict(model: torch.nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    import torch

    from detective.analysis.torchutil import argmax_finite

    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            logits = model(x[s : s + batch])
            if isinstance(logits, tuple | list):
                logits = logits[0]
            out.append(argmax_finite(logits).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


@dataclass(frozen=True)
class _Val:
    x: torch.Tensor
    y: torch.Tensor  # on the CPU
    indices: list[int]
    pred: torch.Tensor  # eval-mode predictions of the user's model, on the CPU

    @property
    def correct(self) -> np.ndarray:
        return (self.pred == self.y).numpy()


def _val(ctx: RunContext, sample: int) -> _Val:
    """The val sample and the model's predictions on it, once per run: every intervention
    compares against the same "before"."""
    from detective.core.ports import CacheKey

    def compute() -> _Val:
        idx = ctx.sample_indices("val", sample)
        x, y, kept = ctx.tensors("val", idx)
        pred = _predict(ctx.model(), x, ctx.case.eval_settings.batch_size)
        return _Val(x, y.cpu(), kept, pred)

    return ctx.cache.get(CacheKey("intervention_val", (sample,)), compute)


def _need(ctx: RunContext, *hooks: str) -> None:
    missing = [h for h in hooks if not ctx.case.has(h)]
    if missing:
        names = " and ".join(f"{h}()" for h in missing)
        raise InterventionError(f"this intervention needs {names}")


def _transform_train(ctx: RunContext, v: _Val, it: Intervention) -> InterventionResult:
    import torch

    from detective.analysis.augment import deterministic

    _need(ctx, "raw_datasets", "transforms")
    tf, removed = deterministic(ctx.case.transforms()["train"])
    raw = ctx.raw_dataset("val")
    xs = []
    for i in v.indices:
        torch.manual_seed(i)  # as preprocessing_parity: a transform we cannot see inside is seeded
        try:
            xs.append(tf(raw[i][0]).float())
        except Exception as e:  # the case's own code: name the item, never a traceback
            raise CaseError(
                f"the train transform failed on raw val item {i}: {type(e).__name__}: {e}"
            ) from e
    try:
        x = torch.stack(xs).to(ctx.device)
    except RuntimeError as e:
        raise InterventionError(f"the train transform gives images of varying shape: {e}") from e
    after = _predict(ctx.model(), x, ctx.case.eval_settings.batch_size)
    notes = () if removed else (
        "the train transform is not a torchvision Compose: its augmentation stayed on",
    )
    return paired_result(it, v.correct, (after == v.y).numpy(), notes)


def _channels_swap(ctx: RunContext, v: _Val, it: Intervention, sample: int) -> InterventionResult:
    if v.x.shape[1] != 3:
        raise InterventionError(f"channels=swap needs 3-channel inputs; these have {v.x.shape[1]}")
    # A swap at decode time is followed by a per-channel Normalize, so reversing the normalized
    # tensor alone does not undo it: after reversing, each channel is re-standardized to the
    # train inputs' statistics of that channel (an affine map, as normalize=measured does).
    after = _predict(ctx.model(), _to_train_stats(ctx, v.x.flip(1), sample)[0],
                     ctx.case.eval_settings.batch_size)
    return paired_result(it, v.correct, (after == v.y).numpy(),
                         ("channels reversed, then re-standardized per channel to train",))


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.transpose(0, 1).flatten(1).double()
    return flat.mean(1), flat.std(1).clamp_min(1e-8)


def _to_train_stats(ctx: RunContext, x: torch.Tensor, sample: int) -> tuple[torch.Tensor, str]:
    """x with each channel's mean/std mapped to those of the train inputs, and a note."""
    tx, _, _ = ctx.tensors("train", ctx.sample_indices("train", sample))
    if tx.shape[1] != x.shape[1]:
        raise InterventionError(
            f"train inputs have {tx.shape[1]} channels, val inputs {x.shape[1]}"
        )
    mt, st = _channel_stats(tx)
    mv, sv = _channel_stats(x)
    shape = (1, -1, 1, 1)
    out = ((x.double() - mv.view(shape)) / sv.view(shape) * st.view(shape) + mt.view(shape))
    note = "per channel: val mean/std " + ", ".join(
        f"{float(a):.3f}/{float(b):.3f} → {float(c):.3f}/{float(d):.3f}"
        for a, b, c, d in zip(mv, sv, mt, st, strict=True)
    )
    return out.to(x.dtype), note


def _normalize_measured(
    ctx: RunContext, v: _Val, it: Intervention, sample: int
) -> InterventionResult:
    # Per channel, an affine map that gives val inputs the train inputs' mean and std. This undoes
    # whatever normalization the eval path applied (declared or copied constants) and applies the
    # statistics the model was trained on, without trusting any declared constant.
    x, note = _to_train_stats(ctx, v.x, sample)
    after = _predict(ctx.model(), x, ctx.case.eval_settings.batch_size)
    return paired_result(it, v.correct, (after == v.y).numpy(), (note,))


def _normalize_declared(ctx: RunContext, v: _Val, it: Intervention) -> InterventionResult:
    # The inputs a checkpoint trained with the declared constants expects: per channel, the
    # statistics of (raw pixels in [0, 1] − mean) / std over these val images. Moment matching
    # keeps the eval path's geometry (resize, crop) and fixes only the value scale — what a
    # loader that forgot ToTensor's /255 or the Normalize gets wrong.
    import torch

    from detective.analysis.channelstats import raw_stats

    norm = ctx.case.normalization
    if norm is None:
        raise InterventionError("the case declares no NORMALIZATION to re-normalize to")
    _need(ctx, "raw_datasets")
    stats = raw_stats(ctx, "val", v.indices)
    if stats is None or len(stats.mean) != v.x.shape[1]:
        raise InterventionError("no raw val image matches the model inputs' channels")
    m_raw = torch.tensor(stats.mean, dtype=torch.float64)
    s_raw = torch.tensor(stats.std, dtype=torch.float64).clamp_min(1e-6)
    mean = torch.tensor(norm.mean, dtype=torch.float64).expand_as(m_raw)
    std = torch.tensor(norm.std, dtype=torch.float64).expand_as(m_raw)
    target_m, target_s = ((m_raw - mean) / std).to(v.x.device), (s_raw / std).to(v.x.device)
    mv, sv = _channel_stats(v.x)
    shape = (1, -1, 1, 1)
    x = (v.x.double() - mv.view(shape)) / sv.view(shape) * target_s.view(shape)
    x = (x + target_m.view(shape)).to(v.x.dtype)
    note = "per channel: val mean/std " + ", ".join(
        f"{float(a):.3f}/{float(b):.3f} → {float(c):.3f}/{float(d):.3f}"
        for a, b, c, d in zip(mv, sv, target_m, target_s, strict=True)
    ) + " (the declared NORMALIZATION applied to the raw images)"
    after = _predict(ctx.model(), x, ctx.case.eval_settings.batch_size)
    return paired_result(it, v.correct, (after == v.y).numpy(), (note,))


def _labels_remap(ctx: RunContext, v: _Val, it: Intervention) -> InterventionResult:
    from detective.analysis.permutation import cross_fit

    k = ctx.case.num_classes
    # Cross-fitted: the permutation is fitted on one half and scored on the other, so fitting
    # a permutation can never manufacture an improvement on a clean model.
    fit = cross_fit(v.y.numpy(), v.pred.numpy(), k)
    if fit.is_identity:
        # Nothing to change is not an intervention: "no effect" here would refute misaligned
        # *train* labels with a statement about val's (a shuffle in train leaves val aligned).
        raise InterventionError(
            "the confusion's best class assignment is the identity on both halves of val: no "
            "class's val labels point at another class, nothing to remap"
        )
    first = fit.fold_maps[0]
    moved = [f"{c}→{first[c]}" for c in range(k) if first[c] != c]
    note = (
        "permutation (fold 1): " + (", ".join(moved) if moved else "identity")
        if k <= 50
        else f"{len(moved)} classes remapped (fold 1)"
    )
    return paired_result(it, v.correct, fit.correct, (note,))


def _mode_train(ctx: RunContext, v: _Val, it: Intervention) -> InterventionResult:
    import torch

    model = ctx.model_copy()  # train() updates batch-norm running stats: never the shared model
    model.train()
    torch.manual_seed(0)
    after = _predict(model, v.x, ctx.case.eval_settings.batch_size)
    return paired_result(
        it,
        v.correct,
        (after == v.y).numpy(),
        (f"train mode at batch size {ctx.case.eval_settings.batch_size}",),
    )


def _mode_eval(ctx: RunContext, v: _Val, it: Intervention) -> InterventionResult:
    import torch

    from detective.analysis.measures import EvalModeStats, reported_fraction
    from detective.checks.evaluation_integrity.eval_mode import (
        EvalModeThresholds,
        train_mode_match,
    )

    kinds = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm)
    model = ctx.model_copy()
    model.eval()
    stuck = [n for n, m in model.named_modules() if isinstance(m, kinds) and m.training]
    bs = ctx.case.eval_settings.batch_size
    x, y = v.x, v.y
    if stuck:
        how = f"{len(stuck)} module(s) stay training after .eval() ({', '.join(stuck[:3])})"
    else:
        # eval() takes effect, so the cause can only be a loop that never calls it: there is
        # something to remove only when the reported number IS train-mode accuracy (the
        # eval_mode check's match: seeded passes at each candidate batch size, the split in
        # order, within the passes' measured spread).
        reported = ctx.options.reported_metric
        if reported is None:
            raise InterventionError(
                "eval() takes effect on this model and no reported metric says the user's "
                "loop skipped it: nothing to remove"
            )
        stats = ctx.shared(EvalModeStats)
        match = train_mode_match(stats, EvalModeThresholds())
        if match is None:
            raise InterventionError(
                f"the reported metric {reported_fraction(reported):.3f} is not train-mode "
                f"accuracy at any measured batch size (eval mode: {stats.eval_accuracy:.3f}): "
                "nothing to remove"
            )
        bs = match.batch
        # The items the match was measured on, in the split's order: batch-norm's batch
        # statistics depend on which items share a batch, as in the user's loop.
        idx = ctx.sample_indices(stats.split, stats.n) if stats.n else v.indices
        x, y, _ = ctx.tensors(stats.split, idx)
        y = y.cpu()
        model.train()
        how = (
            f"before: the model in train mode at batch {bs}, the split in order, as the "
            f"user's loop reported ({reported_fraction(reported):.3f} vs "
            f"{match.accuracy:.3f} ± {match.draw_sd:.3f} measured)"
        )
    # Eval mode first: a pass in train mode updates batch-norm running statistics (on val).
    modes = {m: m.training for m in model.modules()}
    for m in modes:  # every module, whatever its train()/eval() overrides do
        m.training = False
    after = _predict(model, x, bs)
    for m, training in modes.items():
        m.training = training
    torch.manual_seed(0)
    before = _predict(model, x, bs)
    return paired_result(it, (before == y).numpy(), (after == y).numpy(), (how,))


def _metric_recomputed(ctx: RunContext, v: _Val, it: Intervention) -> InterventionResult:
    from scipy.stats import binomtest

    reported = ctx.options.reported_metric
    if reported is None:
        raise InterventionError("metric=recomputed needs the reported metric (--reported-metric)")
    reported = reported / 100 if reported > 1 else reported
    n, k = len(v.y), int(v.correct.sum())
    if n == 0:
        raise InterventionError("no val item could be evaluated")
    test = binomtest(k, n, min(max(reported, 1e-9), 1 - 1e-9))
    ci = test.proportion_ci(0.95, method="wilson")
    after = k / n
    # The claim is "the number is computed wrongly", whichever way it errs.
    flipped = Intervention(it.id, it.hypothesis, it.side, it.description,
                           predicted=1 if after >= reported else -1)
    return InterventionResult(
        flipped, "val_acc", reported, after, n, n, ci.low - reported, ci.high - reported,
        float(test.pvalue), "exact binomial (recomputed accuracy vs the reported number)",
        notes=(f"{k} of {n} sampled val items correct in eval mode",),
    )


def _drop_near_twins(ctx: RunContext, v: _Val, it: Intervention) -> InterventionResult:
    from detective.checks.pipeline.train_val_leakage import (
        TrainValLeakage,
        leakage_measurement,
        run_settings,
    )
    from detective.core.progress import Progress

    # The twins the leakage check found, by its own search and its measurement of this run
    # (cached, under the settings --budget gave it): exact copies by pixel hash, near ones by
    # thumbnail cosine and by alignment over mirroring and small shifts (raw images when the
    # case has them). A cheaper search here would miss the shifted and mirrored copies the
    # check reports, and the intervention would test a different claim.
    check = TrainValLeakage()
    m = leakage_measurement(ctx, run_settings(ctx), Progress())
    twins = {p.val_index: p for p in check.duplicates(m)}
    twin = np.array([i in twins for i in v.indices], bool)
    exact = sum(twins[i].exact for i in v.indices if i in twins)
    aligned = sum(bool(twins[i].transform) for i in v.indices if i in twins)
    unchecked = len(set(v.indices)) - m.val_checked
    note = (
        f"{exact} exact copies, {int(twin.sum()) - exact} near twins ({aligned} of them "
        f"shifted or mirrored), {'raw images' if m.source == 'raw' else 'model inputs'}"
    )
    notes: tuple[str, ...] = (note, *m.problems[:3])
    if unchecked > 0:
        notes += (f"{unchecked} val items were not searched for a twin (kept)",)
    return drop_result(it, v.correct, twin, notes)


def _drop_corrupt(ctx: RunContext, v: _Val, it: Intervention, sample: int) -> InterventionResult:
    from detective.analysis.imageprops import blank_inputs

    blank = blank_inputs(v.x)
    # Items that cannot be read get no prediction from the user's pipeline: before, each one
    # counts as a failure of the split's accuracy; dropping them is part of the intervention.
    asked = ctx.sample_indices("val", sample)
    unreadable = sorted(set(asked) - set(v.indices))
    correct = np.concatenate([v.correct, np.zeros(len(unreadable), bool)])
    drop = np.concatenate([blank, np.ones(len(unreadable), bool)])
    notes: tuple[str, ...] = (f"{int(blank.sum())} blank/constant items",)
    if unreadable:
        problems = ctx.item_problems.get("val", {})
        first = problems.get(unreadable[0], "unreadable")
        notes += (
            f"{len(unreadable)} unreadable items (first: val item {unreadable[0]}: {first}) "
            "count as failures before, as the pipeline gives them no prediction",
        )
    return drop_result(it, correct, drop, notes)


def run_intervention(
    ctx: RunContext,
    intervention: Intervention | str,
    *,
    sample: int = 2000,
    progress: Progress | None = None,
) -> InterventionResult:
    """Measure val accuracy before and after the intervention on the same (≤ sample) items."""
    it = parse_intervention(intervention) if isinstance(intervention, str) else intervention
    if progress is not None:
        progress.log(f"intervention eval.{it.id}: {it.description} (≤ {sample} val items)")
        progress.update(0.0)
    if not ctx.has_split("val"):
        raise CaseError("the case has no 'val' split")
    v = _val(ctx, sample)
    runners: dict[str, Callable[[], InterventionResult]] = {
        "transform=train": lambda: _transform_train(ctx, v, it),
        "channels=swap": lambda: _channels_swap(ctx, v, it, sample),
        "normalize=measured": lambda: _normalize_measured(ctx, v, it, sample),
        "normalize=declared": lambda: _normalize_declared(ctx, v, it),
        "labels=remap": lambda: _labels_remap(ctx, v, it),
        "mode=train": lambda: _mode_train(ctx, v, it),
        "mode=eval": lambda: _mode_eval(ctx, v, it),
        "metric=recomputed": lambda: _metric_recomputed(ctx, v, it),
        "drop=near_twins": lambda: _drop_near_twins(ctx, v, it),
        "drop=corrupt": lambda: _drop_corrupt(ctx, v, it, sample),
    }
    result = runners[it.id]()
    if progress is not None:
        progress.update(1.0)
    return result


def to_experiment(result: InterventionResult, duration_s: float = 0.0) -> Experiment:
    """The experiment-log record of an intervention (same table as training-side experiments)."""
    r = result
    notes = (
        r.sentence,
        f"{r.test}: p = {r.p_value:.3g}; 95 % CI of Δ [{r.ci_low:+.4f}, {r.ci_high:+.4f}]",
        f"hypothesis tested: {r.intervention.hypothesis}",
        *r.notes,
    )
    return Experiment(
        name=r.intervention.label,
        changes=(r.intervention.label,),
        metric=r.metric,
        before=r.before,
        after=r.after,
        duration_s=round(duration_s, 3),
        verdict=r.effect.value,
        notes="; ".join(notes),
    )
