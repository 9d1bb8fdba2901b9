"""Training-side interventions: for each, a planted case where the short paired re-training
recovers the metric and a clean, well-trained case where it does not; the guard against an
undertrained short run; the budget; the new experiment targets; the CLI replay."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest
from helpers import context_for, write_case
from training_intervention_cases import case_source

from detective.core.context import RunContext, RunOptions
from detective.core.findings import Moved, Side
from detective.core.session import Session, SessionInfo
from detective.ui.cli import main
from detective.workflows.experiments import (
    PACE_STEPS,
    ExperimentError,
    ProbeResult,
    _optimizer,
    base_recipe,
    build_model,
    parse_change,
)
from detective.workflows.interventions import InterventionError
from detective.workflows.training_interventions import (
    TRAIN_INTERVENTIONS,
    TrainingResult,
    parse_training_intervention,
    run_training_intervention,
)

# (intervention, hypothesis it tests, the planted bug as case knobs)
PLANTED = [
    ("train.lr=x10", "lr_too_low", {"LR": 2e-5}),
    ("train.lr=/10", "lr_too_high", {"LR": 0.3}),
    ("train.lr=/10", "exploding_gradients", {"OPT": "sgd", "LR": 0.5, "DEPTH": 3}),
    ("train.clip=1.0", "exploding_gradients", {"OPT": "sgd", "LR": 0.5, "DEPTH": 3}),
    ("model.init=he", "exploding_gradients",
     {"OPT": "sgd", "LR": 0.02, "DEPTH": 6, "INIT_STD": 0.4}),
    ("data.normalize=measured", "normalization_mismatch",
     {"SCALE": 1.0, "STD": False, "OPT": "sgd", "LR": 0.01}),
    ("model.unfreeze=all", "frozen_parameters", {"FREEZE": True, "WIDTH": 6}),
    ("hook.optimizer=all", "frozen_parameters", {"HEAD_ONLY_OPT": True, "WIDTH": 6}),
    ("model.activation=relu", "vanishing_gradients",
     {"ACT": "sigmoid", "DEPTH": 6, "OPT": "sgd", "LR": 0.1}),
    ("model.init=default", "vanishing_gradients",
     {"ACT": "tanh", "DEPTH": 6, "INIT_STD": 0.01, "OPT": "sgd", "LR": 0.05}),
    ("model.activation=leaky_relu", "dead_units", {"BIAS": -3.0, "DEPTH": 2}),
    ("model.init=default", "dead_units", {"BIAS": -3.0, "DEPTH": 2}),
    ("data.drop=label_issues", "label_noise", {"NOISE": 0.3, "PAIR_NOISE": True}),
    ("data.labels=raw", "label_misalignment", {"MISALIGN": 0.6}),
    ("train.class_weight=balanced", "class_imbalance",
     {"LONGTAIL": 0.5, "EPOCHS": 10, "LR": 1e-3}),
    ("transform.train=deterministic", "augmentation_breaks_labels", {"FLIP": True, "EPOCHS": 5}),
    ("hook.loss=probabilities", "wrong_loss", {"SOFTMAX": True, "LR": 1e-3, "EPOCHS": 4}),
    ("hook.loss=default", "wrong_loss", {"MSE": True, "LR": 1e-3, "EPOCHS": 4}),
    ("model.width=x2", "underfitting", {"WIDTH": 3, "LR": 1e-2}),
    ("train.epochs=x2", "underfitting", {"EPOCHS": 1, "LR": 3e-4}),
]


def _ctx(tmp: Path, **knobs: object) -> RunContext:
    return context_for(write_case(tmp, case_source(**knobs)), tmp)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    """A clean MLP trained to convergence (≈ 98 % val); baseline short runs are shared."""
    return _ctx(tmp_path_factory.mktemp("clean"))


def test_every_hypothesis_with_an_intervention_is_covered_by_a_planted_case() -> None:
    tested = {(label, hyp) for label, hyp, _ in PLANTED}
    assert tested == {(i.id, i.hypothesis) for i in TRAIN_INTERVENTIONS}
    for i in TRAIN_INTERVENTIONS:
        assert i.side is Side.TRAIN and i.predicted == 1 and i.description
        assert i.label == i.id  # replayable as `--set <label>`
        parse_change(i.label)


@pytest.mark.parametrize(
    ("label", "hypothesis", "knobs"), PLANTED, ids=[f"{h}:{lab}" for lab, h, _ in PLANTED]
)
def test_planted_bug_is_recovered(
    label: str, hypothesis: str, knobs: dict[str, object], tmp_path: Path
) -> None:
    ctx = _ctx(tmp_path, **knobs)
    r = run_training_intervention(ctx, parse_training_intervention(label, hypothesis))
    assert isinstance(r, TrainingResult)
    assert r.effect is Moved.RECOVERS, r.notes
    assert r.p_value < 1e-4  # far from alpha = 0.05
    assert r.delta > 1.2 * r.min_delta  # above the seeds' spread, with room
    # It beats both references: the baseline short runs and the user's own trained model.
    assert r.after > r.baseline_acc + 0.03 and r.after > r.model_acc + 0.03
    o = r.to_outcome()
    assert o.label == label and o.side is Side.TRAIN and o.cost_s > 0
    # Every seed, or two when the interim boundary decided the recovery early.
    assert o.seeds == 3 or (o.seeds == 2 and any("decided after 2" in n for n in r.notes))
    assert o.effect is Moved.RECOVERS and o.hypothesis == hypothesis


@pytest.mark.parametrize(
    ("label", "hypothesis"),
    sorted({(i.id, i.hypothesis) for i in TRAIN_INTERVENTIONS
            if i.id not in ("model.activation=relu", "data.labels=raw")
            and i.hypothesis != "frozen_parameters"}),
)
def test_clean_model_is_not_recovered(label: str, hypothesis: str, clean: RunContext) -> None:
    r = run_training_intervention(clean, parse_training_intervention(label, hypothesis))
    assert r.effect is not Moved.RECOVERS, r.notes
    assert r.after < r.model_acc - 0.003  # the short run stays below the user's model
    assert r.model_acc > 0.95


@pytest.mark.parametrize(("label", "knobs"), [
    ("model.unfreeze=all", {}),  # clean: nothing frozen
    ("hook.optimizer=all", {}),
    ("hook.optimizer=all", {"FREEZE": True, "WIDTH": 6}),  # requires_grad=False: the
    ("model.unfreeze=all", {"HEAD_ONLY_OPT": True, "WIDTH": 6}),  # other fix's bug
])
def test_a_change_that_frees_no_parameter_is_not_run(
    label: str, knobs: dict[str, object], clean: RunContext, tmp_path: Path
) -> None:
    ctx = _ctx(tmp_path, **knobs) if knobs else clean
    with pytest.raises(InterventionError, match="nothing to unfreeze"):
        run_training_intervention(ctx, parse_training_intervention(label, "frozen_parameters"))


def test_clean_tanh_model_is_not_recovered_by_relu(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, ACT="tanh", LR=1e-2)
    r = run_training_intervention(ctx, "model.activation=relu")
    assert r.effect is not Moved.RECOVERS and r.model_acc > 0.95
    assert abs(r.after - r.baseline_acc) < 0.03


def test_benign_augmentation_on_small_data_is_not_blamed(tmp_path: Path) -> None:
    # Small data with a benign augmentation (as clean_small_data): the baseline trains on fresh
    # augmented draws, so removing the augmentation is no "fix".
    ctx = _ctx(tmp_path, AUG=True, PER_CLASS=20, EPOCHS=40)
    r = run_training_intervention(ctx, "transform.train=deterministic")
    assert r.effect is not Moved.RECOVERS, r.notes
    assert r.after < r.model_acc + 0.03


def test_relu_swap_on_a_relu_model_says_there_is_nothing_to_swap(clean: RunContext) -> None:
    with pytest.raises(InterventionError, match="no Sigmoid/Tanh module"):
        run_training_intervention(clean, "model.activation=relu")


def test_raw_labels_on_an_aligned_case_say_there_is_nothing_to_realign(clean: RunContext) -> None:
    with pytest.raises(InterventionError, match="nothing to realign"):
        run_training_intervention(clean, "data.labels=raw")


def test_an_undertrained_short_baseline_never_makes_a_change_look_like_a_fix(
    clean: RunContext,
) -> None:
    # One epoch and no step floor: the baseline short run is far below the user's model, and
    # LR ×10 beats it significantly. It is still not a recovery: it does not beat the model.
    r = run_training_intervention(
        clean, "train.lr=x10", max_epochs=1, min_steps=0, train_samples=300
    )
    assert r.p_baseline < 1e-3 and r.after > r.baseline_acc + 0.1
    assert r.after < r.model_acc - 0.05
    assert r.effect is not Moved.RECOVERS
    assert r.before == pytest.approx(r.model_acc)  # the stronger reference is the user's model


def test_a_budget_that_cuts_runs_short_is_inconclusive(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, LR=2e-5)
    r = run_training_intervention(ctx, "train.lr=x10", budget_s=0.0, seeds=2)
    assert r.cut_short and r.effect is Moved.INCONCLUSIVE
    assert any("budget" in n for n in r.notes)


def _cut_seeds(monkeypatch: pytest.MonkeyPatch, cut: set[int]) -> None:
    """Runs of the seeds in `cut` report that the wall-time cap stopped them."""
    from dataclasses import replace

    from detective.workflows import training_interventions as ti

    real = ti.train_probe

    def probe(ctx: RunContext, recipe: object, data: object, seed: int, *a: object,
              **kw: object) -> object:
        r = real(ctx, recipe, data, seed, *a, **kw)  # type: ignore[arg-type]
        return replace(r, stopped_early=True) if seed in cut else r

    monkeypatch.setattr(ti, "train_probe", probe)


def test_a_seed_cut_short_is_left_out_not_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LR 0.3 is planted: with seed 2 cut by the budget, seeds 0 and 1 still prove it.
    _cut_seeds(monkeypatch, {2})
    monkeypatch.setattr("detective.workflows.training_interventions.INTERIM_P", 0.0)
    r = run_training_intervention(_ctx(tmp_path, LR=0.3), "train.lr=/10")
    assert r.seeds == 2 and not r.cut_short and r.effect is Moved.RECOVERS, r.notes
    assert any("2 of 3 seeds" in n for n in r.notes)


def test_a_decisive_recovery_stops_after_two_seeds_and_agrees_with_all_three(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _ctx(tmp_path, LR=0.3)  # planted: the LR is far too high
    early = run_training_intervention(ctx, "train.lr=/10")
    assert early.seeds == 2 and early.effect is Moved.RECOVERS, early.notes
    assert early.p_value < 1e-3 / 10  # far inside the boundary, not at it
    assert any("decided after 2 of 3 seeds" in n for n in early.notes)
    monkeypatch.setattr("detective.workflows.training_interventions.INTERIM_P", 0.0)
    full = run_training_intervention(ctx, "train.lr=/10")  # no interim stop: every seed
    assert full.seeds == 3 and full.effect is Moved.RECOVERS, full.notes
    assert not any("decided after" in n for n in full.notes)


def test_an_equal_budget_change_runs_every_seed(tmp_path: Path) -> None:
    # Its guard (not significantly below the user's model) gains power with seeds: on labels
    # shuffled against their images two seeds passed it and three did not.
    ctx = _ctx(tmp_path, NOISE=0.3, PAIR_NOISE=True)
    r = run_training_intervention(ctx, "data.drop=label_issues")
    assert r.seeds == 3, r.notes
    assert not any("decided after" in n for n in r.notes)


def test_no_effect_is_never_decided_early(clean: RunContext) -> None:
    # The interim boundary only stops a recovery: on the clean model the change is futile at
    # seed 0 or runs every seed, never "decided after 2".
    r = run_training_intervention(clean, "train.clip=1.0")
    assert r.effect is not Moved.RECOVERS and r.seeds in (1, 3), r.notes
    assert not any("decided after" in n for n in r.notes)


def test_a_short_runs_seconds_include_its_measuring_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's seconds are what the next one like it costs, evaluation included: the next
    seed is started only if that fits (measuring outside them let a seed start, then be cut)."""
    from detective.analysis.learning.recipe import probe_data
    from detective.workflows import experiments

    real = experiments._item_correct

    def slow(*a: object, **kw: object) -> object:
        time.sleep(0.6)  # a slow val pass
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(experiments, "_item_correct", slow)
    ctx = _ctx(tmp_path)
    data = probe_data(ctx, 200, 200)
    t0 = time.monotonic()
    r = experiments.train_probe(ctx, base_recipe(ctx, 1), data, 0, item_correct=True)
    assert 0.6 <= r.seconds <= time.monotonic() - t0


def test_one_whole_seed_is_too_few_to_judge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cut_seeds(monkeypatch, {1, 2})
    r = run_training_intervention(_ctx(tmp_path, LR=0.3), "train.lr=/10")
    assert r.cut_short and r.effect is Moved.INCONCLUSIVE, r.notes
    assert any("ran 1 of 3 seeds in full" in n for n in r.notes)
    assert not any(n.startswith("judged on") for n in r.notes)


def test_unknown_or_inapplicable_interventions_are_named(clean: RunContext) -> None:
    with pytest.raises(InterventionError, match="unknown training intervention"):
        parse_training_intervention("train.lr=x3")
    with pytest.raises(ExperimentError, match="accepts no 'depth' keyword"):
        base_recipe(clean, 1).apply(parse_change("model.depth=x2"), clean)


# --- the experiment targets -----------------------------------------------------------------
def test_relative_and_new_targets_parse_and_apply(clean: RunContext) -> None:
    base = base_recipe(clean, 5)
    assert base.apply(parse_change("train.lr=x10"), clean).lr_scale == pytest.approx(10)
    assert base.apply(parse_change("train.lr=/10"), clean).lr_scale == pytest.approx(0.1)
    assert base.apply(parse_change("train.epochs=x2"), clean).epochs == 2 * base.epochs
    assert dict(base.apply(parse_change("model.width=x2"), clean).model_kwargs) == {"width": 128}
    assert base.apply(parse_change("data.normalize=measured"), clean).normalize
    assert base.apply(parse_change("model.unfreeze=all"), clean).unfreeze
    for bad in ("train.lr=x0", "train.lr=xx", "data.normalize=yes", "data.drop=all",
                "train.class_weight=2", "train.clip=-1", "train.momentum=x2"):
        with pytest.raises(ExperimentError):
            parse_change(bad)
    with pytest.raises(ExperimentError, match="'relu' or 'leaky_relu'"):
        base.apply(parse_change("model.activation=gelu"), clean)


def test_relative_lr_scales_every_group_of_the_case_optimizer(clean: RunContext) -> None:
    recipe = base_recipe(clean, 5).apply(parse_change("train.lr=x10"), clean)
    opt = _optimizer(clean, build_model(clean, recipe, 0), recipe)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(3e-2)]


def test_optimizer_over_all_parameters_keeps_the_case_optimizer(tmp_path: Path) -> None:
    import torch

    # An SGD-with-momentum recipe whose optimizer covers only the head: the change keeps SGD,
    # its LR and momentum, and only adds the left-out parameters.
    ctx = _ctx(tmp_path, HEAD_ONLY_OPT=True, OPT="sgd", LR=0.05, WIDTH=6)
    recipe = base_recipe(ctx, 5).apply(parse_change("hook.optimizer=all"), ctx)
    model = build_model(ctx, recipe, 0)
    opt = _optimizer(ctx, model, recipe)
    assert isinstance(opt, torch.optim.SGD)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.05])
    assert {g["momentum"] for g in opt.param_groups} == {0.9}
    stepped = {id(p) for g in opt.param_groups for p in g["params"]}
    assert stepped == {id(p) for p in model.parameters()}
    r = run_training_intervention(ctx, parse_training_intervention("hook.optimizer=all",
                                                                   "frozen_parameters"))
    assert r.effect is Moved.RECOVERS and r.after > r.model_acc + 0.03, r.notes


def test_unfreeze_activation_and_init_change_the_built_model(tmp_path: Path) -> None:
    import torch

    ctx = _ctx(tmp_path, FREEZE=True, ACT="sigmoid", BIAS=-3.0)
    base = base_recipe(ctx, 5)
    frozen = build_model(ctx, base, 0)
    assert not all(p.requires_grad for p in frozen.parameters())
    fixed = build_model(ctx, base.apply(parse_change("model.unfreeze=all"), ctx), 0)
    assert all(p.requires_grad for p in fixed.parameters())
    relu = build_model(ctx, base.apply(parse_change("model.activation=relu"), ctx), 0)
    kinds = {type(m) for m in relu.modules()}
    assert torch.nn.ReLU in kinds and torch.nn.Sigmoid not in kinds
    reset = build_model(ctx, base.apply(parse_change("model.init=default"), ctx), 0)
    assert float(frozen.body[1].bias.mean()) == pytest.approx(-3.0)
    assert abs(float(reset.body[1].bias.mean())) < 0.5


def test_cli_replays_a_training_intervention_by_hand(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    case = write_case(tmp_path, case_source(LR=2e-5))
    info = SessionInfo("s", str(case), "h", None, "vision-classification",
                       RunOptions(device="cpu"), time.time())
    Session.create(tmp_path / "s", info).close()
    code = main(["experiment", str(tmp_path / "s"), "--set", "train.lr=x10", "--seeds", "0,1",
                 "--sample", "400"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "experiment #1 train.lr=x10" in out and ": improved" in out


def test_the_epochs_x2_baseline_is_the_changed_runs_first_half(tmp_path: Path) -> None:
    """train.epochs=x2 measures its baseline inside the changed run, at the baseline's last
    step: identical to training the baseline apart (dropout and batch-norm included), and the
    measurement mid-run leaves the rest of the run as it would have been."""
    from dataclasses import replace

    from capacity_cases import OVERFIT

    from detective.analysis.learning.recipe import probe_data
    from detective.workflows.experiments import train_probe, train_probe_with_prefix

    ctx = context_for(write_case(tmp_path, OVERFIT.replace("dropout=0.0", "dropout=0.3")),
                      tmp_path)
    data = probe_data(ctx, 1000, 300)
    base = replace(base_recipe(ctx, 3), epochs=3)
    changed = base.apply(parse_change("train.epochs=x2"), ctx)
    assert changed.epochs == 6
    init = {k: v.clone() for k, v in build_model(ctx, base, 0).state_dict().items()}
    after, prefix = train_probe_with_prefix(ctx, changed, base.epochs, data, 0,
                                            init_state=init, item_correct=True)
    alone = train_probe(ctx, base, data, 0, init_state=init, item_correct=True)
    again = train_probe(ctx, changed, data, 0, init_state=init, item_correct=True)
    assert prefix is not None
    for got, want in ((prefix, alone), (after, again)):
        assert got.val_correct == want.val_correct
        assert (got.train_acc, got.val_acc) == (want.train_acc, want.val_acc)
        assert got.val_loss == pytest.approx(want.val_loss, rel=1e-5)
    assert after.val_loss != pytest.approx(prefix.val_loss, rel=1e-3)  # it trained on


def test_an_lr_fix_revives_the_units_a_high_lr_killed_but_not_those_an_init_killed(
    tmp_path: Path,
) -> None:
    # The consequence's marker, measured in the baseline and changed short runs: AdamW at 0.3
    # kills most ReLUs and the LR ÷10 revives them (the ledger then ranks the LR above the dead
    # units); a -3 bias kills them at any LR, so the LR change leaves them dead.
    (tmp_path / "lr").mkdir()
    (tmp_path / "bias").mkdir()
    high = run_training_intervention(_ctx(tmp_path / "lr", LR=0.3), "train.lr=/10", seeds=2)
    (mk,) = high.to_outcome().markers
    assert mk.hypothesis == "dead_units" and mk.before > 0.6, mk
    assert mk.after < 0.5 * mk.before, mk
    bias = run_training_intervention(_ctx(tmp_path / "bias", BIAS=-3.0, DEPTH=2), "train.lr=/10",
                                     seeds=2)
    (mk,) = bias.to_outcome().markers
    assert mk.before > 0.6 and mk.after > 0.8 * mk.before, mk


def test_a_change_slower_than_its_baseline_gives_up_within_a_few_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unfreezing makes every training step sleep 60 ms (a backbone's cost): one changed run is
    # ≥ 150 steps ≈ 9 s, so two seeds cannot fit 12 s. After the (fast, frozen) baseline, the
    # changed run gives up on its measured pace within a few steps. Before, it ran until the
    # budget cut it: a seed that could only end inconclusive, at the whole budget's cost.
    import detective.workflows.training_interventions as ti

    baselines: list[int] = []
    real = ti._baseline

    def baseline(*a: object, **k: object) -> ProbeResult:
        baselines.append(1)
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(ti, "_baseline", baseline)
    ctx = _ctx(tmp_path, FREEZE=True, SLOW_UNFROZEN=0.06)
    with pytest.raises(InterventionError, match="its changed short run would take") as e:
        run_training_intervention(ctx, "model.unfreeze=all", seeds=3, budget_s=12.0)
    projected = float(re.search(r"would take ≈ (\d+) s", str(e.value)).group(1))  # type: ignore[union-attr]
    assert projected >= 7, e.value  # 150 steps × 60 ms, measured
    assert baselines == [1]  # seed 0's; seed 1 never starts
    assert ctx.case.module.SLOW_STEPS[0] <= 3 * PACE_STEPS  # not the 150 a cut run takes


def test_a_change_as_fast_as_its_baseline_is_not_given_up(tmp_path: Path) -> None:
    # The counter-case: the same unfreezing without the planted cost fits the same 12 s and
    # runs its seeds to a judgement.
    ctx = _ctx(tmp_path, FREEZE=True)
    r = run_training_intervention(ctx, "model.unfreeze=all", seeds=2, budget_s=12.0)
    assert len(r.seed_deltas) == 2 and not r.cut_short, r.notes


def test_a_slower_change_whose_two_seeds_fit_is_run_in_full(tmp_path: Path) -> None:
    # 30 ms a step: the changed run ≈ 5 s, the frozen baseline < 1 s, two seeds ≈ 11 s of the
    # 14 s. The baseline is timed first, so the changed run is held to what the proof can
    # afford (≈ 6.5 s), not to a quarter of the budget as if the baseline cost as much.
    ctx = _ctx(tmp_path, FREEZE=True, SLOW_UNFROZEN=0.03)
    r = run_training_intervention(ctx, "model.unfreeze=all", seeds=2, budget_s=14.0)
    assert len(r.seed_deltas) == 2 and not r.cut_short, r.notes


def test_the_proof_clock_gives_each_run_its_share_of_the_proof() -> None:
    # Two seeds, nothing measured yet: the first run gets a quarter of the 100 s left. Once a
    # changed run is measured at 30 s, the baseline may take (100 − 30) / 2: the second seed's
    # changed run costs 30, its baseline as much as this one. A run outside the proof gets all
    # that is left. (The clock's runs take no time here.)
    from detective.workflows.training_interventions import _ProofClock

    it = parse_training_intervention("model.unfreeze=all")
    todo = [("0", "changed"), ("0", "baseline"), ("1", "changed"), ("1", "baseline")]
    clock = _ProofClock(it, 100.0, time.monotonic(), list(todo))
    assert clock.deadline("0", "changed") == pytest.approx(25.0, abs=0.5)
    clock.ran("changed", ProbeResult(0.5, 0.5, 0.5, 1.0, 10, 30.0))
    assert clock.deadline("0", "baseline") == pytest.approx(35.0, abs=0.5)
    clock.ran("baseline", ProbeResult(0.5, 0.5, 0.5, 1.0, 10, 5.0))
    assert clock.deadline("1", "changed") == pytest.approx(95.0, abs=0.5)  # 100 − its 5 s baseline
    assert clock.deadline("2", "changed") == pytest.approx(100.0, abs=0.5)
    gave_up = ProbeResult(*(math.nan,) * 4, 10, 1.0, True, projected_s=80.0)
    with pytest.raises(InterventionError, match=r"would take ≈ 80 s"):
        clock.ran("changed", gave_up)
