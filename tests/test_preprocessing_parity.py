from pathlib import Path

import numpy as np
from helpers import CASES, run_check

from detective.casekit.demo import DEMO_CASE
from detective.core.findings import Direction, Strength, Verdict


def test_catches_eval_normalization_copied_from_another_project(tmp_path: Path) -> None:
    measurement, f = run_check("preprocessing_parity", DEMO_CASE, tmp_path)
    assert f.verdict is Verdict.FAIL
    effect = f.effect_on("preprocessing_parity")
    assert effect.direction is Direction.SUPPORTS and effect.strength is Strength.STRONG
    # Exact expectation from the raw pixels: train (x-0.305)/0.375 vs eval (x-0.5)/0.5.
    x = np.concatenate([np.asarray(im, dtype=np.float64).ravel() / 255 for im, _ in _val_images()])
    m, s = x.mean(), x.std()
    expected = abs((m - 0.5) / 0.5 - (m - 0.305) / 0.375) / (s / 0.375)
    assert abs(f.metric("max mean shift") - expected) < 0.03
    assert abs(f.metric("std ratio (eval/train)") - 0.75) < 0.01  # 0.375 / 0.5 exactly
    assert measurement.augmentation_removed


def test_clean_case_passes(tmp_path: Path) -> None:
    _, f = run_check("preprocessing_parity", CASES / "digits_clean.py", tmp_path)
    assert f.verdict is Verdict.PASS, f.summary
    assert f.metric("max mean shift") < 0.01
    assert f.metric("prediction disagreement") == 0
    assert f.effect_on("preprocessing_parity").direction is Direction.REFUTES


def _val_images():
    from detective.core.case import load_case

    return load_case(DEMO_CASE).raw_datasets()["val"]


def test_catches_eval_geometry_that_keeps_statistics(tmp_path: Path) -> None:
    # A 2-pixel shift leaves means and stds alone; only the paired predictions show it.
    m, f = run_check("preprocessing_parity", CASES / "parity_eval_shifted.py", tmp_path)
    assert f.metric("max mean shift") < 0.2 and 0.8 < f.metric("std ratio (eval/train)") < 1.25
    assert f.verdict is Verdict.FAIL, f.summary
    assert f.effect_on("preprocessing_parity").direction is Direction.SUPPORTS
    assert m.train_only_correct > 5 * max(m.eval_only_correct, 1)
    assert f.metric("accuracy lost to the eval transform") > 0.08
