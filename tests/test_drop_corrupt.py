"""drop=corrupt (issue 13): blank inputs are found after a per-channel Normalize (which makes a
black RGB image non-constant across channels), and unreadable val items count as failures of the
user's pipeline before the intervention; a clean case has nothing to drop."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import CASES, context_for, write_case

from detective.analysis.imageprops import blank_inputs
from detective.workflows.interventions import Effect, run_intervention

RGB_BROKEN = """
    import sys
    sys.path.insert(0, __CASES__)
    import interventions_common as ic
    import numpy as np
    from detective.casekit.demo import kit

    CLASSES = [str(d) for d in range(10)]

    class Loader(kit.ArrayImages):
        def __getitem__(self, i):
            if i % 9 == 4:
                __BROKEN__
            return super().__getitem__(i)

    def datasets():
        tf = ic.rgb_transforms()
        s = ic.rgb_splits()
        return {"train": kit.ArrayImages(*s["train"], tf["train"]),
                "val": Loader(*s["val"], tf["eval"])}

    def model():
        return ic.rgb_model()
"""
RGB_BROKEN = RGB_BROKEN.replace("__CASES__", repr(str(CASES)))
BLACK = "return self.transform(np.zeros_like(self.x[i])), int(self.y[i])"
RAISES = "raise OSError('broken data stream')"


def test_blank_inputs_after_a_per_channel_normalize() -> None:
    x = torch.rand(4, 3, 8, 8)
    x[1] = torch.tensor([-0.8, -0.8, -0.9]).view(3, 1, 1)  # black, normalized per channel
    x[2] = 0.5 + 1e-3 * torch.rand(3, 8, 8)  # faint content is content
    assert blank_inputs(x).tolist() == [False, True, False, False]


def test_blank_rgb_items_are_dropped_and_recover_accuracy(tmp_path: Path) -> None:
    path = write_case(tmp_path, RGB_BROKEN.replace("__BROKEN__", BLACK))
    r = run_intervention(context_for(path, tmp_path), "drop=corrupt")
    assert r.dropped == 50  # every 9th of the 450 val items
    assert r.effect is Effect.RECOVERS and r.delta > 0.05 and r.p_value < 1e-6, r.sentence


def test_unreadable_items_count_as_failures_before(tmp_path: Path) -> None:
    path = write_case(tmp_path, RGB_BROKEN.replace("__BROKEN__", RAISES))
    r = run_intervention(context_for(path, tmp_path), "drop=corrupt")
    assert r.dropped == 50 and r.n_before == 450 and r.n_after == 400
    assert r.before < 0.9 * r.after  # 50 of 450 counted wrong before
    assert r.effect is Effect.RECOVERS, r.sentence
    assert any("unreadable" in n and "OSError" in n for n in r.notes), r.notes


def test_a_clean_rgb_case_has_nothing_to_drop(tmp_path: Path) -> None:
    r = run_intervention(context_for(CASES / "iv_rgb_clean.py", tmp_path), "drop=corrupt")
    assert r.dropped == 0 and r.effect is Effect.NO_EFFECT and r.p_value == 1.0
