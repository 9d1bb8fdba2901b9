"""The experiment log's engine: change one thing in the case's recipe, re-measure, record.

An experiment applies one named change (`train.lr=1e-3`, `train.weight_decay=0`,
`model.width=64`, `model.dropout=0.5`, `model.freeze=backbone`, `aug.shift=1`,
`transform.train=deterministic`, `hook.optimizer=default|all`; relative values `train.lr=x10`,
`train.lr=/10`, `train.epochs=x2`, `model.width=x2`; and the training-side interventions'
`train.clip=1.0`, `train.class_weight=balanced`, `data.normalize=measured`,
`data.drop=label_issues`, `data.labels=raw`, `model.unfreeze=all`,
`model.activation=relu|leaky_relu`,
`model.init=default|he`) to a copy of the case's recipe,
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
    HOOK = "hook"  # hook.optimizer=default / hook.loss=default: bypass the case's hook;
    # hook.optimizer=all: the case's optimizer over every trainable parameter
    DATA = "data"  # data.normalize=measured, data.drop=label_issues: the probe's train data


_TRAIN_KEYS = ("lr", "weight_decay", "epochs", "batch_size", "clip", "class_weight")
_DATA_CHANGES = {"normalize": "measured", "drop": "label_issues", "labels": "raw"}
# Structural model changes for models whose hook has no such keyword (like model.dropout).
_MODEL_CHANGES = {
    "unfreeze": ("all",),
    "activation": ("relu", "leaky_relu"),
    "init": ("default", "he"),
}


def relative(value: Any) -> float | None:
    """The factor of a relative value: `x10` → 10, `/10` → 0.1, `*2` → 2; None when absolute."""
    if not isinstance(value, str) or len(value) < 2 or value[0] not in "x*/":
        return None
    try:
        factor = float(value[1:])
    except ValueError:
        return None
    if not math.isfinite(factor) or factor <= 0:
        return None
    return 1.0 / factor if value[0] == "/" else factor


@dataclass(frozen=True)
class Change:
    target: Target
    key: str
    value: Any

    @property
    def label(self) -> str:
        return f"{self.target.value}.{self.key}={self.value}"


def probability_nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """NLL of log-outputs when the outputs are probabilities; cross-entropy when they are not
    (then the model already emits logits and this change removes nothing)."""
    import torch

    sums = out.detach().sum(1)
    if bool((out.detach() >= 0).all()) and bool(((sums - 1).abs() < 1e-3).all()):
        return torch.nn.functional.nll_loss(torch.log(out.clamp_min(1e-12)), y)
    return torch.nn.functional.cross_entropy(out, y)


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
    if t is Target.TRAIN and key == "class_weight":
        if v not in ("balanced", "none"):
            raise ExperimentError(f"{text!r}: train.class_weight is 'balanced' or 'none'")
    elif t is Target.TRAIN and key == "clip":
        if not isinstance(v, int | float) or not v > 0:
            raise ExperimentError(f"{text!r}: train.clip needs a positive gradient-norm bound")
    elif t is Target.TRAIN and not isinstance(v, int | float) and relative(v) is None:
        raise ExperimentError(
            f"{text!r}: train.{key} needs a number or a factor of the recipe's value "
            "(x10, /10)"
        )
    if t is Target.DATA and _DATA_CHANGES.get(key) != v:
        known = ", ".join(f"data.{k}={w}" for k, w in _DATA_CHANGES.items())
        raise ExperimentError(f"{text!r}: data changes are {known}")
    if t is Target.AUG and (key != "shift" or not isinstance(v, int) or v < 0):
        raise ExperimentError(f"{text!r}: the augmentation change is aug.shift=N (pixels, N ≥ 0)")
    if t is Target.TRANSFORM and (key != "train" or v != "deterministic"):
        raise ExperimentError(f"{text!r}: the transform change is transform.train=deterministic")
    if t is Target.HOOK and not (
        key in ("optimizer", "loss") and v == "default"
        or (key, v) in (("loss", "probabilities"), ("optimizer", "all"))
    ):
        raise ExperimentError(
            f"{text!r}: hook changes are hook.optimizer=default, hook.optimizer=all, "
            "hook.loss=default, hook.loss=probabilities"
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
    lr_scale: float = 1.0  # train.lr=x10: every group's LR of the case's optimizer, scaled
    clip: float | None = None  # gradient-norm clipping before each optimizer step
    class_weight: bool = False  # cross-entropy weighted by inverse class frequency
    normalize: bool = False  # inputs standardized per channel with the fit items' statistics
    drop_label_issues: bool = False  # fit items cleanlab flags are left out
    raw_labels: bool = False  # data.labels=raw: fit labels as raw_datasets() pairs them
    unfreeze: bool = False  # requires_grad on every parameter
    activation: str | None = None  # Sigmoid/Tanh → ReLU ("relu"); also ReLU → LeakyReLU
    fresh_augmentation: bool = False  # train on fresh augmented draws, not one frozen draw
    reset_init: str | None = None  # "default": reset_parameters() on every module; "he"
    # hook.loss=probabilities: outputs that are already probabilities (a softmax in forward)
    # trained with the NLL of their log — what cross-entropy on the logits before it would be.
    probability_loss: bool = False
    # hook.optimizer=all: the case's optimizer, plus a param group (the optimizer's own defaults)
    # for every trainable parameter its hook left out — only the stepped set changes.
    optimize_all: bool = False

    def apply(self, change: Change, ctx: RunContext) -> Recipe:
        if change.target is Target.TRAIN:
            return self._apply_train(change)
        if change.target is Target.DATA:
            if change.key == "normalize":
                return replace(self, normalize=True)
            if change.key == "labels":
                if not ctx.case.has("raw_datasets"):
                    raise ExperimentError(
                        "data.labels=raw needs the case's raw_datasets() (images and labels as "
                        "the source pairs them)"
                    )
                return replace(self, raw_labels=True)
            return replace(self, drop_label_issues=True)
        if change.target is Target.AUG:
            return replace(self, shift=int(change.value))
        if change.target is Target.TRANSFORM:
            return replace(self, deterministic_train=True)
        if change.target is Target.HOOK:
            if change.value == "probabilities":
                return replace(self, probability_loss=True)
            if change.value == "all":
                return replace(self, optimize_all=True)
            return replace(self, default_hooks=(*self.default_hooks, change.key))
        if change.key == "freeze":
            if change.value not in ("backbone", "none"):
                raise ExperimentError("model.freeze is 'backbone' or 'none'")
            return replace(self, freeze_backbone=change.value == "backbone")
        accepted = model_keywords(ctx)
        if change.key in accepted:
            kwargs = dict(self.model_kwargs)
            value = change.value
            factor = relative(value)
            if factor is not None:  # model.width=x2: relative to the hook's current value
                current = kwargs.get(change.key, accepted[change.key])
                if isinstance(current, bool) or not isinstance(current, int | float):
                    raise ExperimentError(
                        f"model.{change.key}={value}: the hook's default "
                        f"{current!r} is not a number to scale"
                    )
                value = current * factor
                value = max(1, round(value)) if isinstance(current, int) else value
            kwargs[change.key] = value
            return replace(self, model_kwargs=tuple(sorted(kwargs.items())))
        if change.key == "dropout":
            return replace(self, dropout=float(change.value))
        if change.key in _MODEL_CHANGES:
            if change.value not in _MODEL_CHANGES[change.key]:
                allowed = " or ".join(repr(v) for v in _MODEL_CHANGES[change.key])
                raise ExperimentError(f"model.{change.key} is {allowed}")
            if change.key == "unfreeze":
                return replace(self, unfreeze=True, freeze_backbone=False)
            if change.key == "activation":
                return replace(self, activation=str(change.value))
            return replace(self, reset_init=str(change.value))
        raise ExperimentError(
            f"the case's fresh_model()/model() accepts no {change.key!r} keyword "
            f"(accepts: {', '.join(sorted(accepted)) or 'none'})"
        )


    def _apply_train(self, change: Change) -> Recipe:
        key, value = change.key, change.value
        if key == "class_weight":
            return replace(self, class_weight=value == "balanced")
        if key == "clip":
            return replace(self, clip=float(value))
        factor = relative(value)
        if key == "lr" and factor is not None:  # relative to whatever LR the recipe uses
            return replace(self, lr_scale=self.lr_scale * factor)
        if factor is not None:
            value = getattr(self, key) * factor
        if key in ("epochs", "batch_size"):
            value = max(1, int(round(value)))
        return replace(self, **{key: value})


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
    val_correct: tuple[bool, ...] = ()  # per val item, when asked (item_correct=True)
    # The share of ReLU units that never fire on the val items (item_correct runs; nan without
    # ReLUs): whether a change removed the dead units its cause produces.
    dead_units: float = math.nan
    # A run asked to give up when late (`give_up_late`) that stopped after a few steps: at its
    # measured pace it would have taken this many seconds, more than its cap. nan otherwise.
    projected_s: float = math.nan

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


# Fresh augmented draws: one per epoch (as real training), reused cyclically past this many
# transformed images in all (a bounded cost: ~10 epochs of 1000 items).
AUGMENTED_IMAGES = 10_000


def _augmented_copies(ctx: RunContext, data: ProbeData, copies: int) -> torch.Tensor:
    """[copies, N, ...]: the fit images through the train transform, `copies` independent
    seeded draws, so a short run sees fresh augmentation each epoch as real training does (the
    probe's own tensors hold one frozen draw, which a benign augmentation turns into a
    distortion that removing it would "fix")."""
    import torch

    if not (ctx.case.has("raw_datasets") and ctx.case.has("transforms")):
        raise ExperimentError("fresh augmentation needs raw_datasets() and transforms()")

    def load() -> torch.Tensor:
        tf = ctx.case.transforms()["train"]
        raw = ctx.raw_dataset("train")
        draws = []
        for c in range(copies):
            torch.manual_seed(1000 + c)
            draws.append(torch.stack([tf(raw[i][0]) for i in data.fit_indices]).float())
        return torch.stack(draws).to(ctx.device)

    key = CacheKey[torch.Tensor]("probe_aug", (tuple(data.fit_indices), copies))
    return ctx.cache.get(key, load)


def build_model(
    ctx: RunContext,
    recipe: Recipe,
    seed: int,
    init_state: dict[str, torch.Tensor] | None = None,
) -> torch.nn.Module:
    """A fresh model for `recipe`, seeded. `init_state` (a baseline's initial weights) is loaded
    when the architecture matches, so baseline and change start from the same point."""
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
    if init_state is not None and _same_shapes(model, init_state):
        model.load_state_dict(init_state)
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
    if recipe.unfreeze:
        for p in model.parameters():
            p.requires_grad_(True)
    if recipe.activation is not None and not swap_activations(model, recipe.activation):
        kinds = "Sigmoid/Tanh" if recipe.activation == "relu" else "ReLU/Sigmoid/Tanh"
        raise ExperimentError(
            f"model.activation={recipe.activation}: the model has no {kinds} module to "
            "swap (activations called as functions, e.g. F.relu, cannot be swapped)"
        )
    if recipe.activation == "relu":  # ReLU with its matching init, as one would swap it
        torch.manual_seed(seed)
        he_init(model)
    if recipe.reset_init is not None:
        torch.manual_seed(seed)
        if recipe.reset_init == "he":
            he_init(model)
        else:
            reset_parameters(model)
    return model


def _same_shapes(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = model.state_dict()
    return own.keys() == state.keys() and all(
        own[k].shape == state[k].shape for k in own
    )


def he_init(model: torch.nn.Module) -> None:
    """He (Kaiming-normal, fan-in, ReLU) weights and zero biases for every Linear/Conv layer:
    the init that keeps a deep ReLU stack's signal from shrinking layer by layer."""
    import torch

    layers = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, layers):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    m.bias.zero_()


def swap_activations(model: torch.nn.Module, to: str) -> int:
    """Replace activation modules in place: Sigmoid/Tanh → ReLU (`relu`), or Sigmoid/Tanh/ReLU →
    LeakyReLU(0.01) (`leaky_relu`, for dead ReLUs). Returns how many were replaced."""
    import torch

    saturating: tuple[type[torch.nn.Module], ...] = (torch.nn.Sigmoid, torch.nn.Tanh)
    swap = saturating if to == "relu" else (*saturating, torch.nn.ReLU)
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in swap:
                new = torch.nn.ReLU() if to == "relu" else torch.nn.LeakyReLU(0.01)
                setattr(parent, name, new)
                count += 1
    return count


def stepped_parameters(ctx: RunContext, recipe: Recipe) -> int:
    """How many parameter elements `recipe`'s optimizer steps (in its param groups and
    requires_grad): what an unfreeze or an optimizer over the model's own parameters changes."""
    model = build_model(ctx, recipe, 0)
    opt = _optimizer(ctx, model, recipe)
    seen = {id(p): p for g in opt.param_groups for p in g["params"] if p.requires_grad}
    return sum(p.numel() for p in seen.values())


def _optimizer(ctx: RunContext, model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    import torch

    settings = ctx.case.train_settings
    if ctx.case.has("optimizer") and "optimizer" not in recipe.default_hooks:
        opt = ctx.case.call("optimizer", model)
        if recipe.optimize_all:
            _add_left_out(opt, model)
        for group in opt.param_groups:  # only the values the experiment changed
            if recipe.lr != settings.lr:
                group["lr"] = recipe.lr
            group["lr"] = group["lr"] * recipe.lr_scale
            if recipe.weight_decay != settings.weight_decay:
                group["weight_decay"] = recipe.weight_decay
    else:
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            params, lr=recipe.lr * recipe.lr_scale, weight_decay=recipe.weight_decay
        )
    if recipe.clip is not None:
        bound = recipe.clip
        clipped = [p for g in opt.param_groups for p in g["params"]]

        def clip(*_: object) -> None:
            torch.nn.utils.clip_grad_norm_(clipped, bound)

        opt.register_step_pre_hook(clip)
    return opt


def _add_left_out(opt: torch.optim.Optimizer, model: torch.nn.Module) -> None:
    """Give the optimizer a param group for the trainable parameters its hook left out. The
    group takes the optimizer's own defaults (torch's add_param_group), so the class, LR and
    settings stay the case's: only which parameters are stepped changes."""
    if not hasattr(opt, "add_param_group") or not hasattr(opt, "param_groups"):
        raise ExperimentError(
            "hook.optimizer=all needs the optimizer() hook to return a torch.optim.Optimizer"
        )
    covered = {id(p) for g in opt.param_groups for p in g["params"]}
    left_out = [p for p in model.parameters() if p.requires_grad and id(p) not in covered]
    if left_out:
        opt.add_param_group({"params": left_out})


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
    init_state: dict[str, torch.Tensor] | None = None,
    item_correct: bool = False,
    give_up_late: bool = False,
) -> ProbeResult:
    """Train a fresh model with `recipe` on (a `fraction` of) the fit images; measure it.

    `init_state`: start from these weights when the architecture matches (a paired comparison);
    `item_correct`: also keep which val items the trained model gets right (a paired test);
    `give_up_late`: stop after a few steps when the run's measured pace says it cannot finish
    within `max_seconds` (for a caller to whom a cut-short run is worth nothing).

    A probe that coincides with one already trained in this run (same recipe, sample, seed,
    share, step floor and initial weights: the capacity check's base run is the regularization
    check's seed-0 baseline) is reused, unless the wall-time guard cut that one short."""
    init_key = None if init_state is None else id(init_state)  # cached per run: ids are stable
    key = CacheKey[ProbeResult](
        "train_probe", (recipe, id(data), seed, fraction, min_steps, init_key, item_correct)
    )

    def train() -> ProbeResult:
        return _train_probe(ctx, recipe, data, seed, progress, fraction, max_seconds, min_steps,
                            init_state, item_correct, give_up_late=give_up_late)

    try:
        hash(key)
    except TypeError:  # an unhashable model keyword: no reuse
        return train()
    hit = ctx.cache.peek(key)
    if hit is not None and not hit.stopped_early:
        if progress is not None:
            progress.log(f"reusing an identical short run ({hit.seconds:.1f} s)")
            progress.update(1.0)
        return hit
    result = train()
    if hit is None and not result.stopped_early:
        ctx.cache.get(key, lambda: result)
    return result


def train_probe_with_prefix(
    ctx: RunContext,
    recipe: Recipe,
    prefix_epochs: int,
    data: ProbeData,
    seed: int,
    progress: Progress | None = None,
    max_seconds: float = math.inf,
    init_state: dict[str, torch.Tensor] | None = None,
    item_correct: bool = False,
    give_up_late: bool = False,
) -> tuple[ProbeResult, ProbeResult | None]:
    """Train `recipe` and also measure the model after its first `prefix_epochs` epochs.

    A run of the same recipe with fewer epochs (same seed, sample and initial weights, no
    augmentation whose draws depend on the epochs) performs exactly the first steps of this
    one, so the measurement at that step IS that shorter run: `train.epochs=x2` gets its
    baseline without training it again. (run, prefix) — prefix None when the wall-time cap
    stopped the run before it."""
    if recipe.fresh_augmentation:
        raise ExperimentError("fresh augmented draws depend on the epochs: no shared prefix")
    prefix: list[ProbeResult] = []
    run = _train_probe(ctx, recipe, data, seed, progress, 1.0, max_seconds, 0, init_state,
                       item_correct, prefix=(prefix_epochs, prefix), give_up_late=give_up_late)
    return run, (prefix[0] if prefix else None)


def _train_probe(
    ctx: RunContext,
    recipe: Recipe,
    data: ProbeData,
    seed: int,
    progress: Progress | None,
    fraction: float,
    max_seconds: float,
    min_steps: int,
    init_state: dict[str, torch.Tensor] | None,
    item_correct: bool,
    prefix: tuple[int, list[ProbeResult]] | None = None,
    give_up_late: bool = False,
) -> ProbeResult:
    import torch

    from detective.analysis.learning.hooks import ActivationStats, dead_share
    from detective.analysis.learning.recipe import run_recipe
    from detective.analysis.training import make_loss

    start = time.monotonic()
    model = build_model(ctx, recipe, seed, init_state)
    opt = _optimizer(ctx, model, recipe)
    x, y = (
        _deterministic_train(ctx, data) if recipe.deterministic_train else (data.x_fit, data.y_fit)
    )
    x_held, x_val = data.x_held, data.x_val
    aug = None
    if recipe.fresh_augmentation and not recipe.deterministic_train:
        per_draw = max(1, len(data.fit_indices))
        aug = _augmented_copies(
            ctx, data, max(1, min(recipe.epochs, AUGMENTED_IMAGES // per_draw))
        )
    y_val = data.y_val
    if recipe.raw_labels:
        y, y_val = raw_labels(ctx, data)
    if recipe.drop_label_issues:
        keep = label_issue_keep(ctx, data)
        x, y = x[keep], y[keep]
        aug = aug[:, keep] if aug is not None else None
    if recipe.normalize:  # statistics of the items the run trains on, applied to every split
        mean, std = channel_stats(x)
        x, x_held, x_val = ((t - mean) / std for t in (x, x_held, x_val))
        aug = (aug - mean) / std if aug is not None else None
    if recipe.class_weight:
        loss_fn: Any = torch.nn.CrossEntropyLoss(weight=balanced_weights(y, ctx.case.num_classes))
    elif recipe.probability_loss:
        loss_fn = probability_nll
    elif "loss" in recipe.default_hooks:
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        loss_fn = make_loss(ctx)
    gen = torch.Generator().manual_seed(seed)
    n = max(2, int(round(len(y) * fraction)))
    subset = torch.randperm(len(y), generator=gen)[:n].to(y.device)
    x, y = x[subset], y[subset]
    bs = max(2, min(recipe.batch_size, n))
    steps_per_epoch = n // bs + (1 if n % bs >= 2 else 0)  # a last single item is skipped
    # Probes on small subsets still get `min_steps` updates (a learning curve compares sizes at
    # a comparable optimisation budget, not at a handful of steps).
    epochs = max(recipe.epochs, math.ceil(min_steps / steps_per_epoch))
    if aug is not None:  # the same number of steps, drawn from the fresh augmented copies
        x, y = aug[:, subset].flatten(0, 1), y.repeat(len(aug))
    cut_short = [False]
    prefix_steps = prefix[0] * steps_per_epoch if prefix is not None else 0
    total_steps = epochs * steps_per_epoch
    # Forward items of the measuring passes after training (fit, held-out, val; val again for
    # the per-item pass): part of what the run costs, so part of its projection.
    measured_items = len(y) + len(data.y_held) + len(y_val) * (2 if item_correct else 1)
    first_step = [math.nan]  # when step 0 ended: the pace is timed from there (warm-up apart)
    projected = [math.nan]

    def measure(seconds: float, cut: bool) -> ProbeResult:
        train_acc, _ = accuracy(model, x, y)
        held_acc, _ = accuracy(model, x_held, data.y_held)
        val_acc, val_loss = accuracy(model, x_val, y_val)
        params = sum(p.numel() for p in model.parameters())
        correct: tuple[bool, ...] = ()
        dead = math.nan
        if item_correct:
            with ActivationStats(model, ranks=False) as stats:
                correct = _item_correct(model, x_val, y_val)
            dead = dead_share(stats.summary())
        return ProbeResult(train_acc, held_acc, val_acc, val_loss, params, seconds, cut, correct,
                           dead)

    def over_time(step: int, _loss: float) -> bool:
        now = time.monotonic()
        if step == 0:
            first_step[0] = now
        elif give_up_late and step >= PACE_STEPS:
            pace = (now - first_step[0]) / step
            # An evaluated item costs about half a trained one (forward only, no backward).
            total = (now - start + pace * (total_steps - step - 1)
                     + measured_items * pace / bs / 2)  # fmt: skip
            if total > max_seconds * PACE_SLACK:
                projected[0] = total
                cut_short[0] = True
                return True
        cut_short[0] = now - start > max_seconds
        if prefix is not None and step + 1 == prefix_steps and not cut_short[0]:
            modes = {m: m.training for m in model.modules()}  # eval mode to measure, as a
            prefix[1].append(measure(time.monotonic() - start, False))  # finished run is
            for m, training in modes.items():  # then every module resumes as it was
                m.training = training
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
    # Its seconds include the measuring passes: what the next run like it will cost (a seed is
    # started only when it fits what the budget has left).
    if not math.isnan(projected[0]):  # given up: nothing worth measuring
        nan = math.nan
        return ProbeResult(nan, nan, nan, nan, sum(p.numel() for p in model.parameters()),
                           time.monotonic() - start, True, projected_s=projected[0])
    return replace(measure(0.0, cut_short[0]), seconds=time.monotonic() - start)


# A late run's projection is taken from its steps after the first (warm-up: allocations,
# kernel selection), and only once this many are timed.
PACE_STEPS = 4
# Early paces are noisy; the hard cap still cuts a run that was projected just inside it.
PACE_SLACK = 1.15


def _item_correct(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512
) -> tuple[bool, ...]:
    import torch

    from detective.analysis.torchutil import argmax_finite

    model.eval()
    out: list[bool] = []
    with torch.no_grad():
        for s in range(0, len(y), batch):
            pred = argmax_finite(model(x[s : s + batch]))
            out += (pred == y[s : s + batch]).cpu().tolist()
    return tuple(out)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of [N, C, ...] inputs, shaped to broadcast over them."""
    flat = x.transpose(0, 1).flatten(1).double()
    shape = (1, -1) + (1,) * (x.dim() - 2)
    mean = flat.mean(1).view(shape).to(x.dtype)
    std = flat.std(1).clamp_min(1e-8).view(shape).to(x.dtype)
    return mean, std


def balanced_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse class frequency, n / (K · n_c), as scikit-learn's class_weight='balanced'."""
    import torch

    counts = torch.bincount(y, minlength=num_classes).double()
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float64, device=y.device)
    weights[present] = len(y) / (int(present.sum()) * counts[present])
    return weights.float()


def raw_labels(ctx: RunContext, data: ProbeData) -> tuple[torch.Tensor, torch.Tensor]:
    """The fit and val items' labels as raw_datasets() pairs them with their images (the
    label_alignment check's reference). A loader that misaligns labels usually does so in every
    split it reads, so both are realigned: the metric is then measured on images with their own
    labels. Raises ExperimentError when nothing differs (the intervention would be a no-op)."""
    import torch

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        out = []
        for split, indices, ours in (("train", data.fit_indices, data.y_fit),
                                     ("val", data.val_indices, data.y_val)):  # fmt: skip
            if len(indices) != len(ours):
                out.append(ours)  # no index record (an old cache): keep the loader's labels
                continue
            raw = ctx.raw_dataset(split)
            labels = [int(raw[i][1]) for i in indices]
            out.append(torch.tensor(labels, dtype=ours.dtype, device=ours.device))
        return out[0], out[1]

    key = CacheKey[tuple[torch.Tensor, torch.Tensor]](
        "raw_labels", (data.fit_indices, data.val_indices)
    )
    y_fit, y_val = ctx.cache.get(key, compute)
    if torch.equal(y_fit, data.y_fit) and torch.equal(y_val, data.y_val):
        raise ExperimentError(
            "raw_datasets() gives every sampled image the label the loader gives it: nothing "
            "to realign"
        )
    return y_fit, y_val


def label_issue_keep(ctx: RunContext, data: ProbeData) -> torch.Tensor:
    """A mask over the fit items: False where the label_issues check's code path (cleanlab's
    find_label_issues on cross-validated out-of-sample probabilities of a probe on the user's
    model's penultimate features) flags the label."""
    import torch

    def compute() -> torch.Tensor:
        from detective.analysis.collect import collect
        from detective.analysis.measures import LabelIssueSettings
        from detective.checks.error_analysis.label_issues import analyse_split

        indices = list(data.fit_indices)
        col = collect(ctx, "train", indices=indices, feature_sample=len(indices))
        s = LabelIssueSettings()
        flagged = set(analyse_split(col, s.folds, s.agree_prob).flagged)
        keep = [i not in flagged for i in indices]
        return torch.tensor(keep, dtype=torch.bool, device=data.y_fit.device)

    return ctx.cache.get(CacheKey[torch.Tensor]("label_issue_keep", data.fit_indices), compute)


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
