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
