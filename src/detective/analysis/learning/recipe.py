"""The recipe runner: short, instrumented runs of the user's training recipe on a bounded
in-memory sample (`probe_data`). The one training loop of the tool: the learning checks, the
capacity probes and the experiments all train through `run_recipe`.

The recipe is the case's `train` hook when it has one (it gets a loader over the sample and is
stopped after the step budget), else the built-in loop with the case's `optimizer`/`loss` hooks
(`detective.analysis.training.make_optimizer` / `make_loss`). Instrumentation is attached around the
run and released afterwards: gradient norms through parameter hooks (so it works whoever runs the
loop), weight norms and update sizes at each step callback. Everything is reduced to a few floats
per layer per step on the device and synced once per step, so memory stays flat.

Always run on a model the check owns (`ctx.fresh_model()`, `ctx.model_copy()`), never on
`ctx.model()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detective.core.case import HookError
from detective.core.ports import CacheKey
from detective.core.progress import Cancelled

if TYPE_CHECKING:
    import torch

    from detective.core.context import RunContext
    from detective.core.progress import Progress

PROBE_TRAIN_ITEMS = 512  # train items a learning probe trains on, at most
PROBE_HELDOUT_ITEMS = 128  # further train items held out to see generalisation in a short run


@dataclass(frozen=True)
class ProbeData:
    """A bounded sample on the device: train items split into fit/held-out, and val items."""

    x_fit: torch.Tensor
    y_fit: torch.Tensor
    x_held: torch.Tensor
    y_held: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    fit_indices: tuple[int, ...]  # dataset indices of the fit items, in order
    label_problems: int  # sampled train items dropped because the label is outside 0..K-1
    sampled: int  # train items sampled (before dropping unreadable ones)
    val_indices: tuple[int, ...] = ()  # dataset indices of the val items, in order


def probe_data(
    ctx: RunContext,
    train_n: int,
    val_n: int = 0,
    *,
    heldout: float = 0.2,
    min_heldout: int = 30,
    max_heldout: int | None = None,
    min_fit: int = 10,
) -> ProbeData:
    """Load (once per run) `train_n` train items, a seeded `heldout` share of them held out, and
    `val_n` val items. No hold-out when it would be under `min_heldout` or leave under `min_fit`
    items to fit."""
    return ctx.cache.get(
        CacheKey[ProbeData](
            "probe_data", (train_n, val_n, heldout, min_heldout, max_heldout, min_fit)
        ),
        lambda: _probe_data(ctx, train_n, val_n, heldout, min_heldout, max_heldout, min_fit),
    )


def _probe_data(
    ctx: RunContext,
    train_n: int,
    val_n: int,
    heldout: float,
    min_heldout: int,
    max_heldout: int | None,
    min_fit: int,
) -> ProbeData:
    import torch

    indices = ctx.sample_indices("train", train_n)
    x, y, kept = ctx.tensors("train", indices)
    val_kept: list[int] = []
    if val_n:
        xv, yv, val_kept = ctx.tensors("val", ctx.sample_indices("val", val_n))
    else:
        xv, yv = x[:0], y[:0]
    problems = ctx.item_problems.get("train", {})
    bad_labels = sum(1 for i in indices if "outside 0.." in problems.get(i, ""))
    n_held = int(len(y) * heldout)
    if max_heldout is not None:
        n_held = min(n_held, max_heldout)
    if n_held < min_heldout or len(y) - n_held < min_fit:
        n_held = 0
    gen = torch.Generator().manual_seed(ctx.options.seed)
    order = torch.randperm(len(y), generator=gen).to(y.device)
    held, fit = order[:n_held], order[n_held:]
    fit_indices = tuple(kept[i] for i in fit.tolist())
    return ProbeData(
        x[fit], y[fit], x[held], y[held], xv, yv, fit_indices, bad_labels, len(indices),
        tuple(val_kept),
    )


def learning_data(ctx: RunContext) -> ProbeData:
    """The learning checks' shared sample of the train split (no val items)."""
    want = min(ctx.options.sample, PROBE_TRAIN_ITEMS + PROBE_HELDOUT_ITEMS)
    return probe_data(
        ctx, want, heldout=0.2, min_heldout=0, max_heldout=PROBE_HELDOUT_ITEMS, min_fit=0
    )


def layer_params(model: torch.nn.Module) -> list[tuple[str, list[tuple[str, torch.nn.Parameter]]]]:
    """Parameters grouped by the module that owns them, in registration (≈ forward) order."""
    out = []
    for name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        if own:
            out.append((name or type(module).__name__, own))
    return out


def is_norm_layer(model: torch.nn.Module, layer: str) -> bool:
    import torch

    module = dict(model.named_modules()).get(layer)
    norms = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)
    return isinstance(module, norms)


class GradNorms:
    """Per-layer gradient L2 norms of every backward pass, via parameter hooks.

    Squared norms accumulate on the device; `end_step()` syncs once and returns one float per
    layer (0 for a layer that received no gradient this step).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        import torch

        self.layers = [name for name, _ in layer_params(model)]
        self._params = [(i, p) for i, (_, ps) in enumerate(layer_params(model)) for _, p in ps]
        device = next((p.device for _, p in self._params), torch.device("cpu"))
        self._sq = torch.zeros(len(self.layers), dtype=torch.float64, device=device)
        self._seen = torch.zeros(len(self.layers), dtype=torch.bool, device=device)
        self._handles: list[Any] = []

    def __enter__(self) -> GradNorms:
        for i, p in self._params:
            if p.requires_grad:
                self._handles.append(p.register_hook(self._hook(i)))
        return self

    def _hook(self, i: int) -> Callable[[torch.Tensor], None]:
        import torch

        def hook(grad: torch.Tensor) -> None:
            # vector_norm accumulates in float64 without a float64 copy of the gradient.
            self._sq[i] += torch.linalg.vector_norm(grad.detach(), dtype=torch.float64) ** 2
            self._seen[i] = True

        return hook

    def end_step(self) -> list[float]:
        sq, seen = self._sq.cpu().tolist(), self._seen.cpu().tolist()
        self._sq.zero_()
        self._seen.zero_()
        # A layer that got no gradient counts as 0; sqrt keeps NaN/inf visible as such.
        return [math.sqrt(s) if ok else 0.0 for s, ok in zip(sq, seen, strict=True)]

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


class WeightTracker:
    """Per-layer weight norms and update norms ||w_t - w_{t-1}|| at each step."""

    def __init__(self, model: torch.nn.Module) -> None:
        groups = layer_params(model)
        self.layers = [name for name, _ in groups]
        self._params = [[p for _, p in ps] for _, ps in groups]
        self._prev = [[p.detach().clone() for p in ps] for ps in self._params]
        self.initial_norms = self._norms()

    def _norms(self) -> list[float]:
        import torch

        vals = [_norm([p.detach() for p in ps]) for ps in self._params]
        return [float(v) for v in torch.stack(vals).cpu()] if vals else []

    def step(self) -> tuple[list[float], list[float]]:
        """(weight norms, update norms) now; remembers the weights for the next step."""
        import torch

        norms, updates = [], []
        for ps, prev in zip(self._params, self._prev, strict=True):
            now = [p.detach() for p in ps]
            norms.append(_norm(now))
            torch._foreach_sub_(prev, now)  # prev becomes -Δw, in place: no copy of the model
            updates.append(_norm(prev))
            torch._foreach_copy_(prev, now)
        if not norms:
            return [], []
        both = torch.stack([torch.stack(norms), torch.stack(updates)]).cpu().tolist()
        return both[0], both[1]


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of several tensors together, accumulated in float64 (no float64 copies)."""
    import torch

    if not tensors:
        return torch.zeros((), dtype=torch.float64)
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(t, dtype=torch.float64) for t in tensors])
    )


@dataclass(frozen=True)
class RunTrace:
    """What a short run recorded (plain floats; per-layer series indexed like `layers`)."""

    layers: tuple[str, ...]
    losses: tuple[float, ...]
    batch_acc: tuple[float, ...]  # NaN when the recipe is the user's train hook
    grad_norms: tuple[tuple[float, ...], ...]  # [step][layer]
    weight_norms: tuple[tuple[float, ...], ...]  # [step][layer], after the step
    update_norms: tuple[tuple[float, ...], ...]  # [step][layer]
    initial_weight_norms: tuple[float, ...]
    heldout: tuple[tuple[int, float, float], ...]  # (step, loss, accuracy) on held-out items
    recipe: str  # "train hook" or "built-in loop"
    lr: float
    diverged: bool


class _StopRun(Exception):
    pass


def run_recipe(
    ctx: RunContext,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    progress: Progress | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    grads: bool = False,
    weights: bool = False,
    heldout: tuple[torch.Tensor, torch.Tensor] | None = None,
    eval_every: int = 0,
    lr_schedule: Callable[[int], float] | None = None,
    stop: Callable[[int, float], bool] | None = None,
    prefer_hook: bool = True,
    generator: torch.Generator | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    drop_last: bool = True,
) -> RunTrace:
    """Train `model` in place for at most `steps` optimizer steps on (x, y) with the recipe.

    The one training runner: the learning probes, the capacity probes and the experiments all
    train through it. Seeded with the run's seed, or continues `generator` (a probe that drew
    its sample from it); cancellable through `progress`, bounded by `steps`, on the device of
    `x`. Stops at the first non-finite loss.

    `optimizer` / `loss_fn` replace the case's hooks (an experiment's changed recipe);
    `augment(xb, generator)` transforms each batch; `lr_schedule(step)` sets the LR before each
    step; `stop(step, loss)` ends the run early. Any of these, or `prefer_hook=False`, means the
    built-in loop runs instead of the case's `train` hook. `drop_last=False` also trains on a
    last partial batch of at least two items (batch-norm cannot train on one).
    """
    from detective.analysis.torchutil import few_cpu_threads, seed_everything

    bs = min(batch_size or ctx.case.train_settings.batch_size, len(y))
    gen = generator if generator is not None else seed_everything(ctx.options.seed)
    custom = any(h is not None for h in (lr_schedule, optimizer, loss_fn, augment))
    use_hook = prefer_hook and ctx.case.has("train") and not custom
    losses: list[float] = []
    accs: list[float] = []
    gnorms: list[tuple[float, ...]] = []
    wnorms: list[tuple[float, ...]] = []
    unorms: list[tuple[float, ...]] = []
    held: list[tuple[int, float, float]] = []
    layers = tuple(name for name, _ in layer_params(model))
    tracker = WeightTracker(model) if weights else None
    initial = tuple(tracker.initial_norms) if tracker else ()

    with few_cpu_threads(model, x), _maybe(GradNorms(model) if grads else None) as recorder:

        def after_step(step: int, loss: float) -> None:
            losses.append(float(loss))
            if recorder is not None:
                gnorms.append(tuple(recorder.end_step()))
            if tracker is not None:
                w, u = tracker.step()
                wnorms.append(tuple(w))
                unorms.append(tuple(u))
            if heldout is not None and eval_every and (step + 1) % eval_every == 0:
                held.append((step + 1, *evaluate_tensors(model, *heldout, _eval_bs(ctx))))
            if progress is not None:
                progress.update(step + 1, steps)
            if not math.isfinite(loss) or step + 1 >= steps or (stop and stop(step, loss)):
                raise _StopRun

        try:
            if use_hook:
                _run_hook(ctx, model, x, y, bs, steps, gen, after_step)
            else:
                from detective.analysis.training import make_loss, make_optimizer

                opt = optimizer or make_optimizer(ctx, model, lr)
                batches = _batches(x, y, bs, gen, augment, drop_last)
                _run_builtin(model, batches, opt, loss_fn or make_loss(ctx), lr_schedule,
                             after_step, accs, progress.log if progress is not None else None)
        except _StopRun:
            pass
        except HookError as e:
            if isinstance(e.__cause__, _StopRun):
                pass
            elif isinstance(e.__cause__, Cancelled):
                raise e.__cause__ from None
            else:
                raise
    model.eval()
    if use_hook:
        accs = [math.nan] * len(losses)
    if optimizer is not None:
        used_lr = max(float(g["lr"]) for g in optimizer.param_groups)
    else:
        from detective.analysis.training import configured_lr

        used_lr = lr if lr is not None else configured_lr(ctx, model)[0]
    return RunTrace(
        layers=layers,
        losses=tuple(losses),
        batch_acc=tuple(accs[: len(losses)]),
        grad_norms=tuple(gnorms),
        weight_norms=tuple(wnorms),
        update_norms=tuple(unorms),
        initial_weight_norms=initial,
        heldout=tuple(held),
        recipe="train hook" if use_hook else "built-in loop",
        lr=float(used_lr),
        diverged=not all(map(math.isfinite, losses)),
    )


@contextmanager
def _maybe(cm: Any) -> Iterator[Any]:
    if cm is None:
        yield None
    else:
        with cm as value:
            yield value


def _batches(x, y, bs, gen, augment, drop_last) -> Iterator[tuple[Any, Any]]:
    """Seeded shuffled epochs over (x, y), for ever (the runner stops by steps)."""
    import torch

    while True:
        order = torch.randperm(len(y), generator=gen).to(y.device)
        end = len(y) - bs + 1 if drop_last else len(y)
        yielded = False
        for start in range(0, end, bs):
            idx = order[start : start + bs]
            if not drop_last and len(idx) < 2:  # batch-norm cannot train on one item
                continue
            yielded = True
            xb = x[idx] if augment is None else augment(x[idx], gen)
            yield xb, y[idx]
        if not yielded:
            return


def _run_builtin(model, batches, optimizer, loss_fn, lr_schedule, after_step, accs, log) -> None:
    from detective.analysis.training import fit_batches, short_run_precision

    def on_step(step: int, loss: float, out: Any, yb: Any) -> None:
        accs.append(float((out.argmax(1) == yb).float().mean()))
        after_step(step, loss)

    # On a GPU, AMP and channels_last as the user's own training would (fp32 on the CPU).
    fit_batches(model, batches, optimizer, loss_fn, on_step, lr_schedule,
                short_run_precision(model), log)  # fmt: skip


def _run_hook(ctx, model, x, y, bs, steps, gen, after_step) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x, y), batch_size=bs, shuffle=True, generator=gen)
    epochs = max(1, math.ceil(steps / max(len(loader), 1)))
    counter = [0]

    def on_step(_step: int, loss: float) -> None:
        i = counter[0]
        counter[0] += 1
        after_step(i, float(loss))

    ctx.case.call("train", model, loader, epochs, on_step)


def _eval_bs(ctx: RunContext) -> int:
    return ctx.case.eval_settings.batch_size


def evaluate_tensors(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model` on in-memory tensors, in eval mode (the mode
    is restored afterwards); (nan, nan) on an empty set."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if len(y) == 0:
        return math.nan, math.nan
    was = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(y), batch_size):
            out = model(x[s : s + batch_size]).float()
            loss_sum += float(F.cross_entropy(out, y[s : s + batch_size], reduction="sum"))
            correct += int((out.argmax(1) == y[s : s + batch_size]).sum())
    model.train(was)
    return loss_sum / len(y), correct / len(y)


def short_run(ctx: RunContext, progress: Progress | None = None, steps: int = 80) -> RunTrace:
    """The learning stage's shared short run: a fresh model trained with the user's recipe at
    its configured LR, gradients and weights instrumented, held-out loss every 10 steps.
    Memoised per run so the loss-curve, gradient-flow and weight checks share it."""

    def run() -> RunTrace:
        data = learning_data(ctx)
        return run_recipe(
            ctx,
            ctx.fresh_model(),
            data.x_fit,
            data.y_fit,
            steps=steps,
            progress=progress,
            grads=True,
            weights=True,
            heldout=(data.x_held, data.y_held) if len(data.y_held) else None,
            eval_every=10,
        )

    return ctx.cache.get(CacheKey[RunTrace]("learning:short_run", (steps,)), run)


def short_run_frozen(ctx: RunContext) -> FrozenInfo:
    """Frozen parameters of a fresh model, and layers the recipe's optimizer leaves out."""

    def compute() -> FrozenInfo:
        from detective.analysis.training import make_optimizer

        model = ctx.fresh_model()
        info = frozen_share(model)
        left_out: tuple[str, ...] = ()
        if ctx.case.has("optimizer"):
            optimized = {
                id(p) for g in make_optimizer(ctx, model).param_groups for p in g["params"]
            }
            left_out = tuple(
                name
                for name, ps in layer_params(model)
                if any(p.requires_grad for _, p in ps)
                and not any(id(p) in optimized for _, p in ps)
            )
        return FrozenInfo(info.frozen_layers, info.frozen_params, info.total_params, left_out)

    return ctx.cache.get(CacheKey[FrozenInfo]("learning:frozen"), compute)


@dataclass(frozen=True)
class FrozenInfo:
    frozen_layers: tuple[str, ...]  # layers with every parameter requires_grad=False
    frozen_params: int
    total_params: int
    not_in_optimizer: tuple[str, ...] = ()


def frozen_share(model: torch.nn.Module) -> FrozenInfo:
    frozen, n_frozen, total = [], 0, 0
    for name, ps in layer_params(model):
        size = sum(p.numel() for _, p in ps)
        total += size
        if not any(p.requires_grad for _, p in ps):
            frozen.append(name)
        n_frozen += sum(p.numel() for _, p in ps if not p.requires_grad)
    return FrozenInfo(tuple(frozen), n_frozen, total)
