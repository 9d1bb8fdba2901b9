"""A curve from a finding's table, drawn with textual-plotext (imported only when shown)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual_plotext import PlotextPlot

from detective.ui.export.text import strip_control

if TYPE_CHECKING:
    from detective.ui.browse import Curve


class CurvePlot(PlotextPlot):
    DEFAULT_CSS = """
    CurvePlot { height: 14; width: 1fr; }
    """

    def __init__(self, curve: Curve) -> None:
        super().__init__()
        self.curve = curve

    def on_mount(self) -> None:
        plt = self.plt
        plt.title(strip_control(self.curve.title))
        plt.xlabel(strip_control(self.curve.x_label))
        for label, values in self.curve.series:
            plt.plot(list(self.curve.x), list(values), label=strip_control(label), marker="braille")
