"""The parts of the case's training recipe, and the one supervised step loop.

`make_optimizer` / `make_loss` read the case's `optimizer` / `loss` hooks (defaults: AdamW at
TRAIN['lr'], cross-entropy). `fit_batches` is the step loop every trainer here runs: the recipe
runner (`detective.analysis.learning.recipe.run_recipe`, which the learning probes and the
experiments use)
and the case kit's `fit`. Keeping one loop means one place decides train mode, zeroing and the
order of backward and step.

On a GPU the recipe runner's short runs train as a GPU user's own training does
(`short_run_precision`): autocast in bf16 where the GPU has it, else fp16 with a gradient scaler,
and channels_last memory for conv nets. A batch that runs out of CUDA memory is split in halves
whose gradients are accumulated, so the step (and the recipe's batch size) stays the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


@dataclass(frozen=True)
class Precision:
    """How a training step computes. The default is plain fp32 (the CPU, the user's scripts)."""

    dtype: torch.dtype | None = None  # autocast dtype; None: fp32
    scaler: bool = False  # a GradScaler (fp16: small gradients would underflow to 0)
    channels_last: bool = False  # NHWC memory for conv nets (tensor cores prefer it)

    @property
    def label(self) -> str:
        parts = [str(self.dtype).removeprefix("torch.") if self.dtype else "float32"]
        if self.scaler:
            parts.append("grad scaler")
        if self.channels_last:
            parts.append("channels_last")
        return ", ".join(parts)


FP32 = Precision()


def short_run_precision(model: torch.nn.Module) -> Precision:
    """The precision of short runs on the model's device: bf16 autocast on a CUDA GPU that has
    it, else fp16 with a scaler; channels_last when the model has 2-d convolutions. fp32 on the
    CPU, where autocast is slower than fp32 for most convolutions (tests ask for it directly)."""
    import torch

    param = next(model.parameters(), None)
    if param is None or param.device.type != "cuda":
        return FP32
    bf16 = torch.cuda.is_bf16_supported()
    return Precision(
        dtype=torch.bfloat16 if bf16 else torch.float16,
        scaler=not bf16,
        channels_last=any(isinstance(m, torch.nn.Conv2d) for m in model.modules()),
    )


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def fit_batches(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    after_step: StepCallback | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    precision: Precision = FP32,
    log: Callable[[str], None] | None = None,
) -> int:
    """One optimizer step per (x, y) batch; returns the number of steps taken.

    `lr_schedule(step)` sets every group's LR before the step. `after_step` may raise to end
    the run (the recipe runner stops that way). Without it the loss is never synced to the host,
    so a plain training script pays nothing for the callback. `precision` sets autocast, the
    gradient scaler and channels_last. A batch that raises CUDA out-of-memory is retried in
    halves (gradients accumulated, each weighted by its share of the batch), and that chunk size
    sticks; `log` hears about it.
    """
    import torch

    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    scaler = torch.amp.GradScaler(device.type) if precision.scaler else None
    chunk = [0]  # items per forward after an out-of-memory error (0: the whole batch)
    step = 0
    for xb, yb in batches:
        if lr_schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_schedule(step)
        model.train()
        if precision.channels_last and xb.ndim == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        while True:
            size = chunk[0] or len(yb)
            optimizer.zero_grad(set_to_none=True)
            try:
                loss, out = _forward_backward(model, xb, yb, loss_fn, precision, scaler, size)
                break
            except RuntimeError as e:
                if not _is_oom(e) or size <= 1:
                    raise
                optimizer.zero_grad(set_to_none=True)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                chunk[0] = max(1, size // 2)
                if log is not None:
                    log(f"CUDA out of memory on a batch of {size}; training in chunks of "
                        f"{chunk[0]} (gradients accumulated: the step is the same)")  # fmt: skip
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if after_step is not None:
            after_step(step, float(loss), out, yb)
        step += 1
    return step


def _forward_backward(
    model: torch.nn.Module,
    xb: torch.Tensor,
    yb: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    precision: Precision,
    scaler: Any,
    size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward over `xb` in chunks of `size` items; returns the batch's loss and
    its logits (detached, fp32). One chunk (the usual case) is exactly the plain step."""
    import torch

    n = len(yb)
    losses, outs = [], []
    for start in range(0, n, size):
        x, y = xb[start : start + size], yb[start : start + size]
        autocast = (
            torch.autocast(x.device.type, dtype=precision.dtype)
            if precision.dtype is not None
            else nullcontext()
        )
        with autocast:
            out = model(x)
            loss = loss_fn(out, y)
        # A mean loss over the batch is the chunks' means weighted by their share of it.
        part = loss if size >= n else loss * (len(y) / n)
        (scaler.scale(part) if scaler is not None else part).backward()
        losses.append(part.detach().float())
        outs.append(out.detach().float())
    total = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
    return total, outs[0] if len(outs) == 1 else torch.cat(outs)
