"""visualize_batch: grids written and exported; a transform that blanks the images is flagged."""

from pathlib import Path

import numpy as np
from helpers import CASES, run_check, write_case
from PIL import Image

from detective.core.findings import Verdict

BLANK = """
    from torchvision import transforms as T
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]
    NORMALIZATION = {"mean": [0.305], "std": [0.375]}
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    # The planted bug: a centre crop far smaller than the image keeps only one pixel.
    TF = T.Compose([T.CenterCrop(1), T.Resize(8), T.ToTensor(), norm])

    def datasets():
        s = kit.digits_splits()
        return {k: kit.ArrayImages(x, y, TF) for k, (x, y) in s.items()}

    def model():
        return kit.SmallCNN()
"""


def test_clean_case_draws_both_grids(tmp_path: Path) -> None:
    m, f = run_check("visualize_batch", CASES / "digits_clean.py", tmp_path)
    assert f.verdict is Verdict.PASS, f.summary
    assert f.metric("images shown") == 32 and f.metric("blank images") == 0
    # De-normalized with the declared constants the digits are back in [0, 1].
    assert f.metric("min pixel (de-normalized)") >= -1e-5
    assert f.metric("max pixel (de-normalized)") <= 1 + 1e-5
    assert {a.name for a in f.artifacts} == {"batch", "raw"}
    for a in f.artifacts:
        png = Image.open(tmp_path / "artifacts" / a.path)
        w, h = png.size  # 32 tiles of 72 px, 8 per row, a caption line under each
        assert 8 * 72 < w < 8 * 90 and 4 * 72 < h < 4 * 100, png.size
        assert np.asarray(png).std() > 10  # real content, not a blank sheet
    assert set(m.labels) <= {str(d) for d in range(10)} and len(m.labels) == 32


def test_a_transform_that_blanks_the_images_warns(tmp_path: Path) -> None:
    _, f = run_check("visualize_batch", write_case(tmp_path, BLANK), tmp_path)
    assert f.verdict is Verdict.WARN, f.summary
    assert f.metric("blank images") == 32
    assert [a.name for a in f.artifacts] == ["batch"]  # no raw_datasets(): one grid
