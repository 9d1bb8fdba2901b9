"""The built-in shared measurements and their providers (see `detective.core.shared`).

Each is unfiltered evidence: the checks that read it judge it with their own thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from detective.analysis.erroranalysis import SliceStat
from detective.core.shared import provides

if TYPE_CHECKING:
    import numpy as np

    from detective.core.context import RunContext
    from detective.core.progress import Progress


# --- slice statistics of the eval split -------------------------------------------------------


@dataclass(frozen=True)
class SliceSettings:
    bins: int = 5  # quantile bins per image property


@dataclass(frozen=True)
class SliceStats:
    """Every candidate slice of the eval split against the rest (no significance filter)."""

    split: str
    n: int
    errors: int
    tested: int
    stats: tuple[SliceStat, ...]  # by errors, then p-value


@provides(SliceStats, "slice_stats", SliceSettings())
def slice_statistics(ctx: RunContext, progress: Progress) -> SliceStats:
    from detective.analysis.erroranalysis import candidate_slices, eval_collection, slice_stats

    col = eval_collection(ctx, progress)
    slices = candidate_slices(col, SliceSettings().bins)
    stats = slice_stats(col, slices)
    return SliceStats(col.split, col.n, int((~col.correct).sum()), len(slices), tuple(stats))


# --- train-mode vs eval-mode predictions ------------------------------------------------------


@dataclass(frozen=True)
class EvalModeSettings:
    sample: int = 256  # eval items predicted in eval and train mode (at most --sample)
    # With a reported metric to explain, the items it was computed on: the whole split up to
    # --sample, in the split's order (an eval loop rarely shuffles; batch-norm in train mode
    # depends on which items share a batch).
    explain_sample: int = 2000
    # The user's loop's batch size is unknown: train mode is measured at the case's eval batch
    # and at these sizes common in eval loops, each over `draws` seeded passes.
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    draws: int = 3


@dataclass(frozen=True)
class TrainModeAccuracy:
    """Train-mode accuracy at one batch size, over several seeded passes in the split's order."""

    batch: int
    accuracy: float  # mean over the draws
    draw_sd: float  # estimated sd of ONE pass's accuracy (dropout), from per-item agreement
    draws: int


@dataclass(frozen=True)
class EvalModeStats:
    split: str
    n: int
    stuck_in_training: tuple[str, ...]  # dropout / batch-norm modules still training after eval()
    stochastic_modules: int  # dropout + batch-norm modules in the model
    eval_repeat_disagreement: float  # two eval-mode passes, same images, different seeds
    train_eval_disagreement: float
    eval_accuracy: float
    train_mode_accuracy: float
    reported_metric: float | None
    small_batch_train_mode_accuracy: float | None = None  # batch of 8, as many eval loops use
    # Measured only when the reported metric is not the eval-mode accuracy: train-mode accuracy
    # per candidate batch size, in the split's order, with its pass-to-pass spread.
    train_mode_sweep: tuple[TrainModeAccuracy, ...] = ()
    split_size: int = 0  # items in the split (the reported metric's population)


def draw_sd(correct: np.ndarray) -> float:
    """The sd of one pass's accuracy from R passes over the same items (rows: passes): dropout
    makes each item right with some probability q_i, independently across items, so one pass's
    accuracy has variance sum q_i (1 - q_i) / n², estimated without bias with R / (R - 1)."""
    import numpy as np

    r, n = correct.shape
    if r < 2 or n == 0:
        return 0.0
    q = correct.mean(0)
    return float(np.sqrt((q * (1 - q)).sum() * r / (r - 1)) / n)


def reported_fraction(reported: float) -> float:
    return reported / 100 if reported > 1 else reported


@provides(EvalModeStats, "eval_mode_stats", EvalModeSettings(), version=2)
def eval_mode_statistics(ctx: RunContext, progress: Progress) -> EvalModeStats:
    """On a copy of the model: eval-mode predictions twice, train-mode once; and, when a
    reported metric differs from eval-mode accuracy, train mode at each candidate batch size."""
    import numpy as np
    import torch

    from detective.analysis.erroranalysis import eval_split

    st = EvalModeSettings()
    progress.update(0.0)
    split = eval_split(ctx)
    reported = ctx.options.reported_metric
    size = len(ctx.dataset(split))
    cap = st.explain_sample if reported is not None else st.sample
    idx = ctx.sample_indices(split, min(ctx.options.sample, cap))
    x, y, _ = ctx.tensors(split, idx)
    model = ctx.model_copy()  # never touch the shared model: train() below changes BN stats
    kinds = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm)
    stochastic = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    model.eval()
    stuck = tuple(n or type(m).__name__ for n, m in stochastic if m.training)
    bs = ctx.case.eval_settings.batch_size

    def predict(seed: int, size: int = bs) -> torch.Tensor:
        torch.manual_seed(seed)
        out = []
        with torch.no_grad():
            for start in range(0, len(x), size):
                progress.check_cancelled()
                logits = model(x[start : start + size])
                if isinstance(logits, tuple | list):
                    logits = logits[0]
                out.append(logits.argmax(1).cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)

    yc = y.cpu()
    a = predict(0)
    progress.update(0.2)
    b = predict(1)
    progress.update(0.4)
    model.train()
    t = predict(2)
    n = len(y)
    eval_acc = float((a == yc).float().mean()) if n else 0.0
    sweep: list[TrainModeAccuracy] = []
    if reported is not None and stochastic and n and not stuck:
        # Only a number away from eval-mode accuracy needs explaining (a clean run pays nothing).
        p = min(max(eval_acc, 1e-3), 1 - 1e-3)
        fpc = max(0.0, 1 - n / size) if size else 0.0
        away = abs(reported_fraction(reported) - eval_acc) > 0.01 + 3 * float(
            np.sqrt(p * (1 - p) / n * fpc)
        )
        sizes = list(dict.fromkeys((bs, *st.batch_sizes))) if away else []
        for k, size_b in enumerate(sizes):
            runs = []
            failed = False
            for d in range(st.draws):
                try:
                    runs.append((predict(100 * size_b + d, size_b) == yc).numpy())
                except (RuntimeError, ValueError):  # e.g. batch-norm on a 1-item last batch
                    failed = True
                    break
                if d == 1 and (runs[0] == runs[1]).all():
                    break  # deterministic (batch-norm only, no dropout): more passes agree
            if not failed:
                c = np.stack(runs).astype(float)
                sweep.append(TrainModeAccuracy(size_b, float(c.mean()), draw_sd(c), len(runs)))
            progress.update(0.5 + 0.5 * (k + 1) / len(sizes))
    small = next((s.accuracy for s in sweep if s.batch == 8), None)
    if small is None and reported is not None:
        small = float((predict(3, 8) == yc).float().mean()) if n else 0.0
    progress.update(1.0)
    return EvalModeStats(
        split=split,
        n=n,
        stuck_in_training=stuck[:20],
        stochastic_modules=len(stochastic),
        eval_repeat_disagreement=float((a != b).float().mean()) if n else 0.0,
        train_eval_disagreement=float((a != t).float().mean()) if n else 0.0,
        eval_accuracy=eval_acc,
        train_mode_accuracy=float((t == yc).float().mean()) if n else 0.0,
        reported_metric=reported,
        small_batch_train_mode_accuracy=small if n else None,
        train_mode_sweep=tuple(sweep),
        split_size=size,
    )


# --- label-issue scores (confident learning on a linear probe) --------------------------------


@dataclass(frozen=True)
class LabelIssueSettings:
    folds: int = 5
    agree_prob: float = 0.5  # probe prob. of the suggested label for "label probably wrong"


@dataclass(frozen=True)
class Candidate:
    index: int
    given: int
    suggested: int
    given_prob: float  # out-of-sample probe probability of the given label
    suggested_prob: float
    model_pred: int
    model_confidence: float
    kind: str  # PROBABLY_WRONG | HARD


@dataclass(frozen=True)
class PairNoise:
    """Confident learning's estimate for one class pair: items of class `true` labelled `given`."""

    true: int
    given: int
    count: int  # confident-joint count (probe confident it is `true`, labelled `given`)
    rate: float  # estimated share of class `true` labelled `given` (calibrated joint)
    reverse_rate: float  # the same for `given` labelled `true`: a hard pair confuses both ways
    share_of_noise: float  # this pair's share of all off-diagonal joint mass


@dataclass(frozen=True)
class SplitIssues:
    split: str
    examined: int
    probe_accuracy: float
    issues: int
    probably_wrong: int
    hard: int
    flagged: tuple[int, ...]  # dataset indices of every issue, most likely wrong first
    wrong_indices: tuple[int, ...]  # those judged "label probably wrong"
    candidates: tuple[Candidate, ...]  # the top ones, for the report
    pairs: tuple[PairNoise, ...] = ()  # the largest off-diagonal pairs, largest rate first


@dataclass(frozen=True)
class LabelIssueScores:
    classes: tuple[str, ...]
    splits: tuple[SplitIssues, ...]
    gallery: str
    note: str = ""


@provides(LabelIssueScores, "label_issue_scores", LabelIssueSettings())
def label_issue_scores(ctx: RunContext, progress: Progress) -> LabelIssueScores:
    """The eval split and a train sample (the eval split's result stands if train fails)."""
    from detective.analysis.erroranalysis import eval_collection, train_collection
    from detective.checks.error_analysis.label_issues import analyse_split
    from detective.core.progress import Cancelled

    s = LabelIssueSettings()
    col = eval_collection(ctx, progress.span(0.0, 0.4))
    splits = [analyse_split(col, s.folds, s.agree_prob)]
    progress.update(0.5)
    note = ""
    if col.split != "train":
        try:
            train = train_collection(ctx, progress.span(0.5, 0.9))
            splits.append(analyse_split(train, s.folds, s.agree_prob))
        except Cancelled:
            raise
        except Exception as e:  # the eval split's result still stands
            note = f"train sample not analysed: {type(e).__name__}: {e}"
    return LabelIssueScores(tuple(ctx.case.classes), tuple(splits), "", note)
