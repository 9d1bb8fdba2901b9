"""eval_mode (issue 13): a reported number is matched against train-mode accuracy measured the way
the user's loop ran it — the split in order, several batch sizes, seeded passes with their
measured spread — and metric_recompute credits such a number to eval_mode_bug, not metric_bug."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import CASES, run_check

from detective.analysis.measures import EvalModeStats, TrainModeAccuracy, draw_sd
from detective.checks.evaluation_integrity.eval_mode import (
    EvalMode,
    EvalModeThresholds,
    train_mode_match,
)
from detective.checks.evaluation_integrity.metric_recompute import (
    Candidate,
    MetricMeasurement,
    MetricRecompute,
)
from detective.core.findings import Direction, Finding, Strength, Verdict

# Measured on benchmarks/cases/eval_mode_forgotten.py (450 val items, the user's loop at batch 8
# printed 0.922): train mode is far below eval mode only at small batches.
SWEEP = (
    TrainModeAccuracy(256, 0.979, 0.005, 3),
    TrainModeAccuracy(4, 0.860, 0.013, 3),
    TrainModeAccuracy(8, 0.938, 0.009, 3),
    TrainModeAccuracy(16, 0.962, 0.0075, 3),
    TrainModeAccuracy(32, 0.969, 0.0073, 3),
)


def stats(reported: float | None, sweep=SWEEP, eval_acc: float = 0.987) -> EvalModeStats:
    return EvalModeStats("val", 450, (), 4, 0.0, 0.011, eval_acc, 0.98, reported, 0.938,
                         train_mode_sweep=sweep, split_size=450)


def supports(f: Finding, hypothesis: str) -> bool:
    e = f.effect_on(hypothesis)
    return e is not None and e.direction is Direction.SUPPORTS


def test_a_train_mode_number_is_matched_at_its_batch_size() -> None:
    # Planted: 0.922 is 6.5 points below eval mode and 1.6 from batch-8 train mode. The old
    # band (one draw at a 256-item sample, ±√(2p(1-p)/n)·3 ≈ 0.078) swallowed the 6.5 points.
    f = EvalMode().judge(stats(0.922))
    assert f.verdict is Verdict.FAIL and supports(f, "eval_mode_bug"), f.summary
    assert "batch 8" in f.summary
    assert f.table_by_key("train_mode_sweep") is not None
    match = train_mode_match(stats(0.922), EvalModeThresholds())
    assert match is not None and match.batch == 8


def test_an_honest_number_or_another_bug_is_not_blamed_on_eval_mode() -> None:
    honest = EvalMode().judge(stats(0.985))
    assert honest.verdict is Verdict.PASS and not supports(honest, "eval_mode_bug")
    # 0.75 is 11 points below the lowest train-mode accuracy (batch 4, 0.860 ± 0.013: a band
    # of ≈ 0.055): some other bug lowered it.
    below = EvalMode().judge(stats(0.75))
    assert not supports(below, "eval_mode_bug"), below.summary
    # Far below everything train mode gives (a shuffled-label loader): another bug.
    assert train_mode_match(stats(0.11), EvalModeThresholds()) is None


def test_draw_sd_is_the_spread_of_one_pass() -> None:
    assert draw_sd(np.ones((3, 100))) == 0.0  # deterministic passes: no spread
    rng = np.random.default_rng(0)
    n = 2000
    passes = rng.random((40, n)) < 0.5  # every item right with probability 1/2
    expected = np.sqrt(n * 0.25) / n
    assert abs(draw_sd(passes.astype(float)) / expected - 1) < 0.1
    # The per-pass accuracies it describes scatter by about that much.
    assert abs(passes.mean(1).std(ddof=1) / expected - 1) < 0.35


def _metric(reported: float, mode: EvalModeStats | None) -> MetricMeasurement:
    cands = (Candidate("top-2 accuracy", 0.995), Candidate("error rate (1 - accuracy)", 0.013))
    return MetricMeasurement("val", 450, 450, 0, reported, 0.987, 0.986, 1.1, cands, mode)


def test_metric_recompute_credits_a_train_mode_number_to_eval_mode() -> None:
    f = MetricRecompute().judge(_metric(0.922, stats(0.922)))
    assert supports(f, "eval_mode_bug") and f.effect_on("metric_bug") is None, f.summary
    # No train-mode explanation: a wrong number is a metric bug, strongly.
    other = MetricRecompute().judge(_metric(0.50, stats(0.50)))
    e = other.effect_on("metric_bug")
    assert e is not None and e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG
    assert not supports(other, "eval_mode_bug")


def test_the_sweep_runs_on_a_forgotten_eval_and_not_on_an_honest_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(CASES))
    import errors_eval_forgotten as planted

    reported = planted.reported()
    m, f = run_check("eval_mode", CASES / "errors_eval_forgotten.py", tmp_path / "a",
                     reported_metric=reported)
    assert {s.batch for s in m.train_mode_sweep} >= {4, 8, 16, 32}
    assert m.n == m.split_size  # the whole split, as the user's loop saw it
    assert supports(f, "eval_mode_bug") and "batch 8" in f.summary, f.summary
    # The clean model with the number its own eval-mode pass gives: no sweep, no blame.
    m0, _ = run_check("eval_mode", CASES / "digits_clean.py", tmp_path / "b", reported_metric=0.5)
    honest = m0.eval_accuracy
    m1, f1 = run_check("eval_mode", CASES / "digits_clean.py", tmp_path / "c",
                       reported_metric=honest)
    assert m1.train_mode_sweep == () and not supports(f1, "eval_mode_bug"), f1.summary
