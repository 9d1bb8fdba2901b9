"""The built-in shared measurements and their providers (see `detective.core.shared`).

Each is unfiltered evidence: the checks that read it judge it with their own thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from detective.analysis.erroranalysis import SliceStat
from detective.core.shared import provides

if TYPE_CHECKING:
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
    sample: int = 256  # eval items predicted four times (at most --sample)


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


@provides(EvalModeStats, "eval_mode_stats", EvalModeSettings())
def eval_mode_statistics(ctx: RunContext, progress: Progress) -> EvalModeStats:
    """On a copy of the model: eval-mode predictions twice, train-mode once (and at batch 8 when
    a reported metric is to be explained)."""
    import torch

    from detective.analysis.erroranalysis import eval_split

    progress.update(0.0)
    split = eval_split(ctx)
    idx = ctx.sample_indices(split, min(ctx.options.sample, EvalModeSettings().sample))
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
                out.append(logits.argmax(1))
        return torch.cat(out)

    a = predict(0)
    progress.update(0.3)
    b = predict(1)
    progress.update(0.6)
    model.train()
    t = predict(2)
    small = predict(3, 8) if ctx.options.reported_metric is not None else None
    progress.update(1.0)
    n = len(y)
    return EvalModeStats(
        split=split,
        n=n,
        stuck_in_training=stuck[:20],
        stochastic_modules=len(stochastic),
        eval_repeat_disagreement=float((a != b).float().mean()) if n else 0.0,
        train_eval_disagreement=float((a != t).float().mean()) if n else 0.0,
        eval_accuracy=float((a == y).float().mean()) if n else 0.0,
        train_mode_accuracy=float((t == y).float().mean()) if n else 0.0,
        reported_metric=ctx.options.reported_metric,
        small_batch_train_mode_accuracy=(
            float((small == y).float().mean()) if small is not None and n else None
        ),
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
