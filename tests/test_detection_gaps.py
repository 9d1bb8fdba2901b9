"""Detection gaps of issue 13: each check catches its planted pattern and stays quiet on a clean
one (pure judge tests on constructed measurements where the pattern is numeric)."""

from __future__ import annotations

from detective.analysis.measures import EvalModeStats
from detective.checks.evaluation_integrity.eval_mode import EvalMode
from detective.core.findings import Direction, Finding, Verdict


def supports(f: Finding, hypothesis: str) -> bool:
    e = f.effect_on(hypothesis)
    return e is not None and e.direction is Direction.SUPPORTS


def _mode(reported: float, train_mode: float, eval_acc: float = 0.95, n: int = 500):
    return EvalModeStats("val", n, (), 2, 0.0, 0.1, eval_acc, train_mode, reported, None)


def test_eval_mode_blames_a_low_metric_only_when_train_mode_matches_it() -> None:
    # Planted: the reported number is train-mode accuracy (one sampling draw away).
    planted = EvalMode().judge(_mode(reported=0.56, train_mode=0.55))
    assert planted.verdict is Verdict.FAIL and supports(planted, "eval_mode_bug")
    # A metric far below eval accuracy but also 10 points from train-mode accuracy (noise band
    # ≈ 0.055 at n=2000) is another bug: eval mode is not blamed although the number is closer
    # to train mode than to eval mode.
    other = EvalMode().judge(_mode(reported=0.55, train_mode=0.65, n=2000))
    assert not supports(other, "eval_mode_bug"), other.summary
    assert other.verdict is Verdict.PASS
