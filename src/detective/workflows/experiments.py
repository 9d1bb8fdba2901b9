"""The experiment log's engine: change one thing in the case's recipe, re-measure, record.

An experiment applies one named change (`train.lr=1e-3`, `train.weight_decay=0`,
`model.width=64`, `model.dropout=0.5`, `model.freeze=backbone`, `aug.shift=1`,
`transform.train=deterministic`, `hook.optimizer=default`) to a copy of the case's recipe,
trains the baseline and the changed recipe side by side with the same seeds and budget on a
bounded sample, and records the metric before and after. Two changes at once are refused unless
the caller insists (then the record says confounded). With several seeds the paired spread
decides whether the delta is real or "within noise".

Probes train on tensors loaded once (`detective.analysis.learning.recipe.probe_data`) through the
one recipe runner (`run_recipe`) with the case's optimizer/loss hooks (or AdamW/cross-entropy); a
case's own `train()` hook is not used for these short runs. Nothing is
written to the session until an experiment has finished, so cancelling never leaves half a
record. Checks queue records with `record(ctx, ...)`; the engine saves them beside the finding.
"""

from __future__ import annotations

import inspect
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from detective.core.case import CaseError
from detective.core.ports import CacheKey
from detective.core.session import Experiment

if TYPE_CHECKING:
    import torch

    from detective.analysis.learning.recipe import ProbeData
    from detective.core.context import RunContext
    from detective.core.progress import Progress
    from detective.core.session import Session



class ExperimentError(Exception):
    """The experiment cannot run as asked; the message says why, for the user."""


class Target(StrEnum):
    TRAIN = "train"  # a TRAIN setting: lr, weight_decay, epochs, batch_size
    MODEL = "model"  # a keyword of fresh_model()/model(); dropout/freeze have fallbacks
    AUG = "aug"  # tensor-level augmentation added in the probe: shift=N pixels
    TRANSFORM = "transform"  # transform.train=deterministic (the case's augmentation removed)
    HOOK = "hook"  # hook.optimizer=default / hook.loss=default: bypass the case's hook


_TRAIN_KEYS = ("lr", "weight_decay", "epochs", "batch_size")


@dataclass(frozen=True)
class Change:
    target: Target
    key: str
    value: Any

    @property
    def label(self) -> str:
        return f"{self.target.value}.{self.key}={self.value}"


def parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_change(text: str) -> Change:
    """`target.key=value`, e.g. `train.lr=1e-3`, `model.width=64`, `aug.shift=1`."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ExperimentError(f"{text!r}: a change is target.key=value, e.g. train.lr=1e-3")
    lhs, value = text.split("=", 1)
    target, key = lhs.strip().split(".", 1)
    try:
        t = Target(target)
    except ValueError:
        known = ", ".join(t.value for t in Target)
        raise ExperimentError(f"{text!r}: unknown target {target!r}; known: {known}") from None
    v = parse_value(value)
    if t is Target.TRAIN and key not in _TRAIN_KEYS:
        raise ExperimentError(f"{text!r}: train.{key} is not one of {', '.join(_TRAIN_KEYS)}")
    if t is Target.TRAIN and not isinstance(v, int | float):
        raise ExperimentError(f"{text!r}: train.{key} needs a number")
    if t is Target.AUG and (key != "shift" or not isinstance(v, int) or v < 0):
        raise ExperimentError(f"{text!r}: the augmentation change is aug.shift=N (pixels, N ≥ 0)")
    if t is Target.TRANSFORM and (key != "train" or v != "deterministic"):
        raise ExperimentError(f"{text!r}: the transform change is transform.train=deterministic")
    if t is Target.HOOK and (key not in ("optimizer", "loss") or v != "default"):
        raise ExperimentError(
            f"{text!r}: hook changes are hook.optimizer=default, hook.loss=default"
        )
    return Change(t, key, v)


@dataclass(frozen=True)
class Recipe:
    """What a probe trains with: the case's TRAIN settings (epochs bounded) and the overrides."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    model_kwargs: tuple[tuple[str, Any], ...] = ()
    shift: int = 0
    deterministic_train: bool = False
    default_hooks: tuple[str, ...] = ()
    freeze_backbone: bool = False
    dropout: float | None = None  # set on existing nn.Dropout modules when no kwarg exists

    def apply(self, change: Change, ctx: RunContext) -> Recipe:
        if change.target is Target.TRAIN:
            value = int(change.value) if change.key in ("epochs", "batch_size") else change.value
            return replace(self, **{change.key: value})
        if change.target is Target.AUG:
            return replace(self, shift=int(change.value))
        if change.target is Target.TRANSFORM:
            return replace(self, deterministic_train=True)
        if change.target is Target.HOOK:
            return replace(self, default_hooks=(*self.default_hooks, change.key))
        if change.key == "freeze":
            if change.value not in ("backbone", "none"):
                raise ExperimentError("model.freeze is 'backbone' or 'none'")
            return replace(self, freeze_backbone=change.value == "backbone")
        accepted = model_keywords(ctx)
        if change.key in accepted:
            kwargs = dict(self.model_kwargs)
            kwargs[change.key] = change.value
            return replace(self, model_kwargs=tuple(sorted(kwargs.items())))
        if change.key == "dropout":
            return replace(self, dropout=float(change.value))
        raise ExperimentError(
            f"the case's fresh_model()/model() accepts no {change.key!r} keyword "
            f"(accepts: {', '.join(sorted(accepted)) or 'none'})"
        )


def base_recipe(ctx: RunContext, max_epochs: int) -> Recipe:
    s = ctx.case.train_settings
    return Recipe(max(1, min(s.epochs, max_epochs)), s.batch_size, s.lr, s.weight_decay)


def model_hook(ctx: RunContext) -> str:
    return "fresh_model" if ctx.case.has("fresh_model") else "model"


def model_keywords(ctx: RunContext) -> dict[str, Any]:
    """Keyword parameters (name → default) of the hook that builds the model."""
    fn = getattr(ctx.case.module, model_hook(ctx), None)
    try:
        params = inspect.signature(fn).parameters.values() if fn else ()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty
    }


@dataclass(frozen=True)
class Budget:
    epochs: int
    train_samples: int
    val_samples: int
    runs: int
    max_seconds: float

    def describe(self) -> str:
        return (
            f"budget: {self.runs} run(s) × {self.epochs} epoch(s) on {self.train_samples} train "
            f"images, evaluated on {self.val_samples} val images; wall-time cap "
            f"{self.max_seconds:.0f} s"
        )


@dataclass(frozen=True)
class ProbeResult:
    train_acc: float  # on the images it trained on
    heldout_acc: float  # held-out images of the train split (train pipeline); nan if none
    val_acc: float
    val_loss: float
    parameters: int
    seconds: float
    stopped_early: bool = False  # the wall-time cap cut training short

    @property
    def gap(self) -> float:
        return self.train_acc - self.val_acc

    def metric(self, name: str) -> float:
        return {
            "val_acc": self.val_acc,
            "train_acc": self.train_acc,
            "gap": self.gap,
            "val_loss": self.val_loss,
            "heldout_acc": self.heldout_acc,
        }[name]


def _deterministic_train(ctx: RunContext, data: ProbeData) -> tuple[torch.Tensor, torch.Tensor]:
    """The fit images again, through the train transform with its augmentation switched off."""
    import torch

    from detective.analysis.augment import deterministic

    if not (ctx.case.has("raw_datasets") and ctx.case.has("transforms")):
        raise ExperimentError("transform.train=deterministic needs raw_datasets() and transforms()")
    def load() -> torch.Tensor:
        tf, _ = deterministic(ctx.case.transforms()["train"])
        raw = ctx.raw_dataset("train")
        xs = [tf(raw[i][0]) for i in data.fit_indices]
        return torch.stack(xs).float().to(ctx.device)

    key = CacheKey[torch.Tensor]("probe_det", tuple(data.fit_indices))
    return ctx.cache.get(key, load), data.y_fit


def build_model(ctx: RunContext, recipe: Recipe, seed: int) -> torch.nn.Module:
    import torch

    from detective.analysis.torchutil import reset_parameters

    torch.manual_seed(seed)
    kwargs = dict(recipe.model_kwargs)
    hook = model_hook(ctx)
    if hook == "fresh_model":
        model = ctx.case.call("fresh_model", **kwargs) if kwargs else ctx.fresh_model()
    else:
        model = reset_parameters(ctx.case.call("model", **kwargs)) if kwargs else ctx.fresh_model()
    if not isinstance(model, torch.nn.Module):
        raise CaseError(f"{hook}() returned {type(model).__name__}, expected torch.nn.Module")
    model = model.to(ctx.device)
    if recipe.dropout is not None:
        drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        if not drops:
            raise ExperimentError("the model has no Dropout layer and no dropout keyword")
        for m in drops:
            m.p = recipe.dropout
    if recipe.freeze_backbone:
        from detective.analysis.torchutil import last_linear

        head = last_linear(model)
        if head is None:
            raise ExperimentError("the model has no nn.Linear head")
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
    return model


def _optimizer(ctx: RunContext, model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    import torch

    settings = ctx.case.train_settings
    if ctx.case.has("optimizer") and "optimizer" not in recipe.default_hooks:
        opt = ctx.case.call("optimizer", model)
        for group in opt.param_groups:  # only the values the experiment changed
            if recipe.lr != settings.lr:
                group["lr"] = recipe.lr
            if recipe.weight_decay != settings.weight_decay:
                group["weight_decay"] = recipe.weight_decay
        return opt
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def _shift(x: torch.Tensor, pixels: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ±pixels (replicate padding), one offset per image."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if pixels <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pixels, pixels, pixels, pixels), mode="replicate")
    dy = torch.randint(0, 2 * pixels + 1, (b,), generator=gen).tolist()
    dx = torch.randint(0, 2 * pixels + 1, (b,), generator=gen).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def accuracy(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) in eval mode; (nan, nan) on an empty set."""
    from detective.analysis.learning.recipe import evaluate_tensors

    loss, acc = evaluate_tensors(model, x, y, batch)
    model.eval()
    return acc, loss


def train_probe(
    ctx: RunContext,
    recipe: Recipe,
    data: ProbeData,
    seed: int,
    progress: Progress | None = None,
    fraction: float = 1.0,
    max_seconds: float = math.inf,
    min_steps: int = 0,
) -> ProbeResult:
    """Train a fresh model with `recipe` on (a `fraction` of) the fit images; measure it.

    A probe that coincides with one already trained in this run (same recipe, sample, seed,
    share and step floor: the capacity check's base run is the regularization check's seed-0
    baseline) is reused, unless the wall-time guard cut that one short."""
    key = CacheKey[ProbeResult]("train_probe", (recipe, id(data), seed, fraction, min_steps))
    try:
        hash(key)
    except TypeError:  # an unhashable model keyword: no reuse
        return _train_probe(ctx, recipe, data, seed, progress, fraction, max_seconds, min_steps)
    hit = ctx.cache.peek(key)
    if hit is not None and not hit.stopped_early:
        if progress is not None:
            progress.log(f"reusing an identical short run ({hit.seconds:.1f} s)")
            progress.update(1.0)
        return hit
    result = _train_probe(ctx, recipe, data, seed, progress, fraction, max_seconds, min_steps)
    if hit is None and not result.stopped_early:
        ctx.cache.get(key, lambda: result)
    return result


def _train_probe(
    ctx: RunContext,
    recipe: Recipe,
    data: ProbeData,
    seed: int,
    progress: Progress | None,
    fraction: float,
    max_seconds: float,
    min_steps: int,
) -> ProbeResult:
    import torch

    from detective.analysis.learning.recipe import run_recipe
    from detective.analysis.training import make_loss

    start = time.monotonic()
    model = build_model(ctx, recipe, seed)
    opt = _optimizer(ctx, model, recipe)
    loss_fn = (
        torch.nn.CrossEntropyLoss() if "loss" in recipe.default_hooks else make_loss(ctx)
    )
    x, y = (
        _deterministic_train(ctx, data) if recipe.deterministic_train else (data.x_fit, data.y_fit)
    )
    gen = torch.Generator().manual_seed(seed)
    n = max(2, int(round(len(y) * fraction)))
    subset = torch.randperm(len(y), generator=gen)[:n].to(y.device)
    x, y = x[subset], y[subset]
    bs = max(2, min(recipe.batch_size, n))
    steps_per_epoch = n // bs + (1 if n % bs >= 2 else 0)  # a last single item is skipped
    # Probes on small subsets still get `min_steps` updates (a learning curve compares sizes at
    # a comparable optimisation budget, not at a handful of steps).
    epochs = max(recipe.epochs, math.ceil(min_steps / steps_per_epoch))
    cut_short = [False]

    def over_time(_step: int, _loss: float) -> bool:
        cut_short[0] = time.monotonic() - start > max_seconds
        return cut_short[0]

    shift = recipe.shift

    def augment(xb: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return _shift(xb, shift, g)

    run_recipe(
        ctx,
        model,
        x,
        y,
        steps=epochs * steps_per_epoch,
        progress=progress,
        batch_size=bs,
        stop=over_time,
        prefer_hook=False,
        generator=gen,
        optimizer=opt,
        loss_fn=loss_fn,
        augment=augment if shift > 0 else None,
        drop_last=False,
    )
    train_acc, _ = accuracy(model, x, y)
    held_acc, _ = accuracy(model, data.x_held, data.y_held)
    val_acc, val_loss = accuracy(model, data.x_val, data.y_val)
    params = sum(p.numel() for p in model.parameters())
    return ProbeResult(
        train_acc, held_acc, val_acc, val_loss, params, time.monotonic() - start, cut_short[0]
    )


# --- the user's model on the probe sample ---------------------------------------------------
@dataclass(frozen=True)
class ModelFit:
    train_acc: float
    val_acc: float
    train_n: int
    val_n: int

    @property
    def gap(self) -> float:
        return self.train_acc - self.val_acc


def model_fit(ctx: RunContext, data: ProbeData) -> ModelFit:
    """The user's trained model's accuracy on the train sample (all of it) and the val sample."""
    import torch

    def fit() -> ModelFit:
        model = ctx.model()
        x = torch.cat([data.x_fit, data.x_held])
        y = torch.cat([data.y_fit, data.y_held])
        tr, _ = accuracy(model, x, y)
        va, _ = accuracy(model, data.x_val, data.y_val)
        return ModelFit(tr, va, len(y), len(data.y_val))

    return ctx.cache.get(CacheKey[ModelFit]("model_fit", (id(data),)), fit)


# --- experiments ------------------------------------------------------------------------------
INCONCLUSIVE = "inconclusive (cut short)"


class Outcome(StrEnum):
    IMPROVED = "improved"
    WORSE = "worse"
    WITHIN_NOISE = "within noise"


def binomial_noise(p: float, n: int) -> float:
    """Sampling standard error of an accuracy p measured on n items (floored at one item).

    Used as the noise floor of a paired comparison on the same n items: a smaller difference
    cannot be told from which items happened to be in the sample."""
    if n <= 0 or math.isnan(p):
        return math.nan
    return math.sqrt(max(p * (1 - p), 1.0 / n) / n)


def outcome(deltas: Sequence[float], p: float, n_eval: int, higher_is_better: bool = True) -> str:
    """A paired delta is real when it exceeds 2× its noise: the seed spread of the paired
    deltas (standard error) when there are several seeds, and never less than the binomial
    sampling error of an accuracy on n_eval items."""
    mean = statistics.fmean(deltas)
    noise = binomial_noise(p, n_eval)
    if len(deltas) > 1:
        noise = max(noise, statistics.stdev(deltas) / math.sqrt(len(deltas)))
    if abs(mean) <= 2 * noise:
        return Outcome.WITHIN_NOISE.value
    better = mean > 0 if higher_is_better else mean < 0
    return (Outcome.IMPROVED if better else Outcome.WORSE).value


@dataclass(frozen=True)
class ExperimentRun:
    """A finished experiment: the log record plus every probe, for the check that asked."""

    experiment: Experiment
    before: tuple[ProbeResult, ...]
    after: tuple[ProbeResult, ...]


def run_experiment(
    ctx: RunContext,
    changes: Sequence[str | Change],
    *,
    name: str | None = None,
    seeds: Sequence[int] = (0,),
    metric: str = "val_acc",
    max_epochs: int = 5,
    train_samples: int = 1000,
    val_samples: int = 1000,
    max_seconds: float = 120.0,
    min_steps: int = 0,
    allow_confounded: bool = False,
    baseline: Recipe | None = None,
    baseline_results: Sequence[ProbeResult] | None = None,
    progress: Progress | None = None,
) -> ExperimentRun:
    """Train the case's recipe and the changed recipe with the same seeds; compare `metric`.

    Refuses more than one change unless `allow_confounded`. `baseline_results` reuses already
    measured baseline probes (same seeds, same order). Raises `Cancelled` when stopped, before
    anything is recorded.
    """
    parsed = [c if isinstance(c, Change) else parse_change(c) for c in changes]
    if not parsed:
        raise ExperimentError("an experiment needs one change")
    if len(parsed) > 1 and not allow_confounded:
        raise ExperimentError(
            f"{len(parsed)} changes at once ({', '.join(c.label for c in parsed)}): their effects "
            "could not be told apart. Run one change per experiment, or insist "
            "(allow_confounded / --allow-confounded) to record it as confounded."
        )
    if not seeds:
        raise ExperimentError("at least one seed")
    from detective.analysis.learning.recipe import probe_data

    data = probe_data(ctx, train_samples, val_samples)
    base = baseline or base_recipe(ctx, max_epochs)
    changed = base
    for c in parsed:
        changed = changed.apply(c, ctx)
    if baseline_results is not None and len(baseline_results) != len(seeds):
        raise ExperimentError("baseline_results must hold one probe per seed")
    runs = len(seeds) * (1 if baseline_results is not None else 2)
    budget = Budget(
        max(base.epochs, changed.epochs), len(data.y_fit), len(data.y_val), runs, max_seconds
    )
    if progress is not None:
        progress.log(f"experiment {name or parsed[0].label}: {budget.describe()}")
    per_run = max_seconds / runs
    start = time.monotonic()
    before: list[ProbeResult] = list(baseline_results or [])
    after: list[ProbeResult] = []
    done = 0

    def span() -> Progress | None:
        return progress.span(done / runs, (done + 1) / runs) if progress is not None else None

    for seed in seeds:
        if baseline_results is None:
            before.append(
                train_probe(ctx, base, data, seed, span(), max_seconds=per_run, min_steps=min_steps)
            )
            done += 1
        after.append(
            train_probe(ctx, changed, data, seed, span(), max_seconds=per_run, min_steps=min_steps)
        )
        done += 1
    b = [r.metric(metric) for r in before]
    a = [r.metric(metric) for r in after]
    deltas = [y - x for x, y in zip(b, a, strict=True)]
    higher_is_better = metric not in ("gap", "val_loss")
    # The binomial noise floor is that of an accuracy on the val sample, whatever the metric.
    p_before = statistics.fmean(r.val_acc for r in before)
    verdict = outcome(deltas, p_before, len(data.y_val), higher_is_better)
    stopped = any(r.stopped_early for r in (*before, *after))
    notes = [budget.describe()]
    if stopped:  # runs of unequal length are not comparable
        verdict = INCONCLUSIVE
        notes.append("the wall-time cap cut at least one run short: inconclusive")
    exp = Experiment(
        name=name or parsed[0].label,
        changes=tuple(c.label for c in parsed),
        metric=metric,
        before=statistics.fmean(b),
        after=statistics.fmean(a),
        seeds=tuple(seeds),
        after_spread=statistics.stdev(a) if len(a) > 1 else None,
        duration_s=round(time.monotonic() - start, 3),
        confounded=len(parsed) > 1,
        verdict=verdict,
        notes="; ".join(notes),
        before_spread=statistics.stdev(b) if len(b) > 1 else None,
        gap_before=statistics.fmean(r.gap for r in before),
        gap_after=statistics.fmean(r.gap for r in after),
    )
    return ExperimentRun(exp, tuple(before), tuple(after))


def record(ctx: RunContext, experiment: Experiment) -> None:
    """Queue a finished experiment; the engine saves it with the finding of the check."""
    ctx.experiments.put(experiment)


def flush(session: Session, ctx: RunContext, finding_id: int | None) -> list[int]:
    """Save queued experiments to the session, linked to `finding_id`."""
    pending = ctx.experiments.drain()
    ids = []
    for e in pending:
        linked = (*e.finding_ids, finding_id) if finding_id else e.finding_ids
        ids.append(session.add_experiment(replace(e, finding_ids=linked)))
    return ids
