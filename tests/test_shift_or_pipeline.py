"""normalization_mismatch reads the raw images too (issue 13): val inputs that differ from train
because the raw val images differ (another scanner) are a distribution shift, not a pipeline
problem; inputs that differ while the raw images agree are the eval pipeline's doing."""

from __future__ import annotations

from pathlib import Path

from helpers import CASES, run_check, write_case

from detective.core.findings import Direction, Strength

CASE = """
    import numpy as np
    from torchvision import transforms as T
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]
    NORMALIZATION = {"mean": [0.305], "std": [0.375]}
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])

    def _splits():
        s = kit.digits_splits()
        x, y = s["val"]
        s["val"] = (__VAL__, y)
        return s

    def raw_datasets():
        return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}

    def datasets():
        s = _splits()
        return {"train": kit.ArrayImages(*s["train"], T.Compose([T.ToTensor(), norm])),
                "val": kit.ArrayImages(*s["val"], T.Compose([__EVAL__, norm]))}

    def model():
        return kit.SmallCNN()
"""


def case(tmp_path: Path, val: str = "x", eval_tf: str = "T.ToTensor()") -> Path:
    return write_case(tmp_path, CASE.replace("__VAL__", val).replace("__EVAL__", eval_tf))


def test_darker_raw_val_images_are_a_distribution_shift(tmp_path: Path) -> None:
    m, f = run_check("normalization_mismatch",
                     case(tmp_path, val="(x * 0.45).round().astype(np.uint8)"), tmp_path)
    e = f.effect_on("distribution_shift")
    assert e is not None and e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    assert "before any transform" in e.reason
    parity = f.effect_on("preprocessing_parity")
    assert parity is not None and parity.direction is Direction.REFUTES, f.summary
    assert f.metric("raw val mean shift vs raw train") > 0.4  # measured ≈ 0.45 σ
    assert f.metric("input shift not explained by the raw images") < 0.1
    assert {s.split for s in m.raw} == {"train", "val"}


def test_an_eval_pipeline_that_darkens_is_preprocessing_not_shift(tmp_path: Path) -> None:
    # The same raw images; the eval transform halves the pixels (an unnamed pipeline change).
    _, f = run_check("normalization_mismatch",
                     case(tmp_path, eval_tf="T.ToTensor(), T.Lambda(lambda t: t * 0.45)"),
                     tmp_path)
    parity = f.effect_on("preprocessing_parity")
    assert parity is not None and parity.direction is Direction.SUPPORTS, f.summary
    assert parity.strength is Strength.STRONG and "the raw images agree" in parity.reason
    assert f.effect_on("distribution_shift") is None
    assert f.metric("raw val mean shift vs raw train") < 0.1


def test_clean_raw_images_and_pipeline_say_nothing_about_shift(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for path, sub in ((case(tmp_path / "a"), "a"), (CASES / "digits_clean.py", "b")):
        _, f = run_check("normalization_mismatch", path, tmp_path / sub)
        assert f.effect_on("distribution_shift") is None, f.summary
        assert f.effect_on("preprocessing_parity") is None, f.summary
