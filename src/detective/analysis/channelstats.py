"""Per-channel pixel statistics (mean, std, range) accumulated in one pass, memory flat in N.

Read twice: over the tensors the model receives (normalization_mismatch) and over the raw images
[0, 1] before any transform (normalization_mismatch's dataset-vs-pipeline split and the
`eval.normalize=declared` intervention). Import inside functions (torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    import torch

    from detective.core.context import RunContext


@dataclass(frozen=True)
class SplitStats:
    split: str
    images: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


class ChannelMoments:
    """Sums, sums of squares and extremes per channel; float64 so 10⁸ pixels lose nothing."""

    def __init__(self) -> None:
        self._sum: torch.Tensor | None = None
        self._sq: torch.Tensor | None = None
        self._low: torch.Tensor | None = None
        self._high: torch.Tensor | None = None
        self.pixels = 0
        self.images = 0

    @property
    def channels(self) -> int | None:
        return None if self._sum is None else int(self._sum.shape[0])

    def add(self, x: torch.Tensor, images: int) -> None:
        """`x`: [C, pixels] of `images` images."""
        import torch

        x = x.double()
        s, sq, lo, hi = x.sum(1), (x**2).sum(1), x.min(1).values, x.max(1).values
        if self._sum is None or self._sq is None or self._low is None or self._high is None:
            self._sum, self._sq, self._low, self._high = s, sq, lo, hi
        else:
            self._sum, self._sq = self._sum + s, self._sq + sq
            self._low, self._high = torch.minimum(self._low, lo), torch.maximum(self._high, hi)
        self.pixels += x.shape[1]
        self.images += images

    def stats(self, split: str) -> SplitStats | None:
        if self._sum is None or self._sq is None or self._low is None or self._high is None:
            return None
        mean = self._sum / self.pixels
        std = (self._sq / self.pixels - mean**2).clamp_min(0).sqrt()
        return SplitStats(split, self.images, _t(mean), _t(std), _t(self._low), _t(self._high))


def raw_stats(ctx: RunContext, split: str, indices: Iterable[int]) -> SplitStats | None:
    """Per-channel statistics of the raw images ([0, 1]); unreadable items are skipped
    (data_health names them), as are images of another channel count (data_health reports the
    mode)."""
    from detective.analysis.rawimages import to_unit_tensor

    raw = ctx.raw_dataset(split)
    acc = ChannelMoments()
    for i in indices:
        try:
            x = to_unit_tensor(raw[i][0]).flatten(1)  # [C, H*W]
        except Exception:  # noqa: BLE001 - user data: one bad file must not stop the others
            continue
        if acc.channels is not None and x.shape[0] != acc.channels:
            continue
        acc.add(x, 1)
    return acc.stats(split)


def _t(x: torch.Tensor) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in x)
