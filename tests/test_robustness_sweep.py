"""robustness_sweep: a collapse at a brightness that real val images have is a distribution shift;
a clean model gets nothing; the measurement re-judges; the user's model is never touched."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from helpers import CASES, context_for, run_check

from detective.core.engine import run_one
from detective.core.findings import Direction, Strength, Verdict
from detective.core.progress import Progress
from detective.core.registry import get_check
from detective.core.serde import from_jsonable, to_jsonable

CHECK = "robustness_sweep"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("robust-dark")
    m, f = run_check(CHECK, CASES / "robustness_dark_val.py", tmp)
    return m, f, tmp


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory):
    return run_check(CHECK, CASES / "digits_clean.py", tmp_path_factory.mktemp("robust-clean"))


def _curve(m, name: str):
    return next(c for c in m.curves if c.perturbation == name)


def test_collapse_at_a_brightness_val_images_have_is_a_shift(planted) -> None:
    m, f, tmp = planted
    assert f.verdict is Verdict.FAIL, f.error or f.summary
    shift = f.effect_on("distribution_shift")
    assert shift is not None and shift.direction is Direction.SUPPORTS
    assert shift.strength is Strength.STRONG
    # Darkening collapses at severity 2: a brightness 30 % of val (the dark scans) has and no
    # train image has; those real images are indeed misclassified more than the others.
    assert f.metric("darken: collapse severity") == 2
    assert f.metric("darken: accuracy drop at collapse") > 0.25
    assert f.metric("darken: val share at that brightness") > 0.25
    assert f.metric("darken: train share at that brightness") == 0.0
    assert f.metric("darken: real val images there, accuracy gap") > 0.15
    dark = _curve(m, "darken")
    assert dark.accuracy[0] == pytest.approx(m.clean_accuracy)
    assert dark.accuracy[0] - dark.accuracy[2] > 0.25
    assert "darken severity 2" in f.summary
    # Collapses at levels no val image has (harsh contrast, blur) are reported, never flagged.
    assert "contrast" not in f.summary and "blur" not in f.summary
    assert any("not flagged" in n and "contrast" in n for n in f.notes)
    assert (tmp / "artifacts" / f.artifacts[0].path).is_file()


def test_clean_model_gets_nothing_and_fgsm_is_reported(clean) -> None:
    m, f = clean
    assert f.verdict is Verdict.PASS, f.error or f.summary
    assert not [e for e in f.effects if e.direction is Direction.SUPPORTS]
    assert m.clean_accuracy > 0.95 and m.pixel_space
    assert [round(p.eps * 255) for p in m.fgsm] == [1, 2, 4, 8]
    assert all(0.0 <= p.accuracy <= 1.0 for p in m.fgsm)
    assert m.fgsm[-1].accuracy <= m.fgsm[0].accuracy  # a larger step never helps the model
    assert f.metric("FGSM accuracy at eps 8/255") == m.fgsm[-1].accuracy
    # The curves still go down under harsh perturbation: the sweep measured something.
    assert all(len(c.accuracy) == 6 for c in m.curves)
    assert _curve(m, "blur").accuracy[-1] < 0.5


def test_rejudges_from_the_store_and_thresholds_move_the_verdict(planted) -> None:
    m, f, _ = planted
    cls = get_check(CHECK)
    rebuilt = from_jsonable(cls.measurement_type, json.loads(json.dumps(to_jsonable(m))))
    again = cls().judge(rebuilt)
    assert (again.verdict, again.summary, again.effects) == (f.verdict, f.summary, f.effects)
    # A level held by fewer val images than required is not the data's own range: no finding.
    strict = cls(dataclasses.replace(cls.thresholds_type(), min_val_share=0.5)).judge(rebuilt)
    assert strict.verdict is Verdict.PASS and not strict.effects
    dark = _curve(rebuilt, "darken")

    def judged(**changes):
        curve = dataclasses.replace(dark, **changes)
        curves = tuple(curve if c is dark else c for c in rebuilt.curves)
        return cls().judge(dataclasses.replace(rebuilt, curves=curves))

    # Train had such images too: not a shift; the real dark val images still fail → a slice.
    seen = judged(train_share=tuple(0.3 for _ in dark.train_share))
    assert seen.verdict is Verdict.WARN and seen.effect_on("distribution_shift") is None
    assert seen.effect_on("slice_failure").strength is Strength.MODERATE
    # The real val images at that level score like the rest: the shift exists but barely hurts.
    fine = judged(tail_accuracy=dark.rest_accuracy)
    assert fine.verdict is Verdict.WARN
    assert fine.effect_on("distribution_shift").strength is Strength.WEAK
    assert fine.effect_on("slice_failure") is None
    # Both: only the synthetic perturbation breaks the model → a note, nothing flagged.
    quiet = judged(tail_accuracy=dark.rest_accuracy, train_share=tuple(0.3 for _ in dark.val_share))
    assert quiet.verdict is Verdict.PASS and not quiet.effects
    assert any("not flagged" in n and "darken severity 2" in n for n in quiet.notes)


def test_user_model_untouched_and_no_normalization_is_said(tmp_path: Path) -> None:
    from detective.analysis.torchutil import model_hash

    ctx = context_for(CASES / "tiny_tensor.py", tmp_path)
    model = ctx.model()
    before = model_hash(model)
    measurement, finding = run_one(get_check(CHECK), ctx, Progress())
    assert finding.verdict is not Verdict.ERROR, finding.error
    assert model_hash(model) == before and not model.training
    assert all(p.grad is None for p in model.parameters())
    assert not measurement.pixel_space
    assert any("tensors as given" in n for n in finding.notes)
