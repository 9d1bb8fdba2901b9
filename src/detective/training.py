"""The case's training recipe: its `train` hook, or a built-in supervised loop with its
`optimizer`/`loss` hooks (defaults: AdamW at TRAIN['lr'], cross-entropy)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from detective.context import RunContext
    from detective.progress import Progress


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None = None
    val_acc: float | None = None


@dataclass(frozen=True)
class TrainResult:
    epochs: tuple[EpochStats, ...]
    step_losses: tuple[float, ...]
    diverged: bool  # the loss became NaN/Inf; training stopped there


@dataclass(frozen=True)
class EvalResult:
    loss: float
    accuracy: float
    count: int


def make_optimizer(
    ctx: RunContext, model: torch.nn.Module, lr: float | None = None
) -> torch.optim.Optimizer:
    import torch

    settings = ctx.case.train_settings
    if ctx.case.has("optimizer"):
        opt = ctx.case.call("optimizer", model)
        if lr is not None:
            for group in opt.param_groups:
                group["lr"] = lr
        return opt
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr or settings.lr, weight_decay=settings.weight_decay)


def make_loss(ctx: RunContext) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    import torch

    if ctx.case.has("loss"):
        return ctx.case.call("loss")
    return torch.nn.CrossEntropyLoss()


def evaluate(
    ctx: RunContext,
    model: torch.nn.Module,
    split: str,
    indices: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Mean cross-entropy and accuracy of `model` in eval mode (mode restored afterwards)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for batch in ctx.batches(split, indices, progress=progress):
            logits = model(batch.x)
            total_loss += float(F.cross_entropy(logits.float(), batch.y, reduction="sum"))
            correct += int((logits.argmax(1) == batch.y).sum())
            count += len(batch.y)
    model.train(was_training)
    if count == 0:
        return EvalResult(math.nan, math.nan, 0)
    return EvalResult(total_loss / count, correct / count, count)


def train(
    ctx: RunContext,
    model: torch.nn.Module,
    *,
    epochs: int | None = None,
    indices: Sequence[int] | None = None,
    lr: float | None = None,
    val_indices: Sequence[int] | None = None,
    progress: Progress | None = None,
    on_step: Callable[[int, float], None] | None = None,
    max_steps: int | None = None,
    use_hook: bool = True,
) -> TrainResult:
    """Train `model` in place on the train split (or `indices` of it) with the case's recipe.

    Evaluates on `val_indices` of the val split after each epoch when given. Stops early, with
    `diverged=True`, when the loss becomes NaN/Inf.
    """
    import torch
    from torch.utils.data import DataLoader, Subset

    from detective.torchutil import seed_everything

    settings = ctx.case.train_settings
    epochs = settings.epochs if epochs is None else epochs
    gen = seed_everything(settings.seed)
    model.to(ctx.device)
    step_losses: list[float] = []

    if use_hook and ctx.case.has("train"):
        dataset = ctx.dataset("train")
        subset = dataset if indices is None else Subset(dataset, list(indices))
        loader = DataLoader(subset, batch_size=settings.batch_size, shuffle=True, generator=gen)

        def hook_step(step: int, loss: float) -> None:
            step_losses.append(float(loss))
            if on_step is not None:
                on_step(step, float(loss))
            if progress is not None:
                progress.check_cancelled()

        ctx.case.call("train", model, loader, epochs, hook_step)
        stats = _epoch_stats(ctx, model, epochs, indices, val_indices)
        return TrainResult(stats, tuple(step_losses), not all(map(math.isfinite, step_losses)))

    optimizer = make_optimizer(ctx, model, lr)
    loss_fn = make_loss(ctx)
    train_idx = list(range(len(ctx.dataset("train")))) if indices is None else list(indices)
    history: list[EpochStats] = []
    total_steps = epochs * math.ceil(len(train_idx) / settings.batch_size)
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(len(train_idx), generator=gen).tolist()
        shuffled = [train_idx[i] for i in order]
        model.train()
        seen, loss_sum, correct = 0, 0.0, 0
        for batch in ctx.batches("train", shuffled, batch_size=settings.batch_size, progress=None):
            if progress is not None:
                progress.update(step, total_steps)
            optimizer.zero_grad(set_to_none=True)
            logits = model(batch.x)
            loss = loss_fn(logits, batch.y)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            step_losses.append(value)
            if on_step is not None:
                on_step(step, value)
            step += 1
            if not math.isfinite(value):
                history.append(EpochStats(epoch, math.nan, math.nan))
                return TrainResult(tuple(history), tuple(step_losses), True)
            seen += len(batch.y)
            loss_sum += value * len(batch.y)
            correct += int((logits.detach().argmax(1) == batch.y).sum())
            if max_steps is not None and step >= max_steps:
                break
        val = evaluate(ctx, model, "val", val_indices) if val_indices is not None else None
        history.append(
            EpochStats(
                epoch,
                loss_sum / max(seen, 1),
                correct / max(seen, 1),
                val.loss if val else None,
                val.accuracy if val else None,
            )
        )
        if max_steps is not None and step >= max_steps:
            break
    if progress is not None:
        progress.update(1.0)
    model.eval()
    return TrainResult(tuple(history), tuple(step_losses), False)


def _epoch_stats(
    ctx: RunContext,
    model: torch.nn.Module,
    epochs: int,
    indices: Sequence[int] | None,
    val_indices: Sequence[int] | None,
) -> tuple[EpochStats, ...]:
    """The user's train hook reports only step losses: measure the end state once."""
    tr = evaluate(ctx, model, "train", indices)
    val = evaluate(ctx, model, "val", val_indices) if val_indices is not None else None
    return (
        EpochStats(
            epochs - 1,
            tr.loss,
            tr.accuracy,
            val.loss if val else None,
            val.accuracy if val else None,
        ),
    )
