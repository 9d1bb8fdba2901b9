"""label_alignment: labels shifted against their images, and a vertical flip on digits."""

from pathlib import Path

from helpers import CASES, run_check, write_case

from detective.core.findings import Direction, Strength, Verdict

BASE = """
    import numpy as np
    from torchvision import transforms as T
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]
    NORMALIZATION = {"mean": [0.305], "std": [0.375]}
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])

    def transforms():
        return {"train": T.Compose([__AUG__ T.ToTensor(), norm]),
                "eval": T.Compose([T.ToTensor(), norm])}

    def raw_datasets():
        return {k: kit.ArrayImages(x, y) for k, (x, y) in kit.digits_splits().items()}

    def datasets():
        tf = transforms()
        s = kit.digits_splits()
        x, y = s["train"]
        return {"train": kit.ArrayImages(x, __TRAIN_LABELS__, tf["train"]),
                "val": kit.ArrayImages(*s["val"], tf["eval"])}

    def model():
        return kit.SmallCNN()
"""


def case(tmp_path: Path, aug: str = "", labels: str = "y", raw: bool = True) -> Path:
    src = BASE.replace("__AUG__", aug).replace("__TRAIN_LABELS__", labels)
    if not raw:
        src = src.replace("def raw_datasets", "def _no_raw")
    return write_case(tmp_path, src)


def test_vertical_flip_of_digits_breaks_labels(tmp_path: Path) -> None:
    aug = "T.RandomAffine(degrees=8), T.RandomVerticalFlip(0.5),"
    m, f = run_check("label_alignment", case(tmp_path, aug), tmp_path)
    assert f.verdict is Verdict.FAIL, f.summary
    e = f.effect_on("augmentation_breaks_labels")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    by = {a.name: a for a in m.augmentations}
    assert set(by) == {"RandomAffine", "RandomVerticalFlip"}
    assert by["RandomVerticalFlip"].probability == 0.5
    assert m.clean_accuracy > 0.9
    assert m.clean_accuracy - by["RandomVerticalFlip"].accuracy > 0.4
    assert m.clean_accuracy - by["RandomAffine"].accuracy < 0.05  # a harmless augmentation
    assert "RandomVerticalFlip" in e.reason and "RandomAffine" not in e.reason
    assert f.effect_on("label_misalignment").direction is Direction.REFUTES


def test_labels_shifted_against_images_differ_from_raw(tmp_path: Path) -> None:
    m, f = run_check("label_alignment", case(tmp_path, labels="np.roll(y, 1)"), tmp_path)
    assert f.verdict is Verdict.FAIL
    e = f.effect_on("label_misalignment")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    assert m.compared == 1000 + 450  # the bounded sample of train, all of val
    assert m.mismatch_count > 0.85 * 1000  # neighbours share a label only ~10% of the time
    assert m.train_cv_accuracy < 0.25 < 0.85 < m.val_cv_accuracy


def test_without_raw_data_the_learnability_gap_still_catches_it(tmp_path: Path) -> None:
    m, f = run_check("label_alignment", case(tmp_path, labels="np.roll(y, 1)", raw=False), tmp_path)
    assert m.compared == 0
    e = f.effect_on("label_misalignment")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    assert "train labels are far less learnable" in e.reason


def test_clean_case_passes(tmp_path: Path) -> None:
    m, f = run_check("label_alignment", CASES / "digits_clean.py", tmp_path)
    assert f.verdict is Verdict.PASS, f.summary
    assert m.mismatch_count == 0 and [a.name for a in m.augmentations] == ["RandomAffine"]
    assert f.effect_on("label_misalignment").direction is Direction.REFUTES
    assert f.effect_on("augmentation_breaks_labels").direction is Direction.REFUTES


def test_a_pixel_probe_drop_under_translation_is_only_a_lead() -> None:
    from detective.checks.pipeline.label_alignment import AugmentationEffect, _moves_pixels

    def effect(name: str, detail: str) -> AugmentationEffect:
        return AugmentationEffect(name, detail, 1.0, 0.5, ())

    assert _moves_pixels(
        effect("RandomAffine", "RandomAffine(degrees=[-10.0, 10.0], translate=(0.1, 0.1))")
    )
    assert _moves_pixels(effect("RandomResizedCrop", "RandomResizedCrop(size=(8, 8))"))
    assert not _moves_pixels(effect("RandomAffine", "RandomAffine(degrees=[-8.0, 8.0])"))
    assert not _moves_pixels(effect("RandomVerticalFlip", "RandomVerticalFlip(p=0.5)"))
