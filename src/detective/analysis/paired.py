"""The exact McNemar test on paired per-item outcomes (scipy's binomial test on the discordant
pairs), shared by every before/after comparison: interventions, parity, shortcut swaps, compare."""

from __future__ import annotations

from typing import Literal


def mcnemar_exact(
    k: int, other: int, alternative: Literal["two-sided", "greater", "less"] = "two-sided"
) -> float:
    """p-value that `k` of the `k + other` discordant pairs went one way: under no difference
    they split 50/50. One-sided "greater": more went the `k` way. No discordant pair: 1."""
    from scipy.stats import binomtest

    n = k + other
    if n == 0:
        return 1.0
    return float(binomtest(k, n, 0.5, alternative=alternative).pvalue)
