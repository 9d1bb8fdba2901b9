"""A diverged checkpoint (NaN logits) leaves the recipe measurable: the judgement still runs its
training-side interventions (the user's model counts as predicting nothing), skips the
evaluation side with a reason, and proves a too-high LR by lowering it."""

import sys
from pathlib import Path

import pytest
import torch
from helpers import CASES

from detective.analysis.torchutil import argmax_finite
from detective.core.case import load_case
from detective.core.context import RunContext, RunOptions
from detective.core.engine import CheckFinished, CheckSkipped, run_playbook
from detective.core.findings import Direction, Verdict
from detective.core.playbook import resolve_playbook
from detective.core.session import Session, SessionInfo

ONLY = ["case_contract", "lr_range_test", "loss_curve", "interventions"]


def _run(case_file: str, tmp_path: Path) -> tuple[dict, dict]:
    sys.path.insert(0, str(CASES))
    case = load_case(CASES / case_file)
    session = Session.create(
        tmp_path / "s",
        SessionInfo(
            "s", str(case.path), case.file_hash, None, "vision-classification", RunOptions(), 0.0
        ),
    )
    ctx = RunContext(case, RunOptions(device="cpu"), session.artifacts_dir, session.cache_dir)
    events = list(run_playbook(session, resolve_playbook(None), ctx, only=ONLY))
    session.close()
    finished = {e.check_id: e.finding for e in events if isinstance(e, CheckFinished)}
    skipped = {e.check_id: e.reason for e in events if isinstance(e, CheckSkipped)}
    return finished, skipped


def test_nan_logits_predict_nothing() -> None:
    logits = torch.tensor([[0.1, 2.0], [float("nan"), 1.0], [1.0, float("inf")]])
    assert argmax_finite(logits).tolist() == [1, -1, -1]


def test_a_diverged_checkpoint_still_proves_the_lr(tmp_path: Path) -> None:
    finished, skipped = _run("learning_nan_checkpoint.py", tmp_path)
    assert finished["case_contract"].verdict is Verdict.FAIL
    assert "interventions" in finished, skipped
    f = finished["interventions"]
    lr = [o for o in f.interventions if o.hypothesis == "lr_too_high"]
    assert lr and lr[0].effect.value == "recovers", [o.sentence for o in f.interventions]
    assert lr[0].after - lr[0].before > 0.3
    assert any(e.hypothesis == "lr_too_high" and e.direction is Direction.SUPPORTS
               for e in f.effects)


@pytest.mark.parametrize("case_file", ["learning_nan_checkpoint_fine_lr.py"])
def test_a_broken_file_with_a_fine_recipe_blames_no_lr(case_file: str, tmp_path: Path) -> None:
    finished, _ = _run(case_file, tmp_path)
    f = finished.get("interventions")
    assert f is not None
    assert not any(o.effect.value == "recovers" for o in f.interventions), [
        o.sentence for o in f.interventions]
