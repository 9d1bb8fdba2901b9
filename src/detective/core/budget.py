"""What an investigation costs before it runs, and fitting it into `--budget MIN`.

Each check declares its cost (`Check.cost(size)`) in three units the engine measures on the case
itself before the first check: an eval-mode forward pass over one item (data loading included),
one optimizer step at the recipe's batch size, and a host operation (`HOST_OP`: a million
thumbnail comparisons with their top-k selection, the unit of work that does not run the model,
such as the near-duplicate search; image decoding is counted in it too, calibrated on the
ResNet-18 scale case). Work several checks share (the collection
pass, the learning stage's short run, the probe sample) is a `SharedCost` under one key, counted
once. `estimate` turns costs into seconds; `fit_budget` shrinks the settings a check declares
`shrinkable` (sample sizes, short-run lengths) until the plan fits, cheapest evidence first: the
budget is shared out from the cheapest check up, so cheap checks run in full and only the
expensive ones are shortened. The result is a playbook with the shortened settings (the ordinary
override mechanism, `CheckConfig.settings`) and a list of what was shortened, for the user.

Without `--budget` a run still has one: about one training epoch of the recipe (measured before
the first check), never less than `DEFAULT_FLOOR_S`, so that a case whose epoch takes a second
(the demo, the diagnosis benchmark's cases) runs in full; `--budget none` removes the bound.

`BudgetClock` is the running side: seconds spent and remaining, for whatever runs after the checks
(interventions) and must fit the same budget. `Eta` turns the plan and progress into an ETA.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detective.core.context import RunContext
    from detective.core.playbook import Playbook
    from detective.core.registry import Check


# The default budget's floor. The default is one training epoch (issue 18: an investigation
# costs at most about one epoch); the floor exists only for cases whose epoch takes seconds (the
# demo, the diagnosis benchmark's cases), which would otherwise get no check worth running. One
# minute keeps such a case to a minute (issue 13: each benchmark case ≤ 60 s on a 2-core CPU) and
# fits its checks and evaluation-side interventions whole; retraining that does not fit is said
# to need a larger --budget. A real network's epoch is above it (the ResNet-18 scale case's
# 75 s epoch is its budget).
DEFAULT_FLOOR_S = 60.0


class BudgetSource(StrEnum):
    """Where a run's budget came from (said in the plan line)."""

    GIVEN = "given"  # --budget MIN
    EPOCH = "epoch"  # the default: one training epoch of the recipe
    FLOOR = "floor"  # the default, raised to its floor (an epoch shorter than DEFAULT_FLOOR_S)
    NONE = "none"  # --budget none (or 0): no bound


def resolve_budget(budget_min: float | None, epoch_s: float) -> tuple[float | None, BudgetSource]:
    """The run's budget in seconds (None: no bound) from `--budget` and the measured epoch.

    `budget_min` is None without `--budget` (the default), `math.inf` for `--budget none`.
    An unknown epoch (nan: the case could not be timed) falls back to the floor."""
    if budget_min is not None:
        if math.isinf(budget_min):
            return None, BudgetSource.NONE
        return budget_min * 60.0, BudgetSource.GIVEN
    if math.isfinite(epoch_s) and epoch_s > DEFAULT_FLOOR_S:
        return epoch_s, BudgetSource.EPOCH
    return DEFAULT_FLOOR_S, BudgetSource.FLOOR


@dataclass(frozen=True)
class SharedCost:
    """Work several checks share (computed once per run by whichever runs first)."""

    key: str  # "collection@2000", "short_run@80": one family before "@", its parameters after
    forward_items: float = 0.0
    train_steps: float = 0.0
    host_ops: float = 0.0


@dataclass(frozen=True)
class Cost:
    """A check's own work plus the shared work it reads, in measured units."""

    forward_items: float = 0.0  # eval-mode forward passes over items (loading included)
    train_steps: float = 0.0  # optimizer steps at the recipe's batch size
    shared: tuple[SharedCost, ...] = ()
    # Why the work may not happen at all (e.g. "only with a train–val gap"): counted in the
    # budget (worst case), shown apart in the plan.
    conditional: str = ""
    host_ops: float = 0.0  # work that does not run the model, in HOST_OP units


@dataclass(frozen=True)
class CaseSize:
    """What costs depend on: split sizes, --sample and the recipe's batch sizes."""

    train_n: int
    val_n: int
    sample: int  # --sample
    train_batch: int
    eval_batch: int
    epochs: int = 1  # the recipe's epochs (TRAIN["epochs"])
    test_n: int = 0

    @property
    def epoch_steps(self) -> int:
        """Optimizer steps in one epoch of the recipe."""
        return max(1, math.ceil(self.train_n / max(1, self.train_batch)))


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per unit, measured on this case and device."""

    forward_item_s: float
    train_step_s: float
    device: str = ""
    host_op_s: float = 0.0  # seconds per HOST_OP on this machine

    def seconds(self, forward_items: float, train_steps: float, host_ops: float = 0.0) -> float:
        return (forward_items * self.forward_item_s + train_steps * self.train_step_s
                + host_ops * self.host_op_s)

    def of(self, cost: Cost | SharedCost) -> float:
        """Seconds of a cost's own work (a Cost's shared work not included)."""
        return self.seconds(cost.forward_items, cost.train_steps, cost.host_ops)


@dataclass(frozen=True)
class Knob:
    """A setting `--budget` may shrink: an int (scaled, never below `floor`) or a tuple (cut to
    at least `floor` entries, e.g. the seeds of paired runs)."""

    setting: str
    floor: int
    # Checks that share work through this setting (the short run's `steps`, the probe sample's
    # size) must shrink it alike, or each would compute its own copy: one value per group.
    group: str = ""
    # For a setting whose value means more than its number (0: "--sample", a cap above the
    # split's size): the items it stands for on this case, which the budget scales instead.
    effective: Callable[[Any, CaseSize], int] | None = None

    def base(self, value: object, size: CaseSize) -> object:
        return value if self.effective is None else self.effective(value, size)


@dataclass(frozen=True)
class Shortened:
    check_id: str
    setting: str
    before: object
    after: object

    def describe(self) -> str:
        return f"{self.check_id}.{self.setting} {_show(self.before)} → {_show(self.after)}"


@dataclass(frozen=True)
class CheckEstimate:
    check_id: str
    seconds: float  # own work plus the shared work it is the first to need
    short_runs_s: float  # of which training steps
    conditional: str = ""
    own_s: float = math.nan  # without the shared work (what skipping the check saves); nan: all
    # The shared work it reads, (key, seconds), wherever it is charged: skipping every reader
    # of a key saves that work too.
    shared: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class RunPlan:
    """The plan printed before a run: seconds per check on this device, what was shortened."""

    estimates: tuple[CheckEstimate, ...]
    units: UnitCosts
    size: CaseSize
    budget_s: float | None = None
    shortened: tuple[Shortened, ...] = ()
    # Overrides the budget added, per check (merged into the playbook's own settings).
    settings: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    # Checks that do not fit even at their floors, most expensive first: the run skips them.
    dropped: tuple[str, ...] = ()
    budget_source: BudgetSource = BudgetSource.GIVEN

    @property
    def total_s(self) -> float:
        return sum(e.seconds for e in self.estimates if e.check_id not in self.dropped)

    @property
    def short_runs_s(self) -> float:
        return sum(e.short_runs_s for e in self.estimates if e.check_id not in self.dropped)

    @property
    def epoch_s(self) -> float:
        """One training epoch of the recipe at the measured step time."""
        return self.size.epoch_steps * self.units.train_step_s

    def seconds_of(self, check_id: str) -> float:
        return next((e.seconds for e in self.estimates if e.check_id == check_id), 0.0)

    def over_budget(self) -> bool:
        return self.budget_s is not None and self.total_s > self.budget_s * 1.05

    def describe(self) -> str:
        """"≈ 6 min on cpu (1 epoch ≈ 1 min); short runs ≈ 3 min"."""
        conditional = sum(
            e.seconds for e in self.estimates if e.conditional and e.check_id not in self.dropped
        )
        text = f"≈ {duration(self.total_s)} on {self.units.device or 'this device'}"
        if self.epoch_s > 0:
            text += f" (one training epoch ≈ {duration(self.epoch_s)})"
        if self.short_runs_s >= 1:
            text += f"; short runs ≈ {duration(self.short_runs_s)}"
        if conditional >= 1:
            text += f"; {duration(conditional)} of it only if the symptom calls for it"
        text += self._describe_budget()
        if self.budget_s is not None:
            if self.dropped:
                text += f"; skipped to fit: {', '.join(self.dropped)}"
            if self.over_budget():
                text += " (cannot fit: every shrinkable setting is at its floor)"
        return text


    def _describe_budget(self) -> str:
        change = "--budget MIN to change, --budget none for no bound"
        if self.budget_source is BudgetSource.NONE:
            return "; no budget (--budget none)"
        if self.budget_s is None:
            return ""
        if self.budget_source is BudgetSource.EPOCH:
            return f"; budget: one epoch ≈ {duration(self.budget_s)} (default; {change})"
        if self.budget_source is BudgetSource.FLOOR:
            return (f"; budget {duration(self.budget_s)} (default: one epoch, at least "
                    f"{duration(DEFAULT_FLOOR_S)}; {change})")  # fmt: skip
        return f"; budget {duration(self.budget_s)}"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    return str(value)


# --- estimating -------------------------------------------------------------------------------
def estimate(costs: Sequence[tuple[str, Cost]], units: UnitCosts) -> tuple[CheckEstimate, ...]:
    """Seconds per check, in run order; a shared cost is charged to the first check using it."""
    seen: set[str] = set()
    out = []
    for check_id, cost in costs:
        fwd, steps, host = cost.forward_items, cost.train_steps, cost.host_ops
        for s in cost.shared:
            if s.key not in seen:
                seen.add(s.key)
                fwd += s.forward_items
                steps += s.train_steps
                host += s.host_ops
        train_s = steps * units.train_step_s
        own = units.of(cost)
        reads = tuple((c.key, units.of(c)) for c in cost.shared)
        out.append(
            CheckEstimate(
                check_id, units.seconds(fwd, steps, host), train_s, cost.conditional, own, reads
            )
        )
    return tuple(out)


def plan_costs(
    checks: Sequence[type[Check[Any]]],
    size: CaseSize,
    settings: Mapping[str, Mapping[str, object]] | None = None,
) -> list[tuple[str, Cost]]:
    """Each check's declared cost under its (overridden) settings."""
    from detective.core.overrides import apply

    out = []
    for cls in checks:
        values = dict((settings or {}).get(cls.id, {}))
        check = cls(settings=apply(cls.settings_type(), values, f"{cls.id}.settings"))
        out.append((cls.id, check.cost(size)))
    return out


# --- fitting a budget -------------------------------------------------------------------------
def _scaled(default: object, knob: Knob, factor: float) -> object:
    if isinstance(default, tuple):
        keep = max(knob.floor, math.floor(len(default) * factor + 1e-9))
        return default[: max(1, min(len(default), keep))]
    if isinstance(default, int) and not isinstance(default, bool):
        return max(min(knob.floor, default), int(default * factor))
    if isinstance(default, float):
        return max(min(float(knob.floor), default), default * factor)
    return default


def fit_budget(
    checks: Sequence[type[Check[Any]]],
    size: CaseSize,
    units: UnitCosts,
    budget_s: float,
    base_settings: Mapping[str, Mapping[str, object]] | None = None,
) -> tuple[dict[str, dict[str, object]], tuple[Shortened, ...]]:
    """Settings per check that fit `budget_s`, and what was shortened.

    Cheapest evidence first: checks are visited from the cheapest up, each may use an equal
    share of what the cheaper ones left; a check over its share has its `shrinkable` settings
    scaled by the largest factor (bisection) that fits, never below their floors.
    """
    from detective.core.overrides import apply

    base = {k: dict(v) for k, v in (base_settings or {}).items()}
    current = {c.id: dict(base.get(c.id, {})) for c in checks}
    readers: dict[str, int] = {}
    for c in checks:
        for s in _declared(c, size, current[c.id]).shared:
            readers[_family(s.key)] = readers.get(_family(s.key), 0) + 1

    def seconds(cls: type[Check[Any]], values: Mapping[str, object]) -> float:
        cost = _declared(cls, size, values)
        own = units.of(cost)
        # A shared cost is split between the checks that read it, so that shrinking one of them
        # is not charged the whole of work another check needs anyway.
        shared = sum(units.of(s) / readers.get(_family(s.key), 1) for s in cost.shared)
        return own + shared

    order = sorted(checks, key=lambda c: seconds(c, current[c.id]))
    left = budget_s
    for i, cls in enumerate(order):
        share = left / (len(order) - i)
        full = seconds(cls, current[cls.id])
        if full <= share or not cls.shrinkable:
            left -= full
            continue
        defaults = cls(
            settings=apply(cls.settings_type(), current[cls.id], f"{cls.id}.settings")
        ).settings

        def values_at(factor: float, d: Any = defaults, c: type[Check[Any]] = cls) -> dict:
            vals = dict(current[c.id])
            for knob in c.shrinkable:
                base = knob.base(getattr(d, knob.setting), size)
                vals[knob.setting] = _scaled(base, knob, factor)
            return vals

        lo, hi = 0.0, 1.0
        for _ in range(20):  # bisection on the factor: cost is monotone in every knob
            mid = (lo + hi) / 2
            if seconds(cls, values_at(mid)) <= share:
                lo = mid
            else:
                hi = mid
        chosen = values_at(lo)
        current[cls.id] = chosen
        left -= seconds(cls, chosen)
    _unify_groups(checks, current)
    shortened = []
    for cls in checks:
        before = apply(cls.settings_type(), base.get(cls.id, {}), f"{cls.id}.settings")
        after = apply(cls.settings_type(), current[cls.id], f"{cls.id}.settings")
        for knob in cls.shrinkable:
            old = knob.base(getattr(before, knob.setting), size)
            new = knob.base(getattr(after, knob.setting), size)
            if old != new:
                shortened.append(Shortened(cls.id, knob.setting, old, new))
    changed = {k: v for k, v in current.items() if v != base.get(k, {})}
    return changed, tuple(shortened)


def _family(key: str) -> str:
    return key.split("@", 1)[0]


def _unify_groups(
    checks: Sequence[type[Check[Any]]], current: dict[str, dict[str, object]]
) -> None:
    """Within a knob group, every check takes the smallest value any of them was given."""
    from detective.core.overrides import apply

    values: dict[tuple[str, str], list[tuple[str, object]]] = {}
    for cls in checks:
        settings = apply(cls.settings_type(), current[cls.id], f"{cls.id}.settings")
        for knob in cls.shrinkable:
            if knob.group:
                values.setdefault((knob.group, knob.setting), []).append(
                    (cls.id, getattr(settings, knob.setting))
                )
    for (_, setting), members in values.items():
        smallest = min((v for _, v in members), key=_size_of)
        for cid, v in members:
            if v != smallest:
                current[cid][setting] = smallest


def _size_of(value: object) -> float:
    return float(len(value)) if isinstance(value, tuple) else float(value)  # type: ignore[arg-type]



def _declared(cls: type[Check[Any]], size: CaseSize, values: Mapping[str, object]) -> Cost:
    from detective.core.overrides import apply

    return cls(settings=apply(cls.settings_type(), dict(values), f"{cls.id}.settings")).cost(size)


def playbook_settings(playbook: Playbook, check_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for cid in check_ids:
        config = playbook.settings_for(cid)
        out[cid] = dict(config.settings) if config is not None else {}
    return out


def with_settings(playbook: Playbook, settings: Mapping[str, Mapping[str, object]]) -> Playbook:
    """The playbook with `settings` merged into its checks' settings overrides."""
    from detective.core.playbook import CheckConfig

    configs = dict(playbook.configs)
    for cid, values in settings.items():
        old = configs.get(cid, CheckConfig())
        merged = {**dict(old.settings), **values}
        configs[cid] = replace(old, settings=tuple(sorted(merged.items())))
    return replace(playbook, configs=configs)


# --- measuring the units on the case ----------------------------------------------------------
def case_size(ctx: RunContext) -> CaseSize:
    def n(split: str) -> int:
        try:
            return len(ctx.dataset(split)) if ctx.has_split(split) else 0
        except TypeError:  # an iterable-only dataset: no length to plan with
            return ctx.options.sample

    train = ctx.case.train_settings
    return CaseSize(
        train_n=n("train"),
        val_n=n("val"),
        sample=ctx.options.sample,
        train_batch=train.batch_size,
        eval_batch=ctx.case.eval_settings.batch_size,
        epochs=train.epochs,
        test_n=n("test"),
    )


def measure_units(ctx: RunContext, size: CaseSize) -> UnitCosts:
    """One forward batch of val (loaded through the case's data) and one optimizer step of a
    fresh model at the recipe's batch size, each timed after one warm-up."""
    import torch

    split = "val" if size.val_n else "train"
    n = max(1, min(size.eval_batch, size.val_n or size.train_n))
    # The timing batches must leave no trace: bad items they meet are the checks' to report.
    problems = copy.deepcopy(ctx.item_problems)
    shapes = dict(ctx._expected_shape)
    try:
        with torch.random.fork_rng(devices=[]):
            return _time_units(ctx, size, split, n)
    finally:
        ctx.item_problems.clear()
        ctx.item_problems.update(problems)
        ctx._expected_shape.clear()
        ctx._expected_shape.update(shapes)


def _time_units(ctx: RunContext, size: CaseSize, split: str, n: int) -> UnitCosts:
    import torch

    from detective.analysis.torchutil import describe_device
    from detective.analysis.training import make_loss, make_optimizer

    model = ctx.model()

    items = [0]  # items that loaded in the last pass (a bad item is skipped, not timed)

    def forward() -> None:
        items[0] = 0
        with torch.no_grad():
            for batch in ctx.batches(split, range(n)):
                model(batch.x)
                items[0] += len(batch.y)
        _sync(ctx)

    forward_s = best_time(forward, max_reps=5) / max(1, items[0])
    # A training step on the recipe's batch (repeated from the first items when the split is
    # smaller): the probes train on tensors already loaded, so no loading is timed here.
    bs = max(2, size.train_batch)
    xs, ys = [], []
    for batch in ctx.batches("train", range(min(bs, size.train_n))):
        xs.append(batch.x)
        ys.append(batch.y)
    x, y = torch.cat(xs), torch.cat(ys)
    reps = math.ceil(bs / len(y))
    x, y = x.repeat(reps, *([1] * (x.ndim - 1)))[:bs], y.repeat(reps)[:bs]
    fresh = ctx.fresh_model().train()
    opt = make_optimizer(ctx, fresh)
    loss_fn = make_loss(ctx)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(fresh(x), y).backward()
        opt.step()
        _sync(ctx)

    step_s = best_time(step)
    return UnitCosts(forward_s, step_s, describe_device(ctx.device), host_op_s())


def best_time(
    work: Callable[[], object], min_total_s: float = 0.25, max_reps: int = 20,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds of one `work()`: the fastest of repeated timings after one warm-up, repeated
    until `min_total_s` were timed (at most `max_reps`; one when a single call is that slow).
    A small model's step takes milliseconds, so a single timing is at the mercy of one context
    switch, and the plan multiplies it by thousands of steps. The minimum is what the code
    costs (timeit's rule): a hiccup only ever adds to it, while a box that is slow throughout
    stays slow in every repeat."""
    work()
    best, total, reps = math.inf, 0.0, 0
    while reps < max_reps and (reps == 0 or total < min_total_s):
        start = clock()
        work()
        took = clock() - start
        best, total, reps = min(best, took), total + took, reps + 1
    return best


# The host unit: a million comparisons of 64-value thumbnails with the top-3 selection over
# them (`neardup.nearest_k`), the kernel of the near-duplicate search.
HOST_OP_PAIRS = 1_000_000
# Reading one image (decoding a raw image, or an item through the case's dataset) without a
# forward pass, in HOST_OP units, calibrated against the unit as a run times it (13-14 ms on the
# 2-core box at one thread; a process that times it alone reads 22-30 ms): the scale case's
# data_health, label_alignment and leakage reads, 0.3-0.5 ms per 64 px image.
READ_OPS = 0.03


def host_op_s() -> float:
    """Seconds per HOST_OP here, timed on random thumbnails after a warm-up (best of three,
    ~50 ms each: a shorter kernel read half the search's speed on a loaded box)."""
    import numpy as np

    from detective.analysis.neardup import nearest_k

    rng = np.random.default_rng(0)
    query = rng.standard_normal((500, 64), dtype=np.float32)
    base = rng.standard_normal((4000, 64), dtype=np.float32)
    nearest_k(query[:50], base, 3)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        nearest_k(query, base, 3)
        times.append(time.perf_counter() - start)
    return min(times) * HOST_OP_PAIRS / (len(query) * len(base))


def _sync(ctx: RunContext) -> None:
    import torch

    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)


def prepare(
    ctx: RunContext, playbook: Playbook, check_ids: Sequence[str], budget_min: float | None
) -> tuple[RunPlan, Playbook]:
    """Measure the units, estimate the plan and (with a budget) shorten it to fit."""
    from detective.core.registry import all_checks

    registry = all_checks()
    checks = [registry[c] for c in check_ids]
    size = case_size(ctx)
    units = measure_units(ctx, size)
    base = playbook_settings(playbook, check_ids)
    shortened: tuple[Shortened, ...] = ()
    budget_s, source = resolve_budget(budget_min, size.epoch_steps * units.train_step_s)
    # The checks get what the timing above left: the clock started before it.
    clock = ctx.budget
    left = None if budget_s is None else max(
        0.0, budget_s - (clock.spent_s() if clock is not None else 0.0))
    if left is not None:
        changed, shortened = fit_budget(checks, size, units, left, base)
        playbook = with_settings(playbook, changed)
        base = playbook_settings(playbook, check_ids)
    costs = plan_costs(checks, size, base)
    estimates = estimate(costs, units)
    dropped = () if left is None else drop_to_fit(estimates, left)
    plan = RunPlan(
        estimates,
        units,
        size,
        budget_s,
        shortened,
        tuple(
            (cid, tuple(sorted(v.items())))
            for cid, v in base.items()
            if v
        ),
        dropped,
        source,
    )
    return plan, playbook


# Never dropped: without the contract nothing else means anything, and without the judgement
# nothing can be supported (it fits its training-side work into what the budget has left).
KEEP = frozenset({"case_contract", "interventions"})


# Never skipped to fit: evidence this cheap (a share of the whole plan, or of the budget when
# larger) costs less than the plan's own error, and skipping it cannot rescue a budget too small
# for the rest.
MIN_DROP_SHARE = 0.05


def drop_to_fit(estimates: Sequence[CheckEstimate], budget_s: float) -> tuple[str, ...]:
    """The last resort when shortening is not enough: skip work until the rest fits, what runs
    only with a symptom first, then the least that makes the plan fit (else the most expensive
    and on). A check saves its own work; work it shares
    (the learning stage's short run) is saved only when every check reading it is skipped, so
    such checks are also weighed as one group. A check on the never-skipped list (the contract,
    the judgement) keeps what it reads; evidence cheaper than MIN_DROP_SHARE of the plan is
    never skipped, even when the rest cannot fit."""
    readers: dict[str, set[str]] = {}
    shared_s: dict[str, float] = {}
    for e in estimates:
        for key, sec in e.shared:
            readers.setdefault(key, set()).add(e.check_id)
            shared_s[key] = sec

    def own(e: CheckEstimate) -> float:
        return e.seconds if math.isnan(e.own_s) else e.own_s

    def saving(group: set[str], dropped: set[str]) -> float:
        gone = dropped | group
        total = sum(own(e) for e in estimates if e.check_id in group)
        orphaned = {k for k, rs in readers.items() if rs <= gone and not rs <= dropped}
        return total + sum(shared_s[k] for k in orphaned)

    by_id = {e.check_id: e for e in estimates}
    candidates: list[frozenset[str]] = [
        frozenset({e.check_id}) for e in estimates if e.check_id not in KEEP
    ]
    candidates += [frozenset(rs) for rs in readers.values() if len(rs) > 1 and not rs & KEEP]
    total = sum(e.seconds for e in estimates)
    cheap = MIN_DROP_SHARE * max(budget_s, total)
    dropped: set[str] = set()
    order: list[str] = []
    while total > budget_s * 1.05:
        options = []
        for group in candidates:
            rest = set(group) - dropped
            if not rest:
                continue
            saved = saving(rest, dropped)
            if saved < cheap:
                continue
            gated = all(by_id[c].conditional for c in rest)
            options.append((not gated, saved, sorted(rest)))
        if not options:
            break
        # Symptom-gated work first; then the least that fits the budget (the least evidence
        # lost), else the most that can be saved, and on.
        first = min(o[0] for o in options)
        options = [o for o in options if o[0] == first]
        enough = [o for o in options if total - o[1] <= budget_s * 1.05]
        _, saved, chosen = min(enough, key=lambda o: o[1]) if enough else max(
            options, key=lambda o: o[1]
        )
        neg = -saved
        # a group goes most expensive member first, as the plan lists it
        order += sorted(chosen, key=lambda c: -own(by_id[c]))
        dropped |= set(chosen)
        total += neg
    # Refill: a check skipped with its group (a cheap probe sharing the learning sample with
    # the expensive short run) may fit on its own once the group's big work is gone: put back,
    # evidence first then the symptom-gated, cheapest first, whatever keeps within the budget.
    def total_without(gone: set[str]) -> float:
        kept = sum(own(e) for e in estimates if e.check_id not in gone)
        return kept + sum(shared_s[k] for k, rs in readers.items() if rs - gone)

    for cid in sorted(order, key=lambda c: (bool(by_id[c].conditional), own(by_id[c]))):
        if total_without(dropped - {cid}) <= budget_s:
            dropped.discard(cid)
    return tuple(c for c in order if c in dropped)


# --- the running side -------------------------------------------------------------------------
@dataclass
class BudgetClock:
    """Seconds spent since the run started and what the budget has left (inf without one)."""

    budget_s: float | None = None
    clock: Callable[[], float] = time.monotonic  # injectable for tests
    started: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.started):
            self.started = self.clock()

    def spent_s(self) -> float:
        return self.clock() - self.started

    def seconds_remaining(self) -> float:
        if self.budget_s is None:
            return math.inf
        return max(0.0, self.budget_s - self.spent_s())

    def fits(self, cost: Cost, units: UnitCosts) -> bool:
        """Would work of this cost fit in what is left? (interventions ask before running)"""
        return units.of(cost) <= self.seconds_remaining()


class Eta:
    """Seconds left: the plan's estimates of the checks not yet finished, the running one scaled
    by its progress. Corrects itself as checks finish faster or slower than planned."""

    def __init__(self, plan: RunPlan, skip: Iterable[str] = ()) -> None:
        self._left = {e.check_id: e.seconds for e in plan.estimates}
        for cid in skip:
            self._left.pop(cid, None)
        self._running = ""
        self._fraction = 0.0

    def started(self, check_id: str) -> None:
        self._running, self._fraction = check_id, 0.0

    def progressed(self, check_id: str, fraction: float) -> None:
        if check_id == self._running:
            self._fraction = max(self._fraction, min(1.0, fraction))

    def finished(self, check_id: str) -> None:
        self._left.pop(check_id, None)
        if check_id == self._running:
            self._running, self._fraction = "", 0.0

    def seconds_left(self) -> float:
        total = 0.0
        for cid, s in self._left.items():
            total += s * (1.0 - self._fraction) if cid == self._running else s
        return total


# --- cost formulas shared by the checks' declarations ------------------------------------------
def learning_sample(size: CaseSize) -> SharedCost:
    """The learning stage's train sample (`recipe.learning_data`), loaded once."""
    from detective.analysis.learning.recipe import PROBE_HELDOUT_ITEMS, PROBE_TRAIN_ITEMS

    n = min(size.sample, PROBE_TRAIN_ITEMS + PROBE_HELDOUT_ITEMS, size.train_n)
    return SharedCost(f"learning_data@{n}", forward_items=n)


INSTRUMENTED_STEP = 1.3  # an instrumented short-run step / a plain training step


def short_run(size: CaseSize, steps: int) -> SharedCost:
    """The learning stage's shared short run (`recipe.short_run`): `steps` steps on at most
    PROBE_TRAIN_ITEMS items, the held-out items evaluated every 10 steps."""
    from detective.analysis.learning.recipe import PROBE_HELDOUT_ITEMS, PROBE_TRAIN_ITEMS

    fit = min(size.sample, PROBE_TRAIN_ITEMS, size.train_n)
    # A batch is at most the sample; gradient and weight norms each step cost ~30 % more
    # (measured on ResNet-18 at 32 and 64 px on CPU).
    steps_eq = steps * min(1.0, fit / max(1, size.train_batch)) * INSTRUMENTED_STEP
    return SharedCost(
        f"short_run@{steps}", forward_items=steps / 10 * PROBE_HELDOUT_ITEMS, train_steps=steps_eq
    )


def probe_sample(size: CaseSize, train_samples: int, val_samples: int) -> SharedCost:
    """The capacity stage's probe sample (`recipe.probe_data`) and the user's model on it."""
    n = min(train_samples, size.train_n) + min(val_samples, size.val_n)
    return SharedCost(f"probe_data@{train_samples},{val_samples}", forward_items=2 * n)


def probe_run(
    size: CaseSize, train_samples: int, val_samples: int, max_epochs: int, min_steps: int,
    fraction: float = 1.0,
) -> tuple[float, float]:
    """(forward items, train steps) of one `train_probe`: as many epochs of the recipe (at most
    `max_epochs`) over the fit share of the sample, at least `min_steps` steps, then evaluated
    on the fit, held-out and val items."""
    n_train = min(train_samples, size.train_n)
    fit = max(2, round(n_train * 0.8 * fraction))
    bs = max(2, min(size.train_batch, fit))
    per_epoch = max(1, math.ceil(fit / bs))
    epochs = max(max(1, min(size.epochs, max_epochs)), math.ceil(min_steps / per_epoch))
    steps = epochs * per_epoch * bs / max(1, size.train_batch)  # in full-batch step units
    return fit + n_train * 0.2 + min(val_samples, size.val_n), steps
