"""train_val_leakage: planted duplicates across the splits, and the clean digits split."""

from pathlib import Path

from helpers import CASES, run_check, write_case

from detective.checks.pipeline.train_val_leakage import TrainValLeakage
from detective.core.findings import Direction, Strength, Verdict

LEAKY = """
    import numpy as np
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]

    def _splits():
        s = kit.digits_splits()
        (xt, yt), (xv, yv) = s["train"], s["val"]
        xv, yv = xv.copy(), yv.copy()
        # 20 val images are train images: 8 exact, 8 with contrast changed, 4 relabelled.
        xv[:8], yv[:8] = xt[:8], yt[:8]
        xv[8:16] = (xt[8:16].astype(float) * 0.8 + 20).round().astype(np.uint8)
        yv[8:16] = yt[8:16]
        xv[16:20], yv[16:20] = xt[16:20], (yt[16:20] + 1) % 10
        return {"train": (xt, yt), "val": (xv, yv)}

    def raw_datasets():
        return {k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}

    def datasets():
        from torchvision import transforms as T
        return {k: kit.ArrayImages(x, y, T.ToTensor()) for k, (x, y) in _splits().items()}

    def model():
        return kit.SmallCNN()
"""


def test_finds_planted_duplicates_and_their_conflicting_labels(tmp_path: Path) -> None:
    case = write_case(tmp_path, LEAKY)
    m, f = run_check("train_val_leakage", case, tmp_path)
    assert f.verdict is Verdict.FAIL, f.summary
    assert f.metric("exact duplicates") == 12  # 8 copies + 4 relabelled copies
    assert f.metric("near duplicates") == 8  # the contrast-changed ones
    assert f.metric("duplicates with conflicting labels") == 4
    assert abs(f.metric("val duplicated in train") - 20 / 450) < 1e-9
    e = f.effect_on("train_val_leakage")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    pairs = {(p.val_index, p.train_index) for p in TrainValLeakage().duplicates(m)[:10]}
    assert (16, 16) in pairs  # a relabelled copy is listed first among the exact ones


def test_without_raw_datasets_near_duplicates_are_still_found(tmp_path: Path) -> None:
    case = write_case(tmp_path, LEAKY.replace("def raw_datasets", "def _unused"))
    m, f = run_check("train_val_leakage", case, tmp_path)
    assert m.source == "transformed"
    assert f.metric("exact duplicates") + f.metric("near duplicates") == 20
    assert f.verdict is Verdict.FAIL


def test_clean_digits_have_no_leak(tmp_path: Path) -> None:
    _, f = run_check("train_val_leakage", CASES / "digits_clean.py", tmp_path)
    assert f.verdict is Verdict.PASS, f.summary
    assert f.metric("exact duplicates") == 0 and f.metric("near duplicates") == 0
    assert f.effect_on("train_val_leakage").direction is Direction.REFUTES


def test_blocked_search_equals_brute_force() -> None:
    import numpy as np

    from detective.analysis.neardup import nearest, nearest_brute_force

    rng = np.random.default_rng(0)
    q = rng.normal(size=(300, 32)).astype(np.float32)
    b = rng.normal(size=(1000, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    fast, slow = nearest(q, b, block_q=64, block_b=128), nearest_brute_force(q, b)
    assert (fast.index == slow.index).all()
    assert np.allclose(fast.similarity, slow.similarity, atol=1e-6)


SHIFTED = LEAKY.replace(
    """        # 20 val images are train images: 8 exact, 8 with contrast changed, 4 relabelled.
        xv[:8], yv[:8] = xt[:8], yt[:8]
        xv[8:16] = (xt[8:16].astype(float) * 0.8 + 20).round().astype(np.uint8)
        yv[8:16] = yt[8:16]
        xv[16:20], yv[16:20] = xt[16:20], (yt[16:20] + 1) % 10""",
    """        # 24 val images are train images mirrored (12) or shifted by a pixel (12, a border
        # row/column cut and padded): invisible to an unaligned thumbnail cosine.
        xv[:12], yv[:12] = xt[:12, :, ::-1], yt[:12]
        shifted = np.zeros_like(xt[12:24])
        shifted[:, 1:, :-1] = xt[12:24, :-1, 1:]
        xv[12:24], yv[12:24] = shifted, yt[12:24]""",
)


def test_mirrored_and_shifted_copies_are_found_by_alignment(tmp_path: Path) -> None:
    case = write_case(tmp_path, SHIFTED)
    m, f = run_check("train_val_leakage", case, tmp_path)
    found = {p.val_index: p for p in TrainValLeakage().duplicates(m)}
    assert set(range(24)) <= set(found), sorted(found)
    assert all("mirrored" in found[i].transform for i in range(12))
    assert all("shifted" in found[i].transform for i in range(12, 24))
    assert len(found) <= 24 + 2  # nothing else in clean digits aligns that well
    e = f.effect_on("train_val_leakage")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG


BLANK = LEAKY.replace(
    """        # 20 val images are train images: 8 exact, 8 with contrast changed, 4 relabelled.
        xv[:8], yv[:8] = xt[:8], yt[:8]
        xv[8:16] = (xt[8:16].astype(float) * 0.8 + 20).round().astype(np.uint8)
        yv[8:16] = yt[8:16]
        xv[16:20], yv[16:20] = xt[16:20], (yt[16:20] + 1) % 10""",
    """        # A loader decodes 20 files of each split as blank: the same all-zero image under
        # every label in train and val alike.
        xt, yt = xt.copy(), yt.copy()
        xt[:20], xv[:20] = 0, 0""",
)


def test_blank_images_shared_by_the_splits_are_corrupt_inputs_not_leakage(tmp_path: Path) -> None:
    m, f = run_check("train_val_leakage", write_case(tmp_path, BLANK), tmp_path)
    assert m.blank_val == 20 and m.blank_val_in_train == 20 and m.blank_conflicting >= 10
    assert TrainValLeakage().duplicates(m) == ()
    assert f.effect_on("train_val_leakage").direction is Direction.REFUTES
    e = f.effect_on("corrupt_inputs")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG, f.summary


def test_drop_near_twins_drops_the_aligned_twins_the_check_finds(tmp_path: Path) -> None:
    # The intervention tests the check's claim: the mirrored and shifted copies it finds by
    # alignment are dropped too (a thumbnail-cosine search alone misses most of them).
    from helpers import context_for

    from detective.workflows.interventions import run_intervention

    r = run_intervention(context_for(write_case(tmp_path, SHIFTED), tmp_path), "drop=near_twins")
    assert 24 <= r.dropped <= 26, r.notes
    aligned = int(r.notes[0].split("(")[1].split(" of them")[0])
    assert aligned >= 24, r.notes


PHOTO_CROPS = """
    import numpy as np
    from PIL import Image
    from skimage import data
    from torch import nn
    from torchvision import transforms as T
    from detective.casekit.demo import kit

    CLASSES = ["astronaut", "coffee", "chelsea", "rocket"]
    COPIES = {copies}

    def _crops(image, n, x_lo, x_hi, rng):
        h, w = image.shape[:2]
        out = []
        for _ in range(n):
            side = int(rng.integers(40, 80))
            y = int(rng.integers(0, h - side))
            x = int(rng.integers(int(x_lo * w), int(x_hi * w) - side))
            crop = Image.fromarray(image[y : y + side, x : x + side]).resize((32, 32))
            out.append(np.asarray(crop))
        return np.stack(out)

    def _copy(img, rng):
        # a saved augmentation: mirrored, a 2-px re-crop, resized back
        y0, x0 = rng.integers(0, 3, 2)
        crop = Image.fromarray(img[:, ::-1][y0 : y0 + 30, x0 : x0 + 30])
        return np.asarray(crop.resize((32, 32), Image.BILINEAR))

    def _splits():
        rng = np.random.default_rng(0)
        photos = [getattr(data, c)() for c in CLASSES]
        # train crops from each photo's left half, val crops from its right half: distinct
        xt = np.concatenate([_crops(p, 60, 0.0, 0.5, rng) for p in photos])
        yt = np.repeat(np.arange(4), 60)
        xv = np.concatenate([_crops(p, 30, 0.5, 1.0, rng) for p in photos])
        yv = np.repeat(np.arange(4), 30)
        pick = rng.choice(len(yt), COPIES, replace=False)
        if COPIES:
            xv = np.concatenate([xv, np.stack([_copy(xt[i], rng) for i in pick])])
            yv = np.concatenate([yv, yt[pick]])
        return {{"train": (xt, yt), "val": (xv, yv)}}

    def raw_datasets():
        return {{k: kit.ArrayImages(x, y) for k, (x, y) in _splits().items()}}

    def datasets():
        return {{k: kit.ArrayImages(x, y, T.ToTensor()) for k, (x, y) in _splits().items()}}

    def model():
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4))
"""


def test_resized_recropped_mirrored_copies_are_found_where_pictures_are_sparse(
    tmp_path: Path,
) -> None:
    # 40 val images are train crops mirrored, re-cropped by 2 px and resized back: below the
    # 0.997 cosine a dense data set like digits needs, but 10× closer to their twin than the
    # twin's own closest train neighbour is.
    m, f = run_check("train_val_leakage", write_case(tmp_path, PHOTO_CROPS.format(copies=40)),
                     tmp_path)
    found = {p.val_index: p for p in TrainValLeakage().duplicates(m)}
    copies = [i for i in found if i >= 120]
    assert len(copies) >= 20, sorted(found)  # most of the 40 (27 when written)
    assert len(found) - len(copies) <= 1  # the 120 distinct crops stay out
    assert any("re-cropped" in found[i].transform for i in copies)
    e = f.effect_on("train_val_leakage")
    assert e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG, f.summary


def test_distinct_crops_of_the_same_photos_are_not_twins(tmp_path: Path) -> None:
    m, f = run_check("train_val_leakage", write_case(tmp_path, PHOTO_CROPS.format(copies=0)),
                     tmp_path)
    assert TrainValLeakage().duplicates(m) == (), m.candidates[:3]
    assert f.effect_on("train_val_leakage").direction is Direction.REFUTES
