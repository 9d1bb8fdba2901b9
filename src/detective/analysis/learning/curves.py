"""Loss-curve statistics and classification. Pure Python: judges call this on stored series."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class CurveShape(StrEnum):
    HEALTHY = "healthy"
    SLOW = "slow"  # falls, but less than a healthy run in the same budget
    PLATEAU = "plateau from the start"
    DIVERGENCE = "divergence / NaN"
    OSCILLATION = "oscillation"
    VAL_RISING = "val rising while train falls"
    TOO_SHORT = "too short to judge"


@dataclass(frozen=True)
class CurveStats:
    points: int
    start: float  # mean of the first window
    end: float  # mean of the last window
    minimum: float
    drop: float  # (start - end) / start
    noise: float  # median |step-to-step change| / median level, last half
    first_nonfinite: int  # index of the first NaN/Inf, -1 if none
    rise_from_min: float  # end / minimum of the smoothed curve


def ema(values: Sequence[float], beta: float = 0.9) -> list[float]:
    """Bias-corrected exponential moving average (the range test's and TensorBoard's smoothing)."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def centered_mean(values: Sequence[float], half: int = 3) -> list[float]:
    """Moving average over a centred window: no lag, so minima stay where they happened."""
    n = len(values)
    out = []
    for i in range(n):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        out.append(statistics.fmean(values[lo:hi]))
    return out


def curve_stats(values: Sequence[float]) -> CurveStats:
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), -1)
    finite = list(values[:bad]) if bad >= 0 else list(values)
    n = len(finite)
    if n < 4:
        return CurveStats(n, math.nan, math.nan, math.nan, math.nan, math.nan, bad, math.nan)
    w = max(1, n // 10)
    start, end = statistics.fmean(finite[:w]), statistics.fmean(finite[-w:])
    smooth = ema(finite, 0.8)
    half = finite[n // 2 :]
    diffs = [abs(b - a) for a, b in zip(half, half[1:], strict=False)]
    level = statistics.median(half)
    noise = statistics.median(diffs) / level if diffs and level > 0 else 0.0
    minimum = min(smooth)
    return CurveStats(
        points=n,
        start=start,
        end=end,
        minimum=minimum,
        drop=(start - end) / start if start > 0 else 0.0,
        noise=noise,
        first_nonfinite=bad,
        rise_from_min=end / minimum if minimum > 0 else 1.0,
    )


@dataclass(frozen=True)
class ValRise:
    rising: bool
    best_at: int  # index of the lowest val loss
    best: float
    final: float
    train_drop_after_best: float  # relative fall of the train loss after the val minimum


def val_rise(
    train_steps: Sequence[int],
    train: Sequence[float],
    val_steps: Sequence[int],
    val: Sequence[float],
    min_rise: float,
) -> ValRise:
    """Does val loss climb from its minimum while the train loss keeps falling?"""
    pts = [(s, v) for s, v in zip(val_steps, val, strict=False) if math.isfinite(v)]
    if len(pts) < 3:
        return ValRise(False, -1, math.nan, math.nan, math.nan)
    best_i = min(range(len(pts)), key=lambda i: pts[i][1])
    best_step, best = pts[best_i]
    final = statistics.fmean(v for _, v in pts[-max(1, len(pts) // 10) :])
    after = [
        v for s, v in zip(train_steps, train, strict=False) if s >= best_step and math.isfinite(v)
    ]
    t_drop = (
        (after[0] - statistics.fmean(after[-max(1, len(after) // 10) :])) / after[0]
        if (len(after) >= 2 and after[0] > 0)
        else 0.0
    )
    rising = best_i < len(pts) - 1 and final > best * (1 + min_rise) and t_drop > 0.0
    return ValRise(rising, best_step, best, final, t_drop)
