"""Training-side interventions: remove a suspected cause from the recipe, re-train briefly, compare.

Each intervention is one change of the experiments engine (`train.lr=x10`, `data.normalize=
measured`, `model.unfreeze=all`, …), so every one can be replayed by hand with
`detective experiment SESSION --set <label>`. It trains the case's recipe (baseline) and the
changed recipe side by side on the same bounded sample, with the same seeds and the same initial
weights (the baseline's initial state is cached per seed and loaded into the changed model when
the architecture matches), and evaluates both on the same val items.

The judgement is paired and conservative:

- per-item accuracy is averaged over the seeds (baseline and changed runs share seeds and initial
  weights) and the per-item differences are tested with the Wilcoxon signed-rank test: the items
  are the independent unit (pooling seeds × items as independent pairs would count every item
  once per seed and overstate the evidence); the 95 % CI is that of the mean item difference;
- the seeds' spread (the largest standard deviation over seeds of the baseline accuracy, the
  changed accuracy and their paired delta) is `min_delta`: an effect must exceed it;
- **a short run never makes an undertrained baseline look like a cause.** The changed run is
  also compared, item by item, with the user's own trained model on the same val items. The
  reference (`before`) is the better of the two (the baseline short runs or the user's model), and
  the p-value is the larger of the two tests (an intersection–union test): the change
  recovers only when it beats both significantly. On a clean, well-trained model a short run
  with LR ×10 is below the user's model, so it can never "recover" anything.
- **a change that only removes data is judged at an equal budget** (`Reference.EQUAL_BUDGET`:
  dropping flagged labels): the reference is the baseline short runs, and the changed runs must
  not fall significantly below the user's model. The user's longer run learns through label
  noise (and noisy val labels cap its metric), so only the same short recipe with and without
  the flagged labels shows what the noise costs; a clean model's undertrained short runs stay
  below the user's model and cannot pass;
- **an LR the change invalidates is re-chosen** (`lr_choices`): a second LR decade for the LR
  changes (a wrong LR is often off by more than ×10), ×1/×10 for normalized inputs; chosen by
  held-out *train* accuracy on seed 0, never on val, and named in the sentence and the replay;
- **a hopeless change stops after seed 0** (not above its reference): that can only turn a
  recovery into "no effect", never add one, and saves most of a slow case's cost.

Cost is bounded: at most `train_samples` fit items, `val_samples` val items, `max_epochs` epochs
per run, and a wall-time budget for the whole intervention. The runs of the first two seeds (one
seed cannot prove a recovery) get deadlines from the paces measured so far (`_ProofClock`): a run
that cannot meet its deadline gives up after a few steps and the intervention stops with the
measured reason. A later seed that cannot finish in what is left is not started, and a seed the
budget cut short is left out: the result is judged on the
seeds that ran in full when at least two did, and is inconclusive (`Moved.INCONCLUSIVE`, which
neither supports nor refutes) otherwise. Small train sets get more epochs so that a short
run takes at least `min_steps` optimizer steps. Baseline runs are cached per run, so the
interventions of one investigation share them.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from detective.core.case import CaseError
from detective.core.findings import ConsequenceMarker, InterventionOutcome, Moved, Side
from detective.core.ports import CacheKey
from detective.workflows.experiments import (
    ExperimentError,
    ProbeResult,
    Recipe,
    base_recipe,
    build_model,
    parse_change,
    stepped_parameters,
    train_probe,
)
from detective.workflows.interventions import (
    MIN_EFFECT,
    Intervention,
    InterventionError,
    InterventionResult,
)

if TYPE_CHECKING:
    import torch

    from detective.analysis.learning.recipe import ProbeData
    from detective.core.context import RunContext
    from detective.core.progress import Progress

TRAIN_SAMPLES = 1000  # fit items per short run, at most
VAL_SAMPLES = 1000  # val items every run is evaluated on, at most
MAX_EPOCHS = 5  # epochs of a short run (the case's own epochs when fewer)
MIN_STEPS = 150  # optimizer steps of a short run at least (small train sets get more epochs)
BUDGET_S = 300.0  # wall-time cap of one intervention (all its runs) when none is given
ALPHA = 0.05  # "significantly below the user's model" (Reference.EQUAL_BUDGET)
# Haybittle–Peto interim boundary: after two whole seeds, a recovery this significant (and
# above the seeds' spread) is decided without the remaining seeds. The boundary is strict enough
# that the final test keeps its nominal level; a recovery is the most expensive outcome (every
# seed runs), and on the benchmark's proven causes p is far below it after two seeds.
INTERIM_P = 1e-3


class Reference(StrEnum):
    """What the changed short runs must beat."""

    # The better of the baseline short runs and the user's model: for changes that can make a
    # short run converge faster (LR, init, capacity), which an undertrained baseline would
    # reward on a clean model.
    STRONGER = "stronger"
    # The baseline short runs (the same recipe and budget, the cause left in), and the changed
    # runs must not fall significantly below the user's model: for changes that remove training
    # data or signal and so can never speed a clean run up. Leaving out noisy labels is the
    # case: the user's longer run learns through the noise (val labels noisy alike cap the
    # metric), so only an equal-budget comparison shows what the noise costs; a clean model's
    # undertrained short runs stay below the user's model and cannot pass.
    EQUAL_BUDGET = "equal_budget"


@dataclass(frozen=True)
class TrainingIntervention(Intervention):
    """A training-side intervention; `id` is the full change, replayable as `--set <id>`."""

    phrase: str = ""  # what was changed, for the sentence
    # More capacity or more training improves almost any undertrained model, whatever else is
    # wrong: the judgement runs such a change last, only while the gap is not yet explained.
    generic: bool = False
    reference: Reference = Reference.STRONGER
    # LR scales the changed recipe is also tried with (seed 0), the best kept by held-out train
    # accuracy: a change of the input scale changes the first layer's effective step, and an
    # engineer who normalizes inputs re-chooses the LR. Never chosen on val (no selection bias
    # in the judged metric); the baseline keeps the user's LR.
    lr_choices: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        return self.id

    def first_seed_runs(self, baseline_cached: bool) -> float:
        """What its first seed costs, in baseline short runs: the changed run once per LR
        choice, as long as its epochs make it (`train.epochs=x2`: twice, and its first half is
        the baseline), plus the baseline's own run unless it is cached or a prefix."""
        return self._seed_runs(baseline_cached, max(1, len(self.lr_choices)))

    def proof_runs(self, baseline_cached: bool) -> float:
        """What the fewest seeds that can prove a recovery cost (two: one seed has no spread to
        exceed), in baseline short runs: the first seed's, then the second's (its changed run
        at the chosen LR, and its own baseline)."""
        return self.first_seed_runs(baseline_cached) + self._seed_runs(False, 1)

    def _seed_runs(self, baseline_cached: bool, changed_runs: int) -> float:
        from detective.workflows.experiments import Target, relative

        change = parse_change(self.id)
        length = 1.0
        if change.target is Target.TRAIN and change.key == "epochs":
            length = max(1.0, relative(change.value) or 1.0)
        baseline = 0.0 if baseline_cached or length > 1.0 else 1.0
        return baseline + changed_runs * length


def _ti(
    change: str, hypothesis: str, description: str, phrase: str, *, generic: bool = False,
    reference: Reference = Reference.STRONGER, lr_choices: tuple[float, ...] = (),
) -> TrainingIntervention:
    parse_change(change)  # a typo here is a bug at import time, not at a user's run
    return TrainingIntervention(
        change, hypothesis, Side.TRAIN, description, phrase=phrase, generic=generic,
        reference=reference, lr_choices=lr_choices,
    )


TRAIN_INTERVENTIONS: tuple[TrainingIntervention, ...] = (
    # A wrong LR is often off by more than one decade (AdamW at 0.3 from an SGD recipe is 150×
    # too high): the second decade is tried too, chosen on held-out train items.
    _ti("train.lr=x10", "lr_too_low",
        "the recipe's learning rate ×10 or ×100 (every optimizer group; the better on held-out "
        "train items)", "training with the learning rate ×10", lr_choices=(1.0, 10.0)),
    _ti("train.lr=/10", "lr_too_high",
        "the recipe's learning rate ÷10 or ÷100 (every optimizer group; the better on held-out "
        "train items)", "training with the learning rate ÷10", lr_choices=(1.0, 0.1)),
    _ti("train.lr=/10", "exploding_gradients",
        "the recipe's learning rate ÷10 or ÷100 (the better on held-out train items)",
        "training with the learning rate ÷10", lr_choices=(1.0, 0.1)),
    _ti("model.init=he", "exploding_gradients",
        "He (Kaiming-normal) weights and zero biases for every Linear/Conv layer",
        "re-initializing every layer with He init"),
    _ti("train.clip=1.0", "exploding_gradients",
        "gradients clipped to global norm 1.0 before every optimizer step",
        "clipping gradients to norm 1.0"),
    _ti("data.normalize=measured", "normalization_mismatch",
        "train and val inputs standardized per channel with the train items' mean/std (the LR "
        "re-chosen from ×1 and ×10 on held-out train items)",
        "training on inputs standardized per channel", lr_choices=(1.0, 10.0)),
    _ti("model.unfreeze=all", "frozen_parameters", "requires_grad on every parameter",
        "training with every parameter unfrozen"),
    # The case's own optimizer class and settings with the left-out parameters added: only the
    # cause changes. (AdamW at an SGD recipe's LR, `hook.optimizer=default`, changed the
    # optimizer too, and its failure refuted parameters that were never stepped.)
    _ti("hook.optimizer=all", "frozen_parameters",
        "the case's optimizer with a param group (its own defaults) for every trainable "
        "parameter its hook left out",
        "adding the parameters the optimizer left out"),
    _ti("model.activation=relu", "vanishing_gradients",
        "Sigmoid/Tanh modules swapped for ReLU, Linear/Conv layers He-initialized to match",
        "swapping Sigmoid/Tanh for ReLU (with He init)"),
    _ti("model.init=default", "vanishing_gradients", "reset_parameters() on every module",
        "re-initializing every layer with its default init"),
    _ti("model.activation=leaky_relu", "dead_units",
        "ReLU (and Sigmoid/Tanh) modules swapped for LeakyReLU(0.01)",
        "swapping ReLU for LeakyReLU"),
    _ti("model.init=default", "dead_units", "reset_parameters() on every module",
        "re-initializing every layer with its default init"),
    _ti("data.drop=label_issues", "label_noise",
        "train items whose label cleanlab flags (the label_issues check's code path) left out",
        "dropping the train items with flagged labels", reference=Reference.EQUAL_BUDGET),
    _ti("data.labels=raw", "label_misalignment",
        "train labels taken from raw_datasets() (each image with the label its source gives it)",
        "training on the labels raw_datasets() pairs with each image"),
    _ti("train.class_weight=balanced", "class_imbalance",
        "cross-entropy weighted by inverse class frequency of the train items",
        "weighting the loss by inverse class frequency"),
    _ti("transform.train=deterministic", "augmentation_breaks_labels",
        "the train transform with its random augmentation removed",
        "training without the augmentation"),
    _ti("hook.loss=probabilities", "wrong_loss",
        "outputs that are already probabilities trained with the NLL of their log (what "
        "cross-entropy on the logits before the softmax would be)",
        "training on the log of the model's probability outputs"),
    _ti("hook.loss=default", "wrong_loss",
        "the case's loss hook replaced by cross-entropy on the model's outputs",
        "training with plain cross-entropy instead of the case's loss"),
    _ti("model.width=x2", "underfitting", "the model's width keyword ×2",
        "training a model twice as wide", generic=True),
    _ti("train.epochs=x2", "underfitting", "twice the short run's epochs",
        "training twice as many epochs", generic=True),
)
# Overfitting is a description, not a cause (issue 13): regularization stays available by hand
# (`train.weight_decay=…`, `model.dropout=…`) but is no intervention here. On planted small-train
# cases a short regularized run never beat the user's model significantly, so it could only ever
# say "no effect".


def interventions_for(hypothesis: str) -> tuple[TrainingIntervention, ...]:
    """The training-side interventions that test `hypothesis`, cheapest first."""
    return tuple(i for i in TRAIN_INTERVENTIONS if i.hypothesis == hypothesis)


def parse_training_intervention(text: str, hypothesis: str | None = None) -> TrainingIntervention:
    """A label (`train.lr=x10`) → its intervention (the one for `hypothesis` when given)."""
    key = text.strip().replace(" ", "")
    for i in TRAIN_INTERVENTIONS:
        if i.id == key and (hypothesis is None or i.hypothesis == hypothesis):
            return i
    known = ", ".join(dict.fromkeys(i.id for i in TRAIN_INTERVENTIONS))
    raise InterventionError(f"{text!r}: unknown training intervention; known: {known}")


@dataclass(frozen=True)
class TrainingResult(InterventionResult):
    """An InterventionResult whose `before` is the stronger reference (see the module doc)."""

    baseline_acc: float = math.nan  # mean val accuracy of the baseline short runs
    model_acc: float = math.nan  # the user's trained model on the same val items
    p_baseline: float = 1.0  # McNemar: changed vs baseline short runs (pooled pairs)
    p_model: float = 1.0  # McNemar: changed vs the user's model (pooled pairs)
    seed_deltas: tuple[float, ...] = ()  # per seed: changed − baseline val accuracy
    cost_s: float = 0.0
    cut_short: bool = False  # the budget stopped a run: not comparable, inconclusive
    lr_scale: float = 1.0  # the LR scale chosen on held-out train items (lr_choices)
    # Reference.EQUAL_BUDGET: the changed runs are significantly below the user's model, so an
    # undertrained short run cannot speak for the cause: inconclusive.
    below_model: bool = False
    futile: bool = False  # stopped after seed 0: the change did not beat its reference
    # Against the user's model: the change does not beat the baseline short runs by more than
    # their seeds' spread (the intersection–union test's other half).
    within_spread: bool = False
    # The share of ReLU units that never fire on val, baseline and changed runs (mean over
    # seeds; nan without ReLUs): a consequence's marker (dead_units) the change may remove.
    dead_before: float = math.nan
    dead_after: float = math.nan

    @property
    def effect(self) -> Moved:
        # A run cut short, or short runs too undertrained to compare with the user's model, say
        # nothing about the cause: a "no effect" whose CI excludes a gain would refute it (a
        # budget-cut seed at 15 % once refuted an optimizer fix whose whole seed scored 94 %).
        if self.cut_short or self.below_model:
            return Moved.INCONCLUSIVE
        if self.futile or self.within_spread:
            return Moved.NO_EFFECT
        return super().effect

    @property
    def change(self) -> str:
        i = self.intervention
        phrase = i.phrase if isinstance(i, TrainingIntervention) and i.phrase else i.description
        if self.lr_scale == 1.0:
            return phrase
        if i.id.startswith("train.lr="):
            return f"training with the learning rate {_factor(i.id, self.lr_scale)}" + (
                " (chosen on held-out train items)")
        return phrase + (
            f" with the learning rate ×{self.lr_scale:g} (chosen on held-out train items)")

    def to_outcome(
        self, gap_share: float | None = None, cost_s: float | None = None
    ) -> InterventionOutcome:
        outcome = super().to_outcome(gap_share, self.cost_s if cost_s is None else cost_s)
        if math.isnan(self.dead_before) or math.isnan(self.dead_after):
            return outcome
        return replace(outcome, markers=(
            ConsequenceMarker("dead_units", "share of ReLU units that never fire on val",
                              round(self.dead_before, 4), round(self.dead_after, 4)),
        ))


# --- runs --------------------------------------------------------------------------------------
def _initial_state(ctx: RunContext, recipe: Recipe, seed: int) -> dict[str, torch.Tensor]:
    """The baseline's initial weights for `seed`, built once per run and shared by the changes."""

    def build() -> dict[str, torch.Tensor]:
        model = build_model(ctx, recipe, seed)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    return ctx.cache.get(CacheKey[dict]("ti_init", (recipe, seed)), build)


def _baseline_key(recipe: Recipe, data: ProbeData, seed: int) -> CacheKey[ProbeResult]:
    return CacheKey[ProbeResult]("ti_baseline", (recipe, data.fit_indices, len(data.y_val), seed))


_RUN_S = CacheKey[float]("ti_run_s", ())


def measured_run_s(ctx: RunContext) -> float | None:
    """Seconds the first whole baseline short run of this investigation took (None before
    one ran): what the next intervention's runs are costed at, instead of the plan's estimate."""
    return ctx.cache.peek(_RUN_S)


def _cached_baseline(ctx: RunContext, recipe: Recipe, data: ProbeData, seed: int) -> bool:
    return ctx.cache.peek(_baseline_key(recipe, data, seed)) is not None


def _baseline(
    ctx: RunContext, recipe: Recipe, data: ProbeData, seed: int, progress: Progress | None,
    max_seconds: float,
) -> ProbeResult:
    """A baseline short run, cached per (recipe, sample, seed): interventions share it."""
    key = _baseline_key(recipe, data, seed)
    found = ctx.cache.peek(key)
    if found is not None:
        return found
    result = train_probe(
        ctx, recipe, data, seed, progress, max_seconds=max_seconds,
        init_state=_initial_state(ctx, recipe, seed), item_correct=True, give_up_late=True,
    )
    if not result.stopped_early:  # a cut-short baseline is never reused
        ctx.cache.get(key, lambda: result)
    return result


def _prefix_pair(
    ctx: RunContext, base: Recipe, changed: Recipe, data: ProbeData, seed: int,
    progress: Progress | None, max_seconds: float,
) -> tuple[ProbeResult, ProbeResult] | None:
    """(baseline, changed) from one run, for a change that only adds epochs (`_is_prefix`,
    `train.epochs=x2`) while this seed's baseline is not cached yet: the baseline run is exactly
    the changed run's first `base.epochs` epochs (same seed, sample, initial weights and
    batches), measured at that step, so it is not trained twice. None when the run stopped
    before that step (the caller trains both)."""
    from detective.workflows.experiments import train_probe_with_prefix

    try:
        after, before = train_probe_with_prefix(
            ctx, changed, base.epochs, data, seed, progress, max_seconds,
            init_state=_initial_state(ctx, base, seed), item_correct=True, give_up_late=True,
        )
    except ExperimentError as e:
        raise InterventionError(str(e)) from e
    if not math.isnan(after.projected_s):
        return after, after  # given up: the caller's clock says why
    if before is None:  # the budget stopped the run before the baseline's length
        return None
    ctx.cache.get(_baseline_key(base, data, seed), lambda: before)
    return before, after


def _is_prefix(base: Recipe, changed: Recipe) -> bool:
    """The change only adds epochs: the baseline is the changed run's first part."""
    return (
        not base.fresh_augmentation
        and changed.epochs > base.epochs
        and replace(changed, epochs=base.epochs) == base
    )


@dataclass
class _ProofClock:
    """Deadlines for the short runs of the first two seeds: one seed has no spread to exceed,
    so only two can prove a recovery, and a seed that cannot count is not worth its seconds.

    Each run may take what the budget has left minus what the proof's later runs will cost at
    the paces measured so far; a later run of a kind not yet measured is taken to cost as much
    as this one. A run that cannot meet its deadline at its own measured pace gives up after a
    few steps (`give_up_late`) and the intervention stops with the measured reason. Measured,
    not planned: the plan's estimate of a ResNet short run is off by 2×, and a change's run
    need not cost its baseline's (unfreezing a frozen ResNet backbone costs 6× here)."""

    it: TrainingIntervention
    budget_s: float
    start: float
    # The proof's runs not yet started, in order: (which run, "baseline" | "changed").
    todo: list[tuple[str, str]]
    seconds: dict[str, float] = field(default_factory=dict)

    def left(self) -> float:
        return max(self.budget_s - (time.monotonic() - self.start), 0.0)

    def deadline(self, run: str, kind: str) -> float:
        """Seconds that run may take (all that is left for a run outside the proof)."""
        if (run, kind) not in self.todo:
            return self.left()
        self.todo.remove((run, kind))
        known = sum(self.seconds[k] for _, k in self.todo if k in self.seconds)
        unknown = sum(k not in self.seconds for _, k in self.todo)
        return max(self.left() - known, 0.0) / (1 + unknown)

    def ran(self, kind: str, r: ProbeResult) -> None:
        """Learn a finished run's cost; raise InterventionError when it gave up."""
        if not math.isnan(r.projected_s):
            rest = sum(self.seconds.get(k, r.projected_s) for _, k in self.todo)
            raise InterventionError(
                f"does not fit what the budget has left: its {kind} short run would take "
                f"≈ {r.projected_s:.0f} s here (timed over its first steps), the runs two seeds "
                f"need ≈ {r.projected_s + rest:.0f} s, "
                f"{self.left() + r.seconds:.0f} s were left; a larger `--budget MIN` or "
                f"`detective experiment CASE --set {self.it.id}` runs it"
            )
        if not r.stopped_early:
            self.seconds[kind] = max(self.seconds.get(kind, 0.0), r.seconds)


def _model_correct(ctx: RunContext, data: ProbeData) -> np.ndarray:
    """Which of the sampled val items the user's trained model gets right."""
    from detective.workflows.experiments import _item_correct

    def compute() -> np.ndarray:
        return np.asarray(_item_correct(ctx.model(), data.x_val, data.y_val), bool)

    # probe_data is cached for the run, so its identity names the sample (as model_fit does).
    return ctx.cache.get(CacheKey[np.ndarray]("ti_model_correct", (id(data),)), compute)


def _check_unfreezes(
    ctx: RunContext, it: TrainingIntervention, base: Recipe, changed: Recipe
) -> None:
    """A change that steps the same parameters tests nothing about frozen ones: parameters left
    out of the optimizer and parameters with requires_grad=False need different fixes, and a
    "no effect" from the wrong one would refute the frozen parameters the other one frees."""
    try:
        before, after = stepped_parameters(ctx, base), stepped_parameters(ctx, changed)
    except ExperimentError as e:
        raise InterventionError(str(e)) from e
    if after <= before:
        raise InterventionError(
            f"{it.phrase} steps the same {before:,} parameter values as the case's recipe: "
            "nothing to unfreeze this way"
        )


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def run_training_intervention(
    ctx: RunContext,
    intervention: TrainingIntervention | str,
    *,
    seeds: int = 3,
    budget_s: float | None = None,
    progress: Progress | None = None,
    train_samples: int = TRAIN_SAMPLES,
    val_samples: int = VAL_SAMPLES,
    max_epochs: int = MAX_EPOCHS,
    min_steps: int = MIN_STEPS,
) -> TrainingResult:
    """Baseline vs changed short runs over `seeds` seeds on the same items; a paired judgement.

    Raises InterventionError when the change cannot apply to this case (the message says why),
    CaseError when the case's code fails, Cancelled when `progress` is cancelled.
    """
    from detective.analysis.learning.recipe import probe_data

    it = (
        parse_training_intervention(intervention)
        if isinstance(intervention, str)
        else intervention
    )
    if seeds < 1:
        raise InterventionError("at least one seed")
    if not ctx.has_split("val"):
        raise CaseError("the case has no 'val' split")
    start = time.monotonic()
    budget = BUDGET_S if budget_s is None else float(budget_s)
    data = probe_data(ctx, train_samples, val_samples)
    if len(data.y_val) == 0 or len(data.y_fit) < 2:
        raise InterventionError("too few train or val items could be loaded for a short run")
    base = base_recipe(ctx, max_epochs)
    # Epochs, not steps, are what a change such as train.epochs=x2 scales: fix the baseline's
    # epochs so that it takes at least `min_steps` steps on this sample.
    per_epoch = math.ceil(len(data.y_fit) / max(2, min(base.batch_size, len(data.y_fit))))
    base = replace(base, epochs=max(base.epochs, math.ceil(min_steps / per_epoch)))
    if it.id == "transform.train=deterministic":
        # Compared with augmentation as training applies it (fresh draws every epoch), not with
        # the probe's one frozen draw: a frozen draw of a benign augmentation is a distortion.
        base = replace(base, fresh_augmentation=True)
    try:
        changed = base.apply(parse_change(it.id), ctx)
    except ExperimentError as e:
        raise InterventionError(str(e)) from e
    if it.hypothesis == "frozen_parameters":
        _check_unfreezes(ctx, it, base, changed)
    # The runs the first two seeds need, in the order they run; cached ones cost nothing.
    todo = [(f"lr×{c:g}", "changed") for c in it.lr_choices] if len(it.lr_choices) > 1 else []
    for seed in range(min(2, seeds)):
        if not _is_prefix(base, changed) and not _cached_baseline(ctx, base, data, seed):
            todo.append((str(seed), "baseline"))
        if not (seed == 0 and len(it.lr_choices) > 1):  # seed 0's: the chosen LR's, cached
            todo.append((str(seed), "changed"))
    run_s = measured_run_s(ctx)  # an earlier intervention's baseline: this one's is alike
    clock = _ProofClock(it, budget, start, todo, {} if run_s is None else {"baseline": run_s})
    chosen = 1.0
    if len(it.lr_choices) > 1:
        chosen = _choose_lr(ctx, it, changed, base, data, clock)
        changed = replace(changed, lr_scale=changed.lr_scale * chosen)
    if progress is not None:
        progress.log(
            f"intervention {it.label}: {it.description}; {seeds} seed(s) × 2 short runs of "
            f"≤ {max(base.epochs, changed.epochs)} epochs on {len(data.y_fit)} train items, "
            f"{len(data.y_val)} val items, budget {budget:.0f} s"
        )
        progress.update(0.0)
    runs = 2 * seeds
    before: list[ProbeResult] = []
    after: list[ProbeResult] = []
    pair_s = 0.0  # the longest seed so far: a seed that cannot finish in what is left is not run
    futile = False  # seed 0, run in full, did not beat its reference
    decided = 0  # seeds after which the interim boundary decided a recovery (0: not early)
    for k, seed in enumerate(range(seeds)):
        if k > 0 and pair_s > clock.left():
            break
        t_seed = time.monotonic()

        def span(j: int) -> Progress | None:
            return progress.span(j / runs, (j + 1) / runs) if progress is not None else None

        pair = _prefix_pair(
            ctx, base, changed, data, seed, span(2 * k), clock.deadline(str(seed), "changed")
        ) if _is_prefix(base, changed) and not _cached_baseline(ctx, base, data, seed) else None
        if pair is not None:  # the baseline is the changed run's first half
            clock.ran("changed", pair[1])
            before.append(pair[0])
            after.append(pair[1])
        else:
            # The baseline first: once its cost is known, the changed run's deadline holds the
            # one cost no plan knows (unfreezing, more width) to what the proof can afford.
            # (Cached, it is free; the other interventions share it.)
            before.append(_baseline(ctx, base, data, seed, span(2 * k),
                                    clock.deadline(str(seed), "baseline")))
            clock.ran("baseline", before[-1])
            if not before[-1].stopped_early:
                ctx.cache.get(_RUN_S, lambda: before[-1].seconds)
            try:
                after.append(train_probe(
                    ctx, changed, data, seed, span(2 * k + 1),
                    max_seconds=clock.deadline(str(seed), "changed"),
                    init_state=_initial_state(ctx, base, seed), item_correct=True,
                    give_up_late=True,
                ))
            except ExperimentError as e:
                raise InterventionError(str(e)) from e
            clock.ran("changed", after[-1])
        # A run reused from the cache (seed 0's changed run, from the LR choice) cost nothing
        # here but will cost its own seconds for the next seed.
        own = after[-1].seconds + (0.0 if pair is not None else before[-1].seconds)
        pair_s = max(pair_s, time.monotonic() - t_seed, own)
        if k == 0 and seeds > 1 and _futile(it, before[0], after[0], _model_correct(ctx, data)):
            # A hopeless change: its first pair already says "no gain" (unless it was cut short).
            futile = not (before[0].stopped_early or after[0].stopped_early)
            break
        if 0 < k < seeds - 1 and _decided(it, before, after, _model_correct(ctx, data)):
            decided = len(before)
            break
    # A seed the budget cut short is no measurement: judge on the seeds that ran in full, if at
    # least two did (one seed has no spread to exceed); otherwise the result is inconclusive.
    whole = [i for i, (b, a) in enumerate(zip(before, after, strict=True))
             if not (b.stopped_early or a.stopped_early)]
    missing = (decided or seeds) - len(whole)  # seeds the interim boundary spared are not
    if missing and not futile and len(whole) >= min(2, seeds):
        before, after = [before[i] for i in whole], [after[i] for i in whole]
    result = _judge(it, before, after, _model_correct(ctx, data), time.monotonic() - start)
    if futile:
        result = replace(result, futile=True, notes=(
            *(n for n in result.notes if not n.startswith("one seed:")),
            f"stopped after seed 0 of {seeds}: the changed run ({after[0].val_acc:.1%}) did not "
            "beat its reference, so no number of further seeds could make it a recovery worth "
            "its cost",
        ))
    elif decided:
        result = replace(result, notes=(
            *result.notes,
            f"decided after {decided} of {seeds} seeds: p = {result.p_value:.2g} is below the "
            f"interim boundary {INTERIM_P:g} (Haybittle–Peto), so the other seed(s) were not run",
        ))
    elif missing and len(whole) < min(2, seeds):
        result = replace(result, cut_short=True, notes=(
            *result.notes,
            f"the budget ran {len(whole)} of {seeds} seeds in full: too few to judge, "
            "inconclusive",
        ))
    elif missing:
        result = replace(result, notes=(
            *result.notes,
            f"judged on the {len(whole)} of {seeds} seeds the budget ran in full",
        ))
    if chosen != 1.0:
        result = replace(result, lr_scale=chosen, notes=(
            *result.notes,
            f"learning rate ×{chosen:g} of the change chosen from "
            f"{', '.join(f'×{c:g}' for c in it.lr_choices)} by held-out train accuracy (seed 0);"
            f" replay with `{_replay(it.id, chosen)}`",
        ))
    if progress is not None:
        progress.update(1.0)
    return result


def _factor(change: str, chosen: float) -> str:
    """`train.lr=/10` with a further ×0.1 → "÷100"; `train.lr=x10` with ×10 → "×100"."""
    from detective.workflows.experiments import relative

    total = (relative(change.split("=", 1)[1]) or 1.0) * chosen
    return f"×{total:g}" if total >= 1 else f"÷{1 / total:g}"


def _replay(change: str, chosen: float) -> str:
    if change.startswith("train.lr="):
        return f"--set train.lr={_factor(change, chosen).replace('×', 'x').replace('÷', '/')}"
    return f"--set {change} --set train.lr=x{chosen:g}"


def _futile(
    it: TrainingIntervention, base: ProbeResult, changed: ProbeResult, model_ok: np.ndarray
) -> bool:
    """Seed 0's changed run is not above its reference (the baseline run; also the user's model
    unless the reference is an equal budget). Stopping then can only turn a recovery into "no
    effect", never the reverse: it saves the other seeds' cost and adds no false alarm."""
    ref = base.val_acc
    if it.reference is Reference.STRONGER:
        ref = max(ref, float(model_ok.mean()))
    return not changed.val_acc > ref


def _decided(
    it: TrainingIntervention, before: list[ProbeResult], after: list[ProbeResult],
    model_ok: np.ndarray,
) -> bool:
    """The whole seeds so far already prove a recovery beyond the interim boundary: significant
    at INTERIM_P against its reference, above the seeds' spread and at least the smallest effect
    that counts. Only a recovery stops early; anything else runs every seed. Never at an equal
    budget: its guard (the changed runs not significantly below the user's model) is a test
    that more seeds make stricter, so stopping early would only loosen it."""
    if it.reference is Reference.EQUAL_BUDGET or any(
        r.stopped_early for r in (*before, *after)
    ):
        return False
    r = _judge(it, before, after, model_ok, 0.0)
    return (
        r.effect is Moved.RECOVERS
        and r.p_value < INTERIM_P
        and abs(r.delta) >= MIN_EFFECT
    )


def _choose_lr(
    ctx: RunContext, it: TrainingIntervention, changed: Recipe, base: Recipe, data: ProbeData,
    clock: _ProofClock,
) -> float:
    """The LR scale among `it.lr_choices` whose seed-0 changed run scores best on the held-out
    train items (train accuracy when there are none); the first on a tie. The winner's run is
    the seed-0 run the judgement reuses (same recipe, seed and initial weights)."""
    best, best_score = it.lr_choices[0], -math.inf
    init = _initial_state(ctx, base, 0)
    for scale in it.lr_choices:
        try:
            r = train_probe(
                ctx, replace(changed, lr_scale=changed.lr_scale * scale), data, 0,
                max_seconds=clock.deadline(f"lr×{scale:g}", "changed"), init_state=init,
                item_correct=True, give_up_late=True,
            )
        except ExperimentError as e:
            raise InterventionError(str(e)) from e
        clock.ran("changed", r)
        score = r.heldout_acc if not math.isnan(r.heldout_acc) else r.train_acc
        if score > best_score + 1e-9:
            best, best_score = scale, score
    return best


@dataclass(frozen=True)
class _ItemTest:
    p: float
    ci_low: float
    ci_high: float
    fixed: int  # items right more often after than before
    broken: int


def _item_test(ref: np.ndarray, after: np.ndarray) -> _ItemTest:
    """Paired over items: per-item accuracy averaged over seeds, Wilcoxon signed-rank on the
    differences. Items are the independent unit — pooling seeds × items as independent pairs
    would count each item once per seed and overstate the evidence."""
    from scipy.stats import wilcoxon

    d = after - ref
    nonzero = d[d != 0]
    p = float(wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0
    n = len(d)
    se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    mean = float(d.mean())
    return _ItemTest(p, max(-1.0, mean - 1.96 * se), min(1.0, mean + 1.96 * se),
                     int((d > 0).sum()), int((d < 0).sum()))


def _judge(
    it: TrainingIntervention,
    before: list[ProbeResult],
    after: list[ProbeResult],
    model_ok: np.ndarray,
    cost_s: float,
) -> TrainingResult:
    b_items = np.stack([np.asarray(r.val_correct, float) for r in before]).mean(0)
    a_items = np.stack([np.asarray(r.val_correct, float) for r in after]).mean(0)
    vs_base = _item_test(b_items, a_items)
    vs_model = _item_test(model_ok.astype(float), a_items)
    b_acc = [r.val_acc for r in before]
    a_acc = [r.val_acc for r in after]
    deltas = [a - b for a, b in zip(a_acc, b_acc, strict=True)]
    # Each comparison must exceed its own seeds' spread. Against the baseline short runs that is
    # the spread of both sides and of their paired deltas; the user's model is one fixed model,
    # so against it only the changed runs vary. Using the baseline's spread there would let an
    # unstable cause (a double softmax: baseline seeds 79–95 %) hide its own fix.
    base_spread = max(_spread(b_acc), _spread(a_acc), _spread(deltas))
    model_acc = float(model_ok.mean())
    baseline_acc = statistics.fmean(b_acc)
    after_acc = statistics.fmean(a_acc)
    equal_budget = it.reference is Reference.EQUAL_BUDGET
    use_model = model_acc > baseline_acc and not equal_budget
    min_delta = _spread(a_acc) if use_model else base_spread
    # Intersection–union: against the model the change must also beat the baseline by more
    # than the baseline comparison's spread.
    within_spread = use_model and not after_acc - baseline_acc > base_spread
    ref = vs_model if use_model else vs_base
    p_value = vs_base.p if equal_budget else max(vs_base.p, vs_model.p)
    below_model = equal_budget and after_acc < model_acc and vs_model.p < ALPHA
    cut = any(r.stopped_early for r in (*before, *after))
    notes = [
        f"baseline short runs {baseline_acc:.1%} (seeds {', '.join(f'{a:.1%}' for a in b_acc)}),"
        f" changed {statistics.fmean(a_acc):.1%} (seeds {', '.join(f'{a:.1%}' for a in a_acc)})"
        f", your trained model {model_acc:.1%} on the same {len(model_ok)} val items",
        f"Wilcoxon changed vs baseline p = {vs_base.p:.3g}, vs your model p = {vs_model.p:.3g};"
        + (" the baseline decides (an equal budget), and the changed runs must not fall "
           "significantly below your model;" if equal_budget else " the larger decides,")
        + f" an effect must exceed the seeds' spread {min_delta * 100:.1f} points"
        + (f" (and {base_spread * 100:.1f} points over the baseline short runs)"
           if use_model else ""),
        "reference: the baseline short runs at an equal budget (the change removes data, it "
        "cannot speed a run up)" if equal_budget else
        f"reference: {'your trained model' if use_model else 'the baseline short runs'}"
        " (the stronger)",
    ]
    if below_model:
        notes.append(
            f"the changed runs ({after_acc:.1%}) stay significantly below your trained model "
            f"({model_acc:.1%}): short runs too undertrained to speak for the cause, inconclusive"
        )
    if within_spread:
        notes.append(
            f"the changed runs beat the baseline short runs by "
            f"{(after_acc - baseline_acc) * 100:.1f} points, within that comparison's seed "
            "spread: no effect"
        )
    if len(before) == 1:
        notes.append("one seed: no seed spread to exceed; the McNemar tests alone decide")
    if cut:
        notes.append("the budget cut at least one run short: runs not comparable, inconclusive")
    return TrainingResult(
        it,
        "val_acc",
        model_acc if use_model else baseline_acc,
        after_acc,
        len(model_ok),
        len(model_ok),
        ref.ci_low,
        ref.ci_high,
        p_value,
        "Wilcoxon signed-rank on per-item accuracy averaged over seeds, vs the baseline short "
        "runs at an equal budget (and not significantly below the user's model)"
        if equal_budget else
        "Wilcoxon signed-rank on per-item accuracy averaged over seeds, vs the baseline short "
        "runs and vs the user's model (intersection–union: the larger p)",
        fixed=ref.fixed,
        broken=ref.broken,
        notes=tuple(notes),
        seeds=len(before),
        min_delta=min_delta,
        baseline_acc=baseline_acc,
        model_acc=model_acc,
        p_baseline=vs_base.p,
        p_model=vs_model.p,
        seed_deltas=tuple(deltas),
        cost_s=round(cost_s, 3),
        cut_short=cut,
        below_model=below_model,
        within_spread=within_spread,
        dead_before=_mean_finite([r.dead_units for r in before]),
        dead_after=_mean_finite([r.dead_units for r in after]),
    )


def _mean_finite(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan
