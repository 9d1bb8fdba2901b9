"""The parts of the case's training recipe, and the one supervised step loop.

`make_optimizer` / `make_loss` read the case's `optimizer` / `loss` hooks (defaults: AdamW at
TRAIN['lr'], cross-entropy). `fit_batches` is the step loop every trainer here runs: the recipe
runner (`detective.analysis.learning.recipe.run_recipe`, which the learning probes and the
experiments use)
and the case kit's `fit`. Keeping one loop means one place decides train mode, zeroing and the
order of backward and step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from detective.core.context import RunContext

#: after_step(step, loss, logits, targets); the logits are detached.
StepCallback = Callable[[int, float, "torch.Tensor", "torch.Tensor"], None]


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


def configured_lr(ctx: RunContext, model: torch.nn.Module) -> tuple[float, str]:
    """The learning rate the user's recipe trains with, and where it comes from."""
    if ctx.case.has("optimizer"):
        lrs = [float(g["lr"]) for g in make_optimizer(ctx, model).param_groups if "lr" in g]
        if lrs:
            return max(lrs), "the case's optimizer() hook"
    return float(ctx.case.train_settings.lr), "TRAIN['lr']"


def fit_batches(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    after_step: StepCallback | None = None,
    lr_schedule: Callable[[int], float] | None = None,
) -> int:
    """One optimizer step per (x, y) batch; returns the number of steps taken.

    `lr_schedule(step)` sets every group's LR before the step. `after_step` may raise to end
    the run (the recipe runner stops that way). Without it the loss is never synced to the host,
    so a plain training script pays nothing for the callback.
    """
    step = 0
    for xb, yb in batches:
        if lr_schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_schedule(step)
        model.train()
        optimizer.zero_grad(set_to_none=True)
        out = model(xb)
        loss = loss_fn(out, yb)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step(step, float(loss.detach()), out.detach(), yb)
        step += 1
    return step
