"""The learning-stage checks on planted bugs (each must be caught) and on clean cases."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
from helpers import CASES, context_for

from detective.core.engine import run_one
from detective.core.findings import Direction, Finding, Strength, Verdict
from detective.core.progress import Cancelled, Progress
from detective.core.registry import get_check
from detective.core.serde import from_jsonable, to_jsonable

LEARNING = (
    "loss_at_init",
    "loss_fits_task",
    "overfit_one_batch",
    "loss_curve",
    "gradient_flow",
    "weight_updates",
    "activations",
    "lr_range_test",
)


class CaseRun:
    """One context per case, shared by its checks (as in a playbook run): the short run and the
    probe sample are computed once."""

    def __init__(self, case: str, root: Path) -> None:
        self.ctx = context_for(CASES / f"{case}.py", root)
        self.results: dict[str, tuple[object, Finding]] = {}

    def __call__(self, check_id: str) -> tuple[object, Finding]:
        if check_id not in self.results:
            self.results[check_id] = run_one(get_check(check_id), self.ctx, Progress())
        return self.results[check_id]


_RUNS: dict[str, CaseRun] = {}


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory):
    def get(name: str) -> CaseRun:
        if name not in _RUNS:
            _RUNS[name] = CaseRun(name, tmp_path_factory.mktemp(name))
        return _RUNS[name]

    return get


def supported(f: Finding, hypothesis: str, strength: Strength = Strength.STRONG) -> bool:
    e = f.effect_on(hypothesis)
    return e is not None and e.direction is Direction.SUPPORTS and e.strength is strength


def strong_support(f: Finding) -> list[str]:
    return [
        e.hypothesis
        for e in f.effects
        if e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    ]


# --- clean cases ----------------------------------------------------------------------------


@pytest.mark.parametrize("check_id", LEARNING)
def test_clean_digits_case_passes(case, check_id: str) -> None:
    run = case("digits_clean")
    _, f = run(check_id)
    assert f.verdict is Verdict.PASS, f"{check_id}: {f.summary}\n{f.error}"
    assert not strong_support(f), f.effects


def test_clean_case_numbers(case) -> None:
    run = case("digits_clean")
    assert abs(run("loss_at_init")[1].metric("loss / ln(K)") - 1) < 0.1
    overfit = run("overfit_one_batch")[1]
    assert 0 < overfit.metric("steps to fit") <= 150 and overfit.metric("batch accuracy") == 1.0
    assert run("loss_curve")[1].metric("relative fall") > 0.5
    assert run("gradient_flow")[1].metric("first/last layer gradient ratio") > 0.05
    assert 1e-4 < run("weight_updates")[1].metric("typical update/weight ratio") < 3e-2
    lr = run("lr_range_test")[1]
    assert 1 / 20 < lr.metric("configured / suggested") < 1
    assert run("activations")[1].metric("dead ReLU units, worst layer") < 0.25


def test_checks_leave_the_users_model_untouched(case) -> None:
    from detective.analysis.torchutil import model_hash

    run = case("digits_clean")
    before = model_hash(run.ctx.model())
    for check_id in LEARNING:
        run(check_id)
    assert model_hash(run.ctx.model()) == before
    assert not run.ctx.model().training


def test_train_hook_recipe_is_driven_and_stopped(case) -> None:
    run = case("learning_train_hook")
    m, f = run("overfit_one_batch")
    assert m.recipe == "train hook"
    assert f.verdict is Verdict.PASS, f.summary
    m, f = run("gradient_flow")
    assert m.recipe == "train hook" and m.steps == 80  # the hook was stopped at the budget
    assert f.verdict is Verdict.PASS, f.summary


def test_cancel_inside_the_users_train_hook_is_a_cancel_not_an_error(tmp_path: Path) -> None:
    ctx = context_for(CASES / "learning_train_hook.py", tmp_path)
    cancel = threading.Event()
    calls = [0]

    def on_update(_u) -> None:
        calls[0] += 1
        if calls[0] > 3:
            cancel.set()

    with pytest.raises(Cancelled):
        run_one(get_check("overfit_one_batch"), ctx, Progress(on_update, cancel))


@pytest.mark.parametrize("check_id", LEARNING)
def test_rejudging_a_stored_measurement_gives_the_same_finding(case, check_id: str) -> None:
    cls = get_check(check_id)
    for name in ("digits_clean", "learning_lr_high"):
        measurement, finding = case(name)(check_id)
        stored = json.loads(json.dumps(to_jsonable(measurement)))
        again = cls().judge(from_jsonable(cls.measurement_type, stored))
        assert again.verdict is finding.verdict and again.effects == finding.effects
        assert again.summary == finding.summary


# --- planted bugs ---------------------------------------------------------------------------


def test_lr_ten_times_too_high(case) -> None:
    run = case("learning_lr_high")
    curve = run("loss_curve")[1]
    assert curve.verdict is Verdict.FAIL and supported(curve, "lr_too_high"), curve.summary
    assert curve.metric("max weight-norm growth") > 10
    weights = run("weight_updates")[1]
    assert weights.verdict is Verdict.FAIL and supported(weights, "lr_too_high")
    assert weights.metric("largest weight-norm growth") > 10
    sweep = run("lr_range_test")[1]
    assert sweep.verdict is Verdict.FAIL and supported(sweep, "lr_too_high"), sweep.summary
    assert sweep.metric("configured LR") == 1.0
    assert sweep.metric("configured LR") >= sweep.metric("LR at the loss minimum")
    assert sweep.metric("configured / suggested") > 10


def test_lr_far_too_low(case) -> None:
    run = case("learning_lr_low")
    sweep = run("lr_range_test")[1]
    assert sweep.verdict is Verdict.FAIL and supported(sweep, "lr_too_low"), sweep.summary
    assert sweep.metric("configured / suggested") < 1e-3
    curve = run("loss_curve")[1]
    assert supported(curve, "lr_too_low"), curve.summary
    assert curve.metric("relative fall") < 0.1
    assert curve.metric("typical update/weight ratio") < 1e-5
    weights = run("weight_updates")[1]
    assert supported(weights, "lr_too_low", Strength.MODERATE)
    overfit = run("overfit_one_batch")[1]
    assert overfit.verdict is Verdict.FAIL and supported(overfit, "underfitting")
    assert overfit.metric("steps to fit") == -1


def test_double_softmax(case) -> None:
    run = case("learning_double_softmax")
    task = run("loss_fits_task")[1]
    assert task.verdict is Verdict.FAIL and supported(task, "wrong_loss"), task.summary
    assert task.metric("output rows that are probabilities") == 1.0
    assert "Softmax" in task.next_step
    overfit = run("overfit_one_batch")[1]
    assert overfit.verdict is Verdict.FAIL
    assert supported(overfit, "wrong_loss", Strength.MODERATE), overfit.summary
    # Cross-entropy over probabilities cannot go below -log(e / (e + 9)) ≈ 1.46 for 10 classes.
    assert overfit.metric("final loss") > 1.4 and overfit.metric("batch accuracy") == 1.0


def test_frozen_backbone(case) -> None:
    run = case("learning_frozen")
    f = run("gradient_flow")[1]
    assert f.verdict is Verdict.FAIL and supported(f, "frozen_parameters"), f.summary
    assert f.metric("frozen parameter share") > 0.9
    assert "features.0" in f.summary


def test_deep_sigmoid_net_vanishing_gradients(case) -> None:
    run = case("learning_deep_sigmoid")
    f = run("gradient_flow")[1]
    assert f.verdict is Verdict.FAIL and supported(f, "vanishing_gradients"), f.summary
    assert f.metric("first/last layer gradient ratio") < 1e-6
    assert not supported(f, "frozen_parameters")
    plateau = run("loss_curve")[1]
    assert plateau.summary.startswith("Loss curve: plateau from the start")
    assert not strong_support(plateau)  # a plateau alone does not name the cause


def test_dead_relus_from_a_large_negative_bias(case) -> None:
    run = case("learning_dead_relu")
    f = run("activations")[1]
    assert f.verdict is Verdict.FAIL and supported(f, "dead_units"), f.summary
    assert f.metric("dead ReLU units, worst layer") == 1.0
    grads = run("gradient_flow")[1]  # no gradient behind dead units: reported, not STRONG
    assert supported(grads, "frozen_parameters", Strength.MODERATE)


def test_one_based_labels_at_init(case) -> None:
    f = case("learning_one_based")("loss_at_init")[1]
    assert f.verdict is Verdict.FAIL and supported(f, "label_misalignment"), f.summary
    assert 0.05 < f.metric("labels outside 0..K-1") / 640 < 0.15  # label 10 = one class in ten


def test_mse_on_class_indices(case) -> None:
    run = case("learning_mse")
    task = run("loss_fits_task")[1]
    assert task.verdict is Verdict.FAIL and supported(task, "wrong_loss"), task.summary
    assert "ordered numbers" in task.summary
    init = run("loss_at_init")[1]
    assert init.metric("loss / ln(K)") > 5  # E[y²] ≈ 28 for digits 0..9
    assert supported(init, "wrong_loss", Strength.MODERATE)


# --- the user's own logs --------------------------------------------------------------------


def _curve_from_logs(tmp_path: Path, logs: Path) -> Finding:
    ctx = context_for(CASES / "learning_clean.py", tmp_path, logs=str(logs))
    return run_one(get_check("loss_curve"), ctx, Progress())[1]


def test_logs_csv_val_rising_while_train_falls(tmp_path: Path) -> None:
    rows = ["epoch,train_loss,val_loss"]
    for e in range(30):
        train = 2.3 * math.exp(-e / 6)
        val = 2.3 * math.exp(-e / 6) + 0.02 * max(0, e - 8) ** 1.5 + 0.1
        rows.append(f"{e},{train:.4f},{val:.4f}")
    path = tmp_path / "log.csv"
    path.write_text("\n".join(rows))
    f = _curve_from_logs(tmp_path, path)
    assert f.verdict is Verdict.FAIL and supported(f, "overfitting"), f.summary
    assert "val rising while train falls" in f.summary
    assert f.metric("val loss, end") > 1.5 * f.metric("val loss, best")
    assert f.artifacts and (tmp_path / "artifacts" / f.artifacts[0].path).is_file()


def test_logs_csv_divergence(tmp_path: Path) -> None:
    rows = ["step,loss"] + [f"{s},{2.3 - 0.01 * s:.3f}" for s in range(50)] + ["50,nan"]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(rows))
    f = _curve_from_logs(tmp_path, path)
    assert supported(f, "lr_too_high") and "NaN/Inf at point 50" in f.summary


def test_logs_tensorboard_healthy_but_cut_short(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path / "tb")) as w:
        for s in range(100):
            w.add_scalar("train/loss", 2.3 * math.exp(-s / 40), s)
            if s % 10 == 0:
                w.add_scalar("val/loss", 2.3 * math.exp(-s / 40) + 0.05, s)
    f = _curve_from_logs(tmp_path, tmp_path / "tb")
    assert f.metric("points") == 100 and f.metric("relative fall") > 0.85
    assert f.effect_on("lr_too_high").direction is Direction.REFUTES
    # Still falling fast at the end: training stopped early (moderate, never strong).
    assert supported(f, "underfitting", Strength.MODERATE)
    assert "tensorboard" in f.notes[0]


def test_unreadable_logs_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("epoch,accuracy\n0,0.5\n")
    f = _curve_from_logs(tmp_path, path)
    assert f.verdict is Verdict.ERROR and "no train-loss column" in f.summary


def test_curve_oscillation_is_classified() -> None:
    from detective.checks.learning.loss_curve import CurveMeasurement, LossCurve

    vals = tuple(2.3 + (0.4 if i % 2 else -0.4) for i in range(60))
    m = CurveMeasurement(
        "csv", "x.csv", "loss", tuple(range(60)), vals, "", (), (), math.nan, math.nan, math.nan
    )
    f = LossCurve().judge(m)
    assert "oscillation" in f.summary and supported(f, "lr_too_high", Strength.MODERATE)


def test_functional_relus_are_measured_and_a_dead_conv_is_caught(case) -> None:
    """F.relu / torch.relu / x.relu() (no nn.ReLU module) are recorded per call site."""
    m, f = case("learning_functional_dead")("activations")
    assert [la.layer for la in m.layers] == ["model.relu#1", "model.relu#2", "model.relu#3"]
    assert f.verdict is Verdict.FAIL and supported(f, "dead_units"), f.summary
    conv2 = m.layers[1]
    assert conv2.dead_fraction == 1.0 and conv2.rank == 0 and conv2.input_rank >= 5


def test_a_spare_head_with_dead_units_but_its_signal_kept_is_no_alarm(case) -> None:
    """Half of a dropout head's ReLUs dead at init, the rest carry ≥ classes − 1 dimensions: the
    dead units remove nothing the task needs, so dead_units gets no support."""
    m, f = case("learning_functional_spare_head")("activations")
    head = m.layers[2]
    assert head.dead_fraction > 0.5 and head.rank >= 9 - 2  # well above half of min(in, K-1)
    e = f.effect_on("dead_units")
    assert e is None or e.direction is not Direction.SUPPORTS, f.summary
    assert "no measured impact" in f.summary


def _grad_layers(head_in_optimizer: bool, head_trainable: bool) -> object:
    from detective.checks.learning.gradient_flow import GradFlowMeasurement, LayerGrad

    def layer(name: str, params: int, trainable: bool = True, in_opt: bool = True) -> LayerGrad:
        return LayerGrad(name, params, trainable, in_opt, False, 1e-2, 1e-2, 1e-2, 0, 0)

    return GradFlowMeasurement(
        steps=20, recipe="test", lr=1e-3, total_first=1.0, total_last=1.0,
        layers=(
            layer("features.0", 300, head_trainable, head_in_optimizer),
            layer("features.1", 700),
        ),
    )


@pytest.mark.parametrize(
    ("in_optimizer", "trainable", "strength"),
    [
        # 30 % requires_grad=True yet in no optimizer group: gradients discarded, a bug.
        (False, True, Strength.STRONG),
        # 30 % requires_grad=False: may be a deliberate freeze, so only moderate.
        (True, False, Strength.MODERATE),
    ],
)
def test_parameters_left_out_of_the_optimizer_are_strong_evidence(
    in_optimizer: bool, trainable: bool, strength: Strength
) -> None:
    f = get_check("gradient_flow")().judge(_grad_layers(in_optimizer, trainable))
    assert supported(f, "frozen_parameters", strength), f.effects
    e = f.effect_on("frozen_parameters")
    assert ("discarded" in e.reason) is (strength is Strength.STRONG)
    clean = get_check("gradient_flow")().judge(_grad_layers(True, True))
    assert clean.effect_on("frozen_parameters").direction is Direction.REFUTES
