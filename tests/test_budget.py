"""The cost model and `--budget`: units to seconds, shared work counted once, shrinking the
expensive checks' settings to fit (cheapest evidence first), the plan and the ETA in a run."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from capacity_cases import OVERFIT
from helpers import CASES, context_for, write_case

from detective.core import budget
from detective.core.budget import (
    BudgetClock,
    CaseSize,
    Cost,
    Eta,
    Knob,
    RunPlan,
    SharedCost,
    UnitCosts,
    estimate,
    fit_budget,
)
from detective.core.findings import Finding, Verdict
from detective.core.hypotheses import Stage
from detective.core.registry import Check

SIZE = CaseSize(train_n=7000, val_n=2100, sample=2000, train_batch=64, eval_batch=128, epochs=10)
UNITS = UnitCosts(forward_item_s=0.001, train_step_s=0.5, device="cpu")


# --- fake checks: one cheap, one expensive short run, two sharing a grouped short run ---------
@dataclass(frozen=True)
class CheapSettings:
    items: int = 500


@dataclass(frozen=True)
class RunSettings:
    steps: int = 400
    seeds: tuple[int, ...] = (0, 1)


@dataclass(frozen=True)
class SharedSettings:
    steps: int = 100


class _Fake(Check[None]):
    stage = Stage.LEARNING
    description = "a fake check for the cost model"
    measurement_type = type(None)

    def measure(self, ctx, progress) -> None:  # noqa: ANN001
        return None

    def judge(self, measurement: None) -> Finding:
        return Finding(self.id, Verdict.PASS, "ok")


class Cheap(_Fake):
    id = "cheap"
    title = "cheap"
    settings_type = CheapSettings
    shrinkable = (Knob("items", 100),)

    def cost(self, size: CaseSize) -> Cost:
        return Cost(forward_items=self.settings.items)  # 0.5 s


class Expensive(_Fake):
    id = "expensive"
    title = "expensive"
    settings_type = RunSettings
    shrinkable = (Knob("steps", 40), Knob("seeds", 1))

    def cost(self, size: CaseSize) -> Cost:
        return Cost(train_steps=self.settings.steps * len(self.settings.seeds))  # 400 s


class SharedA(_Fake):
    id = "shared_a"
    title = "shared a"
    settings_type = SharedSettings
    shrinkable = (Knob("steps", 20, group="run"),)

    def cost(self, size: CaseSize) -> Cost:
        return Cost(shared=(SharedCost(f"run@{self.settings.steps}",
                                       train_steps=self.settings.steps),))  # fmt: skip


class SharedB(SharedA):
    id = "shared_b"
    title = "shared b"


def _seconds(checks, settings) -> float:  # noqa: ANN001
    costs = budget.plan_costs(checks, SIZE, settings)
    return sum(e.seconds for e in estimate(costs, UNITS))


# --- units ------------------------------------------------------------------------------------
def test_units_turn_into_seconds_and_shared_work_is_counted_once() -> None:
    costs = [
        ("a", Cost(forward_items=1000, shared=(SharedCost("run@80", train_steps=80),))),
        ("b", Cost(train_steps=10, shared=(SharedCost("run@80", train_steps=80),))),
        ("c", Cost(shared=(SharedCost("run@40", train_steps=40),))),  # other settings: its own
    ]
    est = {e.check_id: e for e in estimate(costs, UNITS)}
    assert est["a"].seconds == pytest.approx(1.0 + 40.0)  # the first reader pays the shared run
    assert est["b"].seconds == pytest.approx(5.0)
    assert est["c"].seconds == pytest.approx(20.0)
    assert est["a"].short_runs_s == pytest.approx(40.0)


def test_probe_run_cost_follows_the_recipe_and_the_step_floor() -> None:
    # 1000 sampled → 800 fit items, 13 steps an epoch at batch 64, 5 epochs (of the recipe's 10)
    fwd, steps = budget.probe_run(SIZE, 1000, 1000, max_epochs=5, min_steps=0)
    assert steps == pytest.approx(5 * 13 * 64 / 64)
    assert fwd == pytest.approx(800 + 200 + 1000)
    # a quarter of the data still gets the step floor
    _, small = budget.probe_run(SIZE, 1000, 1000, max_epochs=1, min_steps=60, fraction=0.25)
    assert small >= 60 - 1e-9


def test_registered_checks_declare_costs_the_plan_can_add_up() -> None:
    from detective.core.registry import all_checks

    checks = list(all_checks().values())
    costs = budget.plan_costs(checks, SIZE)
    # each alone (shared work included), so the order of the registry does not matter
    est = {cid: estimate([(cid, cost)], UNITS)[0].seconds for cid, cost in costs}
    assert all(math.isfinite(s) and s >= 0 for s in est.values())
    # the short runs dominate, as measured on the ResNet-18 case
    heavy = {"regularization", "capacity", "loss_curve", "lr_range_test", "robustness_sweep"}
    light = {"per_class_report", "calibration", "eval_representativeness"}
    assert min(est[c] for c in heavy) > 5 * max(est[c] for c in light)
    for cls in checks:  # every knob names a real setting of the check
        names = {f for f in cls.settings_type.__dataclass_fields__}
        assert {k.setting for k in cls.shrinkable} <= names, cls.id


# --- fitting a budget -------------------------------------------------------------------------
def test_a_generous_budget_shortens_nothing() -> None:
    checks = [Cheap, Expensive, SharedA, SharedB]
    full = _seconds(checks, None)
    changed, shortened = fit_budget(checks, SIZE, UNITS, budget_s=full * 1.5)
    assert changed == {} and shortened == ()


def test_a_tight_budget_shortens_the_expensive_check_and_keeps_the_cheap_one() -> None:
    checks = [Cheap, Expensive, SharedA, SharedB]
    full = _seconds(checks, None)  # 0.5 + 400 + 50
    changed, shortened = fit_budget(checks, SIZE, UNITS, budget_s=120.0)
    assert "cheap" not in changed  # cheapest evidence first: it runs in full
    assert changed["expensive"]["steps"] < 400
    after = _seconds(checks, changed)
    assert after <= 120.0 * 1.01 < full
    assert {s.check_id for s in shortened} >= {"expensive"}
    text = "; ".join(s.describe() for s in shortened)
    assert "expensive.steps 400 →" in text


def test_a_shared_run_shrinks_alike_in_every_check_that_reads_it() -> None:
    checks = [Cheap, Expensive, SharedA, SharedB]
    changed, _ = fit_budget(checks, SIZE, UNITS, budget_s=40.0)
    a, b = changed["shared_a"]["steps"], changed["shared_b"]["steps"]
    assert a == b < 100  # one short run, not two of different lengths


def test_floors_hold_and_the_plan_says_it_cannot_fit() -> None:
    checks = [Cheap, Expensive]
    changed, _ = fit_budget(checks, SIZE, UNITS, budget_s=1.0)
    assert changed["expensive"]["steps"] == 40 and changed["expensive"]["seeds"] == (0,)
    assert "cheap" not in changed or changed["cheap"]["items"] >= 100
    costs = budget.plan_costs(checks, SIZE, changed)
    plan = RunPlan(estimate(costs, UNITS), UNITS, SIZE, budget_s=1.0)
    assert plan.over_budget() and "cannot fit" in plan.describe()


def test_the_plan_describes_time_device_epoch_and_short_runs() -> None:
    costs = budget.plan_costs([Cheap, Expensive], SIZE)
    plan = RunPlan(estimate(costs, UNITS), UNITS, SIZE)
    text = plan.describe()
    assert text.startswith("≈ 7 min on cpu")  # 400.5 s
    assert "one training epoch ≈ 55 s" in text  # 110 steps × 0.5 s
    assert "short runs ≈ 7 min" in text and "budget" not in text


# --- the running side -------------------------------------------------------------------------
def test_clock_without_a_budget_never_runs_out_and_with_one_counts_down() -> None:
    now = [100.0]
    assert BudgetClock(clock=lambda: now[0]).seconds_remaining() == math.inf
    clock = BudgetClock(budget_s=60.0, clock=lambda: now[0])
    now[0] += 45.0
    assert clock.seconds_remaining() == pytest.approx(15.0)
    assert clock.fits(Cost(train_steps=20), UNITS) is True  # 10 s
    assert clock.fits(Cost(train_steps=40), UNITS) is False  # 20 s
    now[0] += 100.0
    assert clock.seconds_remaining() == 0.0


def test_eta_counts_what_is_left_and_the_running_check_by_its_progress() -> None:
    costs = [("a", Cost(train_steps=20)), ("b", Cost(train_steps=40)), ("c", Cost())]
    plan = RunPlan(estimate(costs, UNITS), UNITS, SIZE)
    eta = Eta(plan, skip=("c",))
    assert eta.seconds_left() == pytest.approx(30.0)
    eta.started("a")
    eta.progressed("a", 0.5)
    assert eta.seconds_left() == pytest.approx(25.0)
    eta.progressed("a", 0.2)  # progress never goes backwards
    assert eta.seconds_left() == pytest.approx(25.0)
    eta.finished("a")
    assert eta.seconds_left() == pytest.approx(20.0)


# --- measured on a case, and a run under --budget ---------------------------------------------
def test_units_are_measured_on_the_case_and_leave_no_trace(tmp_path: Path) -> None:
    ctx = context_for(CASES / "digits_clean.py", tmp_path)
    size = budget.case_size(ctx)
    assert size.train_n > 0 and size.val_n > 0 and size.train_batch > 0
    units = budget.measure_units(ctx, size)
    assert units.forward_item_s > 0 and units.train_step_s > 0 and units.device == "cpu"
    assert ctx.item_problems == {}


def test_a_unit_is_the_fastest_of_repeated_timings_not_one_interrupted_one() -> None:
    # A 5 ms step whose second timing a context switch stretches to 50 ms: the unit is 5 ms.
    durations = iter([0.005, 0.050] + [0.005] * 100)  # after the untimed warm-up
    now = [0.0]
    calls = [0]

    def work() -> None:
        calls[0] += 1
        if calls[0] > 1:  # the warm-up call takes no clock time here
            now[0] += next(durations)

    assert budget.best_time(work, clock=lambda: now[0]) == pytest.approx(0.005)
    assert calls[0] == 1 + 20  # 0.25 s would take 40 timings: capped at max_reps
    slow = iter([1.0, 1.0])
    now[0], calls[0] = 0.0, 0

    def slow_work() -> None:
        calls[0] += 1
        if calls[0] > 1:
            now[0] += next(slow)

    # a step slower than the timing target is timed once (a real network's step is not repeated)
    assert budget.best_time(slow_work, clock=lambda: now[0]) == pytest.approx(1.0)
    assert calls[0] == 2


def _fixed_units(monkeypatch) -> None:  # noqa: ANN001
    """Deterministic units: the test must not depend on how fast this machine is today."""
    slow = UnitCosts(forward_item_s=0.001, train_step_s=0.25, device="cpu")
    monkeypatch.setattr(budget, "measure_units", lambda *_: slow)


def test_run_under_a_budget_shortens_settings_says_so_and_measures_less(
    tmp_path: Path, monkeypatch, capsys  # noqa: ANN001
) -> None:
    from detective.core.session import Session
    from detective.ui.cli import main

    _fixed_units(monkeypatch)
    session = tmp_path / "s"
    # 12 s: lr_range_test at its 30-step floor (7.5 s) and the judgement's reserved share (its
    # evaluation side over 500 val items, ≈ 2.3 s) fit; 9 s would skip lr_range_test.
    code = main(["run", str(CASES / "digits_clean.py"), "--headless", "--session", str(session),
                 "--only", "case_contract,lr_range_test", "--budget", "0.2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Plan: ≈" in out and "budget 12 s" in out
    assert "shortened to fit the budget" in out
    found = re.search(r"lr_range_test\.steps 80 → (\d+)", " ".join(out.split()))
    assert found, out
    steps = int(found.group(1))
    assert 30 <= steps < 80
    with Session.open(session, readonly=True) as s:
        stored = {f.check_id: f for f in s.findings()}
    lrs = stored["lr_range_test"].measurement["lrs"]
    # the sweep ran on the shortened schedule: its LR grows by the 1e7 range over steps-1 steps
    assert lrs[1] / lrs[0] == pytest.approx((10 / 1e-6) ** (1 / (steps - 1)), rel=1e-6)


def test_a_check_that_cannot_fit_even_shortened_is_skipped_and_named(
    tmp_path: Path, monkeypatch, capsys  # noqa: ANN001
) -> None:
    from detective.core.session import Session
    from detective.ui.cli import main

    _fixed_units(monkeypatch)  # lr_range_test at its 30-step floor: 7.5 s > a 3 s budget
    session = tmp_path / "s"
    code = main(["run", str(CASES / "digits_clean.py"), "--headless", "--session", str(session),
                 "--only", "case_contract,lr_range_test", "--budget", "0.05"])  # fmt: skip
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out
    assert "skipped to fit: lr_range_test" in out
    assert "skip lr_range_test: does not fit --budget" in out
    with Session.open(session, readonly=True) as s:
        assert [f.check_id for f in s.findings()] == ["case_contract", "interventions"]


def test_dropping_takes_symptom_gated_work_first_and_keeps_the_contract() -> None:
    from detective.core.budget import CheckEstimate, drop_to_fit

    est = [CheckEstimate("case_contract", 50.0, 0.0), CheckEstimate("lr", 40.0, 40.0),
           CheckEstimate("capacity", 30.0, 30.0, "only with a gap"),
           CheckEstimate("cheap", 1.0, 0.0)]  # fmt: skip
    assert drop_to_fit(est, 200.0) == ()
    assert drop_to_fit(est, 90.0) == ("capacity",)  # gated first, though not the largest
    assert drop_to_fit(est, 52.0) == ("capacity", "lr")  # never the contract
    # skipping a check that only reads shared work (another check still needs it) saves nothing
    shared = [*est, CheckEstimate("loss_curve", 100.0, 100.0, "", own_s=0.0)]
    assert "loss_curve" not in drop_to_fit(shared, 60.0)


def test_checks_sharing_a_short_run_are_skipped_together_and_cheap_evidence_never() -> None:
    """Planted: the learning stage's short run (80 s) is read by three checks with no work of
    their own; the contract reads the collection pass. Skipping one reader saves nothing, all
    three save the run. Cheap checks are kept even when the rest cannot fit."""
    from detective.core.budget import CheckEstimate, drop_to_fit

    run, coll = ("short_run@20", 80.0), ("collection@2000", 30.0)
    est = [CheckEstimate("case_contract", 30.5, 0.0, own_s=0.5, shared=(coll,)),
           CheckEstimate("loss_curve", 80.0, 80.0, own_s=0.0, shared=(run,)),
           CheckEstimate("gradient_flow", 0.0, 0.0, own_s=0.0, shared=(run,)),
           CheckEstimate("weight_updates", 0.0, 0.0, own_s=0.0, shared=(run,)),
           CheckEstimate("per_class", 0.0, 0.0, own_s=0.0, shared=(coll,)),
           CheckEstimate("loss_at_init", 4.0, 0.0, own_s=4.0)]  # fmt: skip
    # 114.5 s planned, 60 s budget: the group goes (80 s), nothing else needs to
    dropped = drop_to_fit(est, 60.0)
    assert set(dropped) == {"loss_curve", "gradient_flow", "weight_updates"}
    # a budget nothing can meet: the collection stays (the contract reads it), and the 4 s
    # check is not thrown away for nothing
    assert "loss_at_init" not in drop_to_fit(est, 10.0)
    assert "per_class" not in drop_to_fit(est, 10.0)
    # clean: a budget that fits drops nothing
    assert drop_to_fit(est, 120.0) == ()
    # the least that fits goes, not the most: a 40 s sweep rather than the 80 s group (the
    # 7k ResNet-18 case lost its whole learning stage to a rule that took the most)
    sweep = [*est, CheckEstimate("lr_range_test", 40.0, 40.0, own_s=40.0)]  # 154.5 s
    assert drop_to_fit(sweep, 110.0) == ("lr_range_test",)
    assert set(drop_to_fit(sweep, 75.0)) == {"loss_curve", "gradient_flow", "weight_updates"}


def test_run_without_a_budget_prints_the_plan_and_shortens_nothing(
    tmp_path: Path, monkeypatch, capsys  # noqa: ANN001
) -> None:
    from detective.ui.cli import main

    # A small case at 20 ms a step (its epoch ≈ 0.4 s): the checks and the judgement's reserve
    # (one training-side intervention, 3 seeds × 2 short runs ≈ 20 s) fit the floor whole.
    fast = UnitCosts(forward_item_s=0.001, train_step_s=0.02, device="cpu")
    monkeypatch.setattr(budget, "measure_units", lambda *_: fast)
    code = main(["run", str(CASES / "digits_clean.py"), "--headless", "--session",
                 str(tmp_path / "s"), "--only", "case_contract,loss_at_init"])  # fmt: skip
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out
    assert "Plan: ≈" in out and "shortened to fit" not in out
    # the digits' epoch is far below the floor: the default is the floor
    floor = budget.duration(budget.DEFAULT_FLOOR_S)
    assert f"budget {floor} (default: one epoch, at least {floor};" in out


# --- the default budget: one epoch, at least the floor ----------------------------------------
def test_default_budget_is_one_epoch_above_the_floor_and_the_floor_below_it() -> None:
    from detective.core.budget import DEFAULT_FLOOR_S, BudgetSource, resolve_budget

    # a real network: an epoch well above the floor is the budget
    assert resolve_budget(None, 3 * DEFAULT_FLOOR_S) == (3 * DEFAULT_FLOOR_S, BudgetSource.EPOCH)
    # a tiny case (an epoch of a second) gets the floor, so it runs in full
    assert resolve_budget(None, 1.0) == (DEFAULT_FLOOR_S, BudgetSource.FLOOR)
    assert resolve_budget(None, math.nan) == (DEFAULT_FLOOR_S, BudgetSource.FLOOR)  # untimed
    # what the user says wins, either way
    assert resolve_budget(2.0, 3 * DEFAULT_FLOOR_S) == (120.0, BudgetSource.GIVEN)
    assert resolve_budget(10.0, 1.0) == (600.0, BudgetSource.GIVEN)
    assert resolve_budget(math.inf, 3 * DEFAULT_FLOOR_S) == (None, BudgetSource.NONE)


def _slow_steps(monkeypatch, step_s: float) -> None:  # noqa: ANN001
    """Units with a training step so slow that one epoch of the digits is `step_s` × its steps."""
    monkeypatch.setattr(
        budget, "measure_units", lambda *_: UnitCosts(0.001, step_s, device="cpu")
    )


def test_default_budget_follows_the_measured_epoch_and_shortens_a_slow_case(
    tmp_path: Path, monkeypatch, capsys  # noqa: ANN001
) -> None:
    """Planted: a step so slow that lr_range_test's 80 steps cost far more than one epoch, and
    the epoch is above the floor. The default budget must be that epoch and must shorten."""
    from detective.ui.cli import main

    ctx = context_for(CASES / "digits_clean.py", tmp_path / "probe")
    steps = budget.case_size(ctx).epoch_steps
    step_s = 2 * budget.DEFAULT_FLOOR_S / steps  # one epoch = twice the floor
    _slow_steps(monkeypatch, step_s)
    lr_range_s = 80 * step_s  # its default 80 steps
    assert lr_range_s > 2 * steps * step_s  # the sweep alone is over the epoch, by a margin
    code = main(["run", str(CASES / "digits_clean.py"), "--headless", "--session",
                 str(tmp_path / "s"), "--only", "case_contract,lr_range_test"])  # fmt: skip
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out
    epoch = budget.duration(2 * budget.DEFAULT_FLOOR_S)
    assert f"budget: one epoch ≈ {epoch} (default;" in out
    assert "shortened to fit the budget" in out or "skipped to fit: lr_range_test" in out


def test_budget_none_is_no_bound_even_for_a_slow_case(
    tmp_path: Path, monkeypatch, capsys  # noqa: ANN001
) -> None:
    """The same slow case: `--budget none` (or 0) shortens nothing and skips nothing."""
    from detective.core.session import Session
    from detective.ui.cli import main

    ctx = context_for(CASES / "digits_clean.py", tmp_path / "probe")
    _slow_steps(monkeypatch, 2 * budget.DEFAULT_FLOOR_S / budget.case_size(ctx).epoch_steps)
    for i, word in enumerate(("none", "0")):
        session = tmp_path / f"s{i}"
        code = main(["run", str(CASES / "digits_clean.py"), "--headless", "--session",
                     str(session), "--only", "case_contract,lr_range_test",
                     "--budget", word])  # fmt: skip
        out = " ".join(capsys.readouterr().out.split())
        assert code == 0, out
        assert "no budget (--budget none)" in out
        assert "shortened to fit" not in out and "skipped to fit" not in out
        with Session.open(session, readonly=True) as s:
            stored = {f.check_id: f for f in s.findings()}
        lrs = stored["lr_range_test"].measurement["lrs"]
        # the full 80-step schedule (the sweep may stop early once the loss diverges)
        assert lrs[1] / lrs[0] == pytest.approx((10 / 1e-6) ** (1 / 79), rel=1e-6)


def test_budget_must_be_positive_minutes_or_none(capsys) -> None:  # noqa: ANN001
    from detective.ui.cli import main

    for bad in ("-1", "soon", "nan"):
        with pytest.raises(SystemExit) as e:
            main(["run", str(CASES / "digits_clean.py"), "--budget", bad])
        assert e.value.code == 2
        assert "expected minutes > 0, or none" in capsys.readouterr().err


# --- symptom gating and reuse of coinciding short runs ----------------------------------------
def test_clean_case_runs_no_capacity_or_regularization_probe_and_says_why(tmp_path: Path) -> None:
    from helpers import run_check

    m, f = run_check("regularization", CASES / "digits_clean.py", tmp_path / "r")
    assert m.experiments == () and "no train/val gap" in f.summary
    m, f = run_check("capacity", CASES / "digits_clean.py", tmp_path / "c")
    assert m.probes == () and "no probe needed" in f.summary


def test_a_planted_gap_runs_the_probes_and_coinciding_runs_are_trained_once(
    tmp_path: Path, monkeypatch  # noqa: ANN001
) -> None:
    from detective.checks.capacity.capacity import CapacitySettings
    from detective.checks.capacity.regularization import RegularizationSettings
    from detective.core.progress import Progress
    from detective.core.registry import get_check
    from detective.workflows import experiments

    trained: list[tuple[object, int, float]] = []
    real = experiments._train_probe

    def counting(ctx, recipe, data, seed, *args, **kwargs):  # noqa: ANN001, ANN003, ANN202
        trained.append((recipe, seed, args[1]))
        return real(ctx, recipe, data, seed, *args, **kwargs)

    monkeypatch.setattr(experiments, "_train_probe", counting)
    case = write_case(tmp_path, OVERFIT)
    small = {"train_samples": 300, "val_samples": 200, "max_epochs": 1, "min_steps": 10,
             "max_seconds": 1e9}  # fmt: skip
    ctx = context_for(case, tmp_path)
    cap = get_check("capacity")(settings=CapacitySettings(**small))
    m, _ = cap.run(ctx, Progress())
    assert m.probes, "a planted train/val gap runs the capacity probes"
    after_capacity = len(trained)
    reg = get_check("regularization")(settings=RegularizationSettings(seeds=(0,), **small))
    r, _ = reg.run(ctx, Progress())
    assert r.experiments, "a planted train/val gap runs the regularization experiments"
    # regularization's seed-0 baseline is capacity's base run: not trained again
    reg_runs = trained[after_capacity:]
    base = trained[0][0]
    assert not any(recipe == base and seed == 0 for recipe, seed, _ in reg_runs)
    assert len(reg_runs) == len(r.experiments)


# --- data loading -----------------------------------------------------------------------------
def test_worker_processes_load_the_same_batches(tmp_path: Path) -> None:
    import torch

    from detective.core.context import default_workers

    assert default_workers("cpu") == 0  # on a CPU run workers would take the model's cores
    idx = list(range(0, 200, 3))
    plain = list(context_for(CASES / "digits_clean.py", tmp_path / "a").batches("val", idx))
    ctx = context_for(CASES / "digits_clean.py", tmp_path / "b", num_workers=2)
    forked = list(ctx.batches("val", idx, batch_size=16))
    cat = torch.cat
    assert torch.equal(cat([b.indices for b in plain]), cat([b.indices for b in forked]))
    assert torch.equal(torch.cat([b.x for b in plain]), torch.cat([b.x for b in forked]))


def test_workers_must_be_a_whole_number_not_below_zero(capsys) -> None:  # noqa: ANN001
    from detective.ui.cli import main

    with pytest.raises(SystemExit) as e:
        main(["run", str(CASES / "digits_clean.py"), "--workers", "-1"])
    assert e.value.code == 2
    assert "expected a whole number ≥ 0" in capsys.readouterr().err


# --- mixed precision --------------------------------------------------------------------------
def test_collection_under_cpu_bf16_autocast_agrees_with_fp32(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """On CUDA the pass runs in bf16/fp16; its evidence must not depend on that beyond noise.
    CPU autocast (bf16) stands in for it here."""
    import numpy as np
    import torch

    from detective.analysis import collect as collect_mod

    fp32 = collect_mod.collect(context_for(CASES / "digits_clean.py", tmp_path / "a"), "val")
    monkeypatch.setattr(collect_mod, "AMP_DTYPE", [torch.bfloat16])
    bf16 = collect_mod.collect(context_for(CASES / "digits_clean.py", tmp_path / "b"), "val")
    assert np.array_equal(fp32.index, bf16.index)
    assert bf16.log_probs.dtype == np.float32 and np.isfinite(bf16.log_probs).all()
    # bf16 is not fp32: the log-probabilities moved, a little
    diff = np.abs(fp32.log_probs - bf16.log_probs)
    assert 0 < np.median(diff) < 0.05
    agree = (fp32.topk_classes[:, 0] == bf16.topk_classes[:, 0]).mean()
    assert agree > 0.97
    acc32 = (fp32.topk_classes[:, 0] == fp32.label).mean()
    acc16 = (bf16.topk_classes[:, 0] == bf16.label).mean()
    assert abs(acc32 - acc16) < 0.02


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU"
)
def test_cuda_inference_runs_in_reduced_precision() -> None:
    import torch

    from detective.analysis.torchutil import inference_autocast, inference_dtype

    device = torch.device("cuda")
    assert inference_dtype(device) in (torch.bfloat16, torch.float16)
    x = torch.randn(8, 8, device=device)
    with inference_autocast(device):
        assert (x @ x).dtype == inference_dtype(device)


def test_the_checks_get_what_the_unit_timing_left(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The budget's clock starts before the units are timed: the plan fits the checks into what
    is left, so a run stays within its budget whatever the timing took."""
    from detective.core.playbook import resolve_playbook

    ctx = context_for(CASES / "digits_clean.py", tmp_path / "probe")
    _slow_steps(monkeypatch, 0.05)
    playbook = resolve_playbook(None)
    ids = ["case_contract", "overfit_one_batch", "loss_curve", "lr_range_test"]
    now = [0.0]
    plans = {}
    for spent in (0.0, 20.0):
        ctx.budget = BudgetClock(None, clock=lambda: now[0], started=0.0)
        now[0] = spent  # what timing the units took
        plans[spent], _ = budget.prepare(ctx, playbook, ids, 0.5)  # a 30 s budget
    assert plans[0.0].total_s > 12.0  # with the whole budget the plan uses more than 10 s
    assert plans[20.0].total_s <= 10.0 + 1e-6  # 10 s left after 20 s of timing
    assert plans[20.0].budget_s == plans[0.0].budget_s == 30.0  # the budget itself is the same
