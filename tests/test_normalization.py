"""normalization_mismatch: planted scaling bugs in the training inputs, a train/eval channel swap,
the demo (eval-only difference → parity, not normalization) and the clean case."""

from pathlib import Path

import pytest
from helpers import CASES, run_check, write_case

from detective.casekit.demo import DEMO_CASE
from detective.core.findings import Direction, Strength, Verdict

GREY = """
    import torch
    from torchvision import transforms as T
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]
    NORMALIZATION = {"mean": [0.305], "std": [0.375]}
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    TRAIN_TF = T.Compose([__TRAIN__])
    EVAL_TF = T.Compose([T.ToTensor(), norm])

    def datasets():
        s = kit.digits_splits()
        return {"train": kit.ArrayImages(*s["train"], TRAIN_TF),
                "val": kit.ArrayImages(*s["val"], EVAL_TF)}

    def model():
        return kit.SmallCNN()
"""

PLANTED = {
    # PILToTensor keeps 0..255; the float cast forgets the /255.
    "[0,255]": (
        "T.PILToTensor(), T.ConvertImageDtype(torch.float32), T.Lambda(lambda x: x * 255)",
        "not normalized, [0, 255]",
    ),
    "doubled": ("T.ToTensor(), norm, norm", "normalized twice"),
    "missing": ("T.ToTensor()", "not normalized, [0, 1]"),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_training_inputs_scaled_wrong_are_a_strong_mismatch(bug: str, tmp_path: Path) -> None:
    train_tf, explanation = PLANTED[bug]
    case = write_case(tmp_path, GREY.replace("__TRAIN__", train_tf))
    m, f = run_check("normalization_mismatch", case, tmp_path)
    assert f.verdict is Verdict.FAIL, f.summary
    e = f.effect_on("normalization_mismatch")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    assert explanation in e.reason
    assert f.metric("train range fit to declared") > 0.25
    train = next(s for s in m.splits if s.split == "train")
    if bug == "[0,255]":
        assert train.high[0] == 255.0 and train.low[0] == 0.0


RGB = """
    import numpy as np
    from torchvision import transforms as T
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]
    # A tinted RGB version of the digits: channel means differ, so an order swap shows.
    NORMALIZATION = {"mean": [0.305, 0.19, 0.1], "std": [0.375, 0.2, 0.12]}
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    BGR = T.Lambda(lambda x: x.flip(0))

    def _rgb(x):
        x = x.astype(np.float32)
        return np.stack([x, x * 0.5 + 20, x * 0.25 + 10], -1).round().astype(np.uint8)

    def datasets():
        s = kit.digits_splits()
        return {"train": kit.ArrayImages(_rgb(s["train"][0]), s["train"][1],
                                         T.Compose([T.ToTensor(), norm])),
                "val": kit.ArrayImages(_rgb(s["val"][0]), s["val"][1],
                                       T.Compose([T.ToTensor(), BGR, norm]))}

    def model():
        return kit.SmallCNN(in_channels=3)
"""


def test_channel_swap_between_train_and_eval_is_a_parity_problem(tmp_path: Path) -> None:
    _, f = run_check("normalization_mismatch", write_case(tmp_path, RGB), tmp_path)
    assert f.verdict is Verdict.FAIL, f.summary
    e = f.effect_on("preprocessing_parity")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    assert "RGB↔BGR" in e.reason
    assert f.effect_on("normalization_mismatch").direction is Direction.REFUTES
    assert f.metric("val mean shift vs train") > 1.0


def test_demo_eval_only_difference_goes_to_parity(tmp_path: Path) -> None:
    _, f = run_check("normalization_mismatch", DEMO_CASE, tmp_path)
    assert f.verdict is Verdict.FAIL
    parity = f.effect_on("preprocessing_parity")
    assert parity.direction is Direction.SUPPORTS and "(x - 0.5) / 0.5" in parity.reason
    mismatch = f.effect_on("normalization_mismatch")
    assert mismatch.direction is Direction.REFUTES and mismatch.strength is Strength.WEAK
    # (x-0.5)/0.5 vs (x-0.305)/0.375: std ratio exactly 0.5/0.375.
    assert abs(f.metric("val std ratio vs train") - 0.5 / 0.375) < 0.02
    assert f.metric("train range fit to declared") < 0.01


def test_clean_case_passes(tmp_path: Path) -> None:
    _, f = run_check("normalization_mismatch", CASES / "digits_clean.py", tmp_path)
    assert f.verdict is Verdict.PASS, f.summary
    assert abs(f.metric("train max |mean|")) < 0.05 and abs(f.metric("train max std") - 1) < 0.05
    assert f.effect_on("normalization_mismatch").direction is Direction.REFUTES
    assert f.effect_on("preprocessing_parity") is None


def test_other_constants_than_declared_are_a_moderate_mismatch(tmp_path: Path) -> None:
    src = GREY.replace("__TRAIN__", "T.ToTensor(), T.Normalize([0.5], [0.5])").replace(
        "EVAL_TF = T.Compose([T.ToTensor(), norm])", "EVAL_TF = TRAIN_TF"
    )
    _, f = run_check("normalization_mismatch", write_case(tmp_path, src), tmp_path)
    assert f.verdict is Verdict.WARN, f.summary
    e = f.effect_on("normalization_mismatch")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.MODERATE
    assert "(x - 0.5) / 0.5" in e.reason
    assert f.effect_on("preprocessing_parity") is None  # train and eval agree


def test_torchvision_backbone_without_imagenet_statistics(tmp_path: Path) -> None:
    src = RGB.replace("T.Compose([T.ToTensor(), BGR, norm])", "T.Compose([T.ToTensor(), norm])")
    src = src.replace(
        '"mean": [0.305, 0.19, 0.1], "std": [0.375, 0.2, 0.12]',
        '"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]',
    ).replace(
        "return kit.SmallCNN(in_channels=3)",
        "import torchvision; return torchvision.models.resnet18(num_classes=10)",
    )
    m, f = run_check("normalization_mismatch", write_case(tmp_path, src), tmp_path)
    assert m.backbone == "ResNet"
    e = f.effect_on("normalization_mismatch")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.MODERATE
    assert "ImageNet" in e.reason
