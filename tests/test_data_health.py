"""data_health: an item that raises, NaN tensors, odd and truncated raw files, imbalance, shift."""

from pathlib import Path

from helpers import CASES, run_check, write_case

from detective.core.findings import Direction, Strength, Verdict

BASE = """
    import numpy as np
    import torch
    from torchvision import transforms as T
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]
    NORMALIZATION = {"mean": [0.305], "std": [0.375]}
    TF = T.Compose([T.ToTensor(), T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])])

    def _splits():
        s = kit.digits_splits()
        __EDIT__
        return s

    class Flaky(kit.ArrayImages):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            __ITEM__
            return x, y

    def datasets():
        return {k: Flaky(x, y, TF) if k == "train" else kit.ArrayImages(x, y, TF)
                for k, (x, y) in _splits().items()}

    def raw_datasets():
        return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}

    def model():
        return kit.SmallCNN()
"""


def case(tmp_path: Path, edit: str = "pass", item: str = "pass", raw: bool = True) -> Path:
    src = BASE.replace("__EDIT__", edit).replace("__ITEM__", item)
    if not raw:
        src = src.replace("def raw_datasets", "def _no_raw")
    return write_case(tmp_path, src)


def test_an_item_that_raises_is_named_and_the_rest_still_runs(tmp_path: Path) -> None:
    bad = "if i == 17: raise ValueError('cannot decode scan 17')"
    m, f = run_check("data_health", case(tmp_path, item=bad), tmp_path)
    assert f.verdict is Verdict.WARN, f.summary
    assert "train item 17: ValueError: cannot decode scan 17" in f.summary
    assert [(b.split, b.index) for b in m.bad] == [("train", 17)]
    e = f.effect_on("corrupt_inputs")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.MODERATE
    # Everything else was measured: counts from the labels attribute, shift tests done.
    assert sum(next(s for s in m.splits if s.split == "train").counts) == 1347
    assert {s.name for s in m.shifts} >= {"brightness", "contrast", "sharpness"}


def test_nan_tensors_in_many_items_are_strong_evidence(tmp_path: Path) -> None:
    nan = "if i % 20 == 0: x = x.clone(); x[0, 0, 0] = float('nan')"
    m, f = run_check("data_health", case(tmp_path, item=nan), tmp_path)
    assert f.verdict is Verdict.FAIL
    assert len(m.bad) == 68  # ceil(1347 / 20)
    assert all(b.reason == "image holds NaN or Inf values" for b in m.bad)
    assert f.effect_on("corrupt_inputs").strength is Strength.STRONG


ODD = """
    import numpy as np
    from PIL import Image
    from torchvision import transforms as T
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]
    PNG = __PNG__

    class Raw(kit.ArrayImages):
        def __getitem__(self, i):
            rgb = Image.fromarray(np.repeat(self.images[i][..., None], 3, -1), "RGB")
            if i == 3:
                rgb = rgb.convert("CMYK")
            elif i == 5:
                rgb = Image.fromarray(self.images[i].astype(np.uint16) * 257)  # I;16
            elif i == 7:
                rgb = rgb.convert("L")
            elif i == 9:
                rgb = Image.open(PNG)  # truncated on disk: decoding raises
            return rgb, int(self.labels[i])

    def raw_datasets():
        return {k: Raw(x, y) for k, (x, y) in kit.digits_splits().items()}

    def datasets():
        tf = T.Compose([T.Grayscale(3), T.ToTensor()])
        return {k: kit.ArrayImages(x, y, tf) for k, (x, y) in kit.digits_splits().items()}

    def model():
        return kit.SmallCNN(in_channels=3)
"""


def test_odd_modes_and_a_truncated_file_in_the_raw_images(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    png = tmp_path / "scan.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(png)
    png.write_bytes(png.read_bytes()[:300])
    m, f = run_check(
        "data_health", write_case(tmp_path, ODD.replace("__PNG__", repr(str(png)))), tmp_path
    )
    assert [b.index for b in m.bad if b.split == "train"] == [9]
    assert f"raw image: {png}: truncated image data (OSError" in m.bad[0].reason  # the file named
    odd = {(b.split, b.index): b.reason for b in m.odd}
    assert set(odd) >= {("train", 3), ("train", 5), ("train", 7)}
    assert (
        "CMYK" in odd[("train", 3)] and "I;16" in odd[("train", 5)] and " L " in odd[("train", 7)]
    )
    assert f.effect_on("corrupt_inputs").direction is Direction.SUPPORTS


def test_strong_imbalance_without_a_shift(tmp_path: Path) -> None:
    # Keep 1 in 12 of classes 0..4 in both splits: imbalanced, identically so.
    edit = """for k, (x, y) in list(s.items()):
            keep = (y >= 5) | (np.arange(len(y)) % 12 == 0)
            s[k] = (x[keep], y[keep])"""
    m, f = run_check("data_health", case(tmp_path, edit=edit), tmp_path)
    train = next(s for s in m.splits if s.split == "train")
    assert f.metric("train imbalance ratio") == max(train.counts) / min(train.counts) >= 10
    assert f.effect_on("class_imbalance").strength is Strength.STRONG
    assert f.effect_on("distribution_shift").direction is Direction.REFUTES
    assert f.verdict is Verdict.FAIL


def test_darker_val_images_are_a_distribution_shift(tmp_path: Path) -> None:
    edit = """x, y = s["val"]
        s["val"] = ((x * 0.5).astype(np.uint8), y)"""
    m, f = run_check("data_health", case(tmp_path, edit=edit), tmp_path)
    e = f.effect_on("distribution_shift")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    brightness = next(s for s in m.shifts if s.name == "brightness")
    assert brightness.statistic > 0.5 and brightness.p_value < 1e-10
    assert abs(brightness.val_median / brightness.train_median - 0.5) < 0.02
    assert m.properties_from == "raw images"


def test_val_class_balance_shift(tmp_path: Path) -> None:
    edit = """x, y = s["val"]
        keep = (y != 0) & (y != 1) | (np.arange(len(y)) % 10 == 0)
        s["val"] = (x[keep], y[keep])"""
    _, f = run_check("data_health", case(tmp_path, edit=edit), tmp_path)
    assert f.metric("class balance chi-square p") < 1e-3
    assert f.metric("class balance shift (TVD)") > 0.15
    assert f.effect_on("distribution_shift").strength is Strength.STRONG


def test_clean_case_passes(tmp_path: Path) -> None:
    _, f = run_check("data_health", CASES / "digits_clean.py", tmp_path)
    assert f.verdict is Verdict.PASS, f.summary
    assert f.metric("bad items") == 0 and f.metric("odd-mode images") == 0
    assert f.metric("train imbalance ratio") < 1.1
    for h in ("corrupt_inputs", "class_imbalance", "distribution_shift"):
        assert f.effect_on(h).direction is Direction.REFUTES, h


def test_blank_fallback_images_are_corrupt_inputs(tmp_path: Path) -> None:
    # A decoder fallback: one item in nine of every split comes back as a black image.
    edit = """for k, (x, y) in list(s.items()):
            x = x.copy()
            x[np.arange(len(y)) % 9 == 4] = 0
            s[k] = (x, y)"""
    m, f = run_check("data_health", case(tmp_path, edit=edit), tmp_path)
    blanks = sum(s.blank for s in m.splits)
    assert blanks > 0.1 * sum(s.sampled for s in m.splits)  # 1/9 of the items
    e = f.effect_on("corrupt_inputs")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    assert "blank" in e.reason and f.metric("blank inputs") == blanks


def test_faint_images_are_not_blank(tmp_path: Path) -> None:
    # Very faint scans still have content: never counted as blank.
    edit = """x, y = s["val"]
        s["val"] = ((x // 40).astype(np.uint8), y)"""
    m, f = run_check("data_health", case(tmp_path, edit=edit), tmp_path)
    assert sum(s.blank for s in m.splits) <= 2  # digits at 1/40 brightness: a stray empty one
    e = f.effect_on("corrupt_inputs")
    assert e.direction is Direction.REFUTES or e.strength is Strength.WEAK, f.summary
