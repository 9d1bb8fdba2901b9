"""shortcut_context: a planted training-set shortcut is supported with its swap effect; a model
that uses context informative in both splits is not; the probe, the interventions and the
per-class statistics each catch a planted signal and stay quiet on a clean one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CASES, context_for, run_check, write_case

from detective.analysis import shortcut as sc
from detective.core.case import CaseError
from detective.core.findings import Direction, Strength, Verdict

# --- the check, end to end on tiny trained models ------------------------------------------------


def test_planted_border_shortcut_is_supported_with_the_swap_effect(tmp_path: Path) -> None:
    m, f = run_check("shortcut_context", CASES / "shortcut_border.py", tmp_path)
    assert f.verdict is Verdict.FAIL, f.summary
    effect = f.effect_on("shortcut_learning")
    assert effect is not None and effect.direction is Direction.SUPPORTS
    assert effect.strength is Strength.STRONG
    assert "another class's context" in effect.reason and "McNemar" in effect.reason
    swap = next(s for s in m.swaps if s.split == "train" and s.intervention == "donor context")
    assert swap.accuracy.before > 0.9 and swap.accuracy.drop > 0.5
    assert swap.accuracy.p_value < 1e-6 and swap.accuracy.ci_low > 0.4
    assert swap.follows is not None and swap.follows.before > 0.6 and swap.follows.after < 0.3
    assert m.context_probe.train_cv > 0.8 and m.context_probe.val < 0.3
    assert abs(m.object_probe.gap) < 0.15  # the digits themselves mean the same in val
    assert f.metric("train accuracy, object on another class's context") < 0.3
    names = [t.name for t in f.tables]
    assert any(n.startswith("context that carries the label") for n in names)
    assert (tmp_path / "artifacts" / f.artifacts[0].path).is_file()


def test_context_informative_in_both_splits_is_not_a_shortcut(tmp_path: Path) -> None:
    m, f = run_check("shortcut_context", CASES / "shortcut_border_informative.py", tmp_path)
    swap = next(s for s in m.swaps if s.split == "val" and s.intervention == "donor context")
    assert swap.accuracy.drop > 0.3  # the model does use the border …
    assert abs(m.context_probe.gap) < 0.1  # … which names the class in val as well
    effect = f.effect_on("shortcut_learning")
    assert f.verdict is Verdict.PASS, f.summary
    assert effect is not None and effect.direction is Direction.REFUTES


def test_shortcut_reaches_the_ledger_and_the_exports(tmp_path: Path) -> None:
    from detective.ui.cli import main

    session = tmp_path / "s"
    code = main(["run", str(CASES / "shortcut_border.py"), "--headless", "--session",
                 str(session), "--device", "cpu", "--only", "shortcut_context",
                 "--symptom", "train_high_val_low"])
    assert code == 0
    out = tmp_path / "r.json"
    assert main(["export", str(session), "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["ranking"][0] == "shortcut_learning"
    md = tmp_path / "r.md"
    assert main(["export", str(session), "--format", "md", "-o", str(md)]) == 0
    text = md.read_text(encoding="utf-8")
    assert "The model relies on context, not on the object" in text
    assert "follows donor class" in text


# --- units: interventions --------------------------------------------------------------------


def _images(n: int = 6, c: int = 3, side: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, c, side, side, generator=g)
    m = torch.from_numpy(np.broadcast_to(sc.centre_mask(side, side, 0.2), (n, side, side)).copy())
    return x, m


def test_swap_keeps_the_object_and_takes_the_donor_context() -> None:
    x, m = _images()
    donor = torch.rand_like(x)
    out = sc.swap_context(x, m, donor)
    assert torch.equal(out[:, :, m[0]], x[:, :, m[0]])
    assert torch.equal(out[:, :, ~m[0]], donor[:, :, ~m[0]])


def test_fill_and_context_only_hide_exactly_one_region() -> None:
    x, m = _images()
    fill = torch.tensor([0.1, 0.2, 0.3])
    filled = sc.fill_context(x, m, fill)
    assert torch.equal(filled[:, :, m[0]], x[:, :, m[0]])
    assert torch.allclose(filled[:, :, ~m[0]], fill.view(1, 3, 1).expand(6, 3, -1))
    hidden = sc.context_only(x, m)
    assert torch.equal(hidden[:, :, ~m[0]], x[:, :, ~m[0]])
    ctx_mean = x[:, :, ~m[0]].mean(-1, keepdim=True)
    assert torch.allclose(hidden[:, :, m[0]], ctx_mean.expand(-1, -1, int(m[0].sum())), atol=1e-6)


def test_donors_are_always_of_another_class_and_placebos_too() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2] * 20)
    donors = sc.pick_donors(labels, labels, seed=0)
    assert (labels[donors] != labels).all()
    placebo = sc.placebo_labels(labels, [0, 1, 2], seed=0)
    assert (placebo != labels).all()
    # one class only: no donor exists
    assert (sc.pick_donors(np.zeros(4, int), np.zeros(4, int), 0) == -1).all()


def test_paired_change_is_significant_only_for_a_real_fall() -> None:
    before = np.ones(200, bool)
    after = before.copy()
    after[:60] = False  # 60 lost, 0 gained: a 30-point fall
    planted = sc.paired_change(before, after)
    assert planted.drop == pytest.approx(0.30) and planted.p_value < 1e-12
    assert 0.2 < planted.ci_low < 0.3 < planted.ci_high < 0.4
    rng = np.random.default_rng(0)
    b = rng.random(200) < 0.7
    a = b.copy()
    flip = rng.choice(200, 20, replace=False)
    a[flip] = ~a[flip]  # symmetric noise: as many gained as lost, roughly
    clean = sc.paired_change(b, a)
    assert clean.p_value > 0.05 and clean.ci_low < 0 < clean.ci_high


def test_swap_leaves_an_object_reading_model_in_place() -> None:
    """A 'model' that reads only the centre pixels predicts the same after any context swap;
    one that reads a corner follows the donor."""
    x, m = _images(n=40, c=1, side=10)
    donor = torch.rand_like(x)
    centre = x[:, 0, 4:6, 4:6].flatten(1).argmax(1)
    assert torch.equal(sc.swap_context(x, m, donor)[:, 0, 4:6, 4:6].flatten(1).argmax(1), centre)
    corner = sc.swap_context(x, m, donor)[:, 0, 0, :4].argmax(1)
    assert torch.equal(corner, donor[:, 0, 0, :4].argmax(1))


# --- units: probe ------------------------------------------------------------------------------


def _coloured_context(n: int, p: float, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Random centre 'objects' carrying no label; the border's colour is the label's with
    probability p, random otherwise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    palette = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], float)
    colour = np.where(rng.random(n) < p, y, rng.integers(0, 4, n))
    x = np.empty((n, 3, 12, 12), np.float32)
    x[:] = palette[colour][:, :, None, None]
    x[:, :, 3:9, 3:9] = rng.random((n, 3, 6, 6))
    x += rng.normal(0, 0.05, x.shape)
    return torch.from_numpy(x.astype(np.float32)), y


def _probe(p_train: float, p_val: float) -> sc.ProbeScore:
    xt, yt = _coloured_context(300, p_train, 0)
    xv, yv = _coloured_context(300, p_val, 1)
    mt = torch.from_numpy(np.broadcast_to(sc.centre_mask(12, 12, 0.25), (300, 12, 12)).copy())
    ft = sc.region_features(sc.context_only(xt, mt))
    fv = sc.region_features(sc.context_only(xv, mt))
    probe = sc.linear_probe(ft, yt, fv, yv, 4, seed=0)
    assert probe is not None
    return probe


def test_context_probe_sees_a_train_only_correlation() -> None:
    probe = _probe(1.0, 0.0)
    assert probe.train_cv > 0.9 and probe.val < 0.4 and probe.gap > 0.5
    assert min(probe.train_recall) > 0.8


def test_context_probe_is_even_when_context_is_informative_everywhere() -> None:
    probe = _probe(0.9, 0.9)
    assert probe.train_cv > 0.8 and probe.val > 0.8 and abs(probe.gap) < 0.1


def test_probe_declines_a_single_class() -> None:
    f = np.random.default_rng(0).random((20, 4))
    assert sc.linear_probe(f, np.zeros(20, int), f, np.zeros(20, int), 2, 0) is None


# --- units: per-class conditional statistics ---------------------------------------------------


def _stats(dark_class_in_train: bool) -> list[sc.ClassContextStat]:
    """Class 2's context is dark in train only, while the other classes' train contexts are
    brighter to keep the all-classes mean equal (a shift invisible in aggregate)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 100)
    base = rng.normal(0.5, 0.05, (400, 1, 8, 8)).astype(np.float32)
    xt = base.copy()
    if dark_class_in_train:
        xt[y == 2] -= 0.3
        xt[y != 2] += 0.1
    xv = rng.normal(0.5, 0.05, (400, 1, 8, 8)).astype(np.float32)
    m = torch.from_numpy(np.broadcast_to(sc.centre_mask(8, 8, 0.25), (400, 8, 8)).copy())
    pt = sc.context_properties(torch.from_numpy(xt), m)
    pv = sc.context_properties(torch.from_numpy(xv), m)
    return sc.conditional_stats(pt, y, pv, y, 4)


def test_conditional_stats_name_the_class_whose_context_differs() -> None:
    stats = _stats(True)
    top = stats[0]
    assert top.class_index == 2 and top.prop == "context brightness"
    assert top.d_class < -3 and abs(top.d_all) < 0.3
    assert top.train_mean == pytest.approx(0.2, abs=0.03)


def test_conditional_stats_are_quiet_without_a_difference() -> None:
    assert max(abs(s.d_class) for s in _stats(False)) < 0.6


# --- the object_mask hook ----------------------------------------------------------------------


HOOK_CASE = """
import numpy as np, torch
from detective.casekit.demo import kit
CLASSES = ["a", "b"]
def datasets():
    x = torch.zeros(8, 1, 8, 8); y = torch.tensor([0, 1] * 4)
    return {"train": kit.TensorImages(x, y), "val": kit.TensorImages(x, y)}
def model():
    return kit.SmallCNN(num_classes=2, width=4)
def object_mask(split, index):
    m = np.zeros(SHAPE, bool); m[: SHAPE[0] // 2] = True
    return m
"""


def test_object_mask_hook_is_used_and_resized(tmp_path: Path) -> None:
    case = write_case(tmp_path, HOOK_CASE.replace("SHAPE", "(16, 16)"))
    ctx = context_for(case, tmp_path)
    masks, source = sc.object_masks(ctx.case, "train", [0, 1], 8, 8, 0.2)
    assert source == "hook" and masks.shape == (2, 8, 8)
    assert masks[:, :4].all() and not masks[:, 4:].any()


def test_object_mask_hook_with_a_wrong_shape_says_so(tmp_path: Path) -> None:
    case = write_case(tmp_path, HOOK_CASE.replace("SHAPE", "(2, 8, 8)"))
    ctx = context_for(case, tmp_path)
    with pytest.raises(CaseError, match=r"object_mask\('train', 0\) returned shape"):
        sc.object_masks(ctx.case, "train", [0], 8, 8, 0.2)


# --- judge: the intervention decides -----------------------------------------------------------


def _measurement(follows: float, placebo: float, context_gap: bool, object_val: float = 0.9):
    from detective.checks.error_analysis.shortcut_context import ShortcutMeasurement, SwapResult

    n = 400
    acc = sc.paired_change(np.ones(n, bool), np.arange(n) >= 240)  # 60-point fall either way
    fol = sc.paired_change(np.arange(n) < follows * n, np.arange(n) < placebo * n)
    probe = sc.ProbeScore(0.95, 0.12 if context_gap else 0.93, 0.1, 0.1, (0.95,) * 10,
                          (0.12 if context_gap else 0.93,) * 10)
    obj = sc.ProbeScore(0.9, object_val, 0.1, 0.1, (0.9,) * 10, (object_val,) * 10)
    swaps = tuple(SwapResult(s, "donor context", acc, 0.9, 0.2, 0.6, 0.8, fol)
                  for s in ("train", "val"))
    return ShortcutMeasurement(tuple("abcdefghij"), "centre", 0.6, n, n, swaps, probe, obj, (),
                               "", 0.5, 0.5, "")


def test_judge_needs_predictions_that_follow_the_donor() -> None:
    from detective.checks.error_analysis.shortcut_context import ShortcutContext

    judge = ShortcutContext().judge
    planted = judge(_measurement(0.7, 0.1, context_gap=True))
    assert planted.verdict is Verdict.FAIL
    assert planted.effect_on("shortcut_learning").strength is Strength.STRONG
    # The same fall in accuracy, but predictions land on the donor's class no more often than
    # on a placebo class: a damaged object, not a learned context.
    damaged = judge(_measurement(0.12, 0.1, context_gap=True))
    assert damaged.verdict is Verdict.WARN
    assert damaged.effect_on("shortcut_learning").strength is Strength.WEAK
    # Follows the donor, but the context is as informative in val: legitimate context.
    legit = judge(_measurement(0.7, 0.1, context_gap=False))
    assert legit.verdict is Verdict.PASS
    assert legit.effect_on("shortcut_learning").direction is Direction.REFUTES


def test_an_object_that_fails_in_val_too_is_no_shortcut() -> None:
    from detective.checks.error_analysis.shortcut_context import ShortcutContext

    judge = ShortcutContext().judge
    # Val labels shifted against train (a missing class folder): the object probe falls from
    # 90 % to 30 % (chance 10 %) with the context, keeping a quarter of its lift: the split's
    # labels are broken, not the model's cues, however far the context falls.
    broken = judge(_measurement(0.7, 0.1, context_gap=True, object_val=0.3))
    assert broken.verdict is not Verdict.FAIL
    assert broken.effect_on("shortcut_learning") is None or (
        broken.effect_on("shortcut_learning").direction is Direction.REFUTES)
    # The object keeping most of its lift (90 % → 75 %): the shortcut stands.
    kept = judge(_measurement(0.7, 0.1, context_gap=True, object_val=0.75))
    assert kept.verdict is Verdict.FAIL


SIZES_CASE = """
import torch
from detective.casekit.demo import kit
CLASSES = ["a", "b", "c"]
def datasets():
    y = torch.tensor([0, 1, 2] * 10)
    return {"train": kit.TensorImages(torch.rand(30, 1, 8, 8), y),
            "val": kit.TensorImages(torch.rand(30, 1, 12, 12), y)}
def model():
    return kit.SmallCNN(num_classes=3, width=4)
"""


def test_splits_of_different_sizes_are_not_judged(tmp_path: Path) -> None:
    _, f = run_check("shortcut_context", write_case(tmp_path, SIZES_CASE), tmp_path)
    assert f.verdict is Verdict.NOT_APPLICABLE
    assert "different sizes" in f.summary and not f.effects
