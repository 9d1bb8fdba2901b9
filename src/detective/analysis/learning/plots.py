"""PNG plots of the learning checks, drawn with matplotlib's object API on the Agg canvas (no
pyplot global state, safe from the engine's worker thread)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path


def _figure(width: float = 6.4, height: float = 3.6):  # noqa: ANN202
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def line_plot(
    path: Path,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
    vlines: Sequence[tuple[str, float]] = (),
) -> None:
    """series: (label, xs, ys); non-finite ys are dropped from the line."""
    fig = _figure()
    ax = fig.add_subplot()
    for label, xs, ys in series:
        pts = [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(y)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, linewidth=1.2)
    for label, x in vlines:
        if x > 0 and math.isfinite(x):
            ax.axvline(x, linestyle="--", linewidth=1, color="gray")
            ax.annotate(
                label,
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
            )
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def bar_plot(
    path: Path,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    ylabel: str,
    logy: bool = True,
    highlight: Sequence[bool] = (),
) -> None:
    fig = _figure(max(6.4, 0.35 * len(labels) + 2), 4.0)
    ax = fig.add_subplot()
    shown = [v if math.isfinite(v) and v > 0 else (1e-12 if logy else 0.0) for v in values]
    colors = ["tab:red" if h else "tab:blue" for h in highlight] if highlight else None
    ax.bar(range(len(labels)), shown, color=colors)
    ax.set_xticks(
        range(len(labels)), [str(lb) for lb in labels], rotation=60, ha="right", fontsize=7
    )
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
