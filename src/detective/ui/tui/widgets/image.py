"""A PNG artifact: real pixels (sixel / kitty protocol, via textual-image) when the terminal
draws them, else half-block characters (two pixels a cell), scaled to fit."""

from __future__ import annotations

from pathlib import Path

from rich.console import RenderableType
from textual.widget import Widget

from detective.ui.tui.text import plain


def image_view(path: Path, max_cols: int = 72, max_rows: int = 20) -> Widget:
    """The best image widget this terminal allows for the PNG at `path`."""
    from detective.ui.tui.widgets.graphics import image_widget

    graphics = image_widget()
    if graphics is not None and path.is_file():
        widget: Widget = graphics(str(path))
        widget.styles.width, widget.styles.height = max_cols, max_rows
        return widget
    return ImageView(path, max_cols, max_rows)


class ImageView(Widget):
    DEFAULT_CSS = """
    ImageView { height: auto; width: auto; }
    """

    def __init__(self, path: Path, max_cols: int = 72, max_rows: int = 20) -> None:
        super().__init__()
        self.path, self.max_cols, self.max_rows = path, max_cols, max_rows
        self._renderable: RenderableType | None = None
        self._rows = 1

    def _load(self) -> RenderableType:
        if self._renderable is not None:
            return self._renderable
        try:
            from PIL import Image
            from rich_pixels import Pixels

            with Image.open(self.path) as image:
                w, h = image.size
                scale = min(self.max_cols / w, 2 * self.max_rows / h, 4.0)
                cols, px_rows = max(1, round(w * scale)), max(2, round(h * scale))
                px_rows += px_rows % 2
                self._rows = px_rows // 2
                self._renderable = Pixels.from_image(image.convert("RGBA"), resize=(cols, px_rows))
        except Exception as e:  # a missing or unreadable file is a message, not a crash
            self._renderable = plain(f"[cannot show {self.path.name}: {type(e).__name__}: {e}]")
            self._rows = 1
        return self._renderable

    def get_content_height(self, container, viewport, width: int) -> int:  # noqa: ANN001
        self._load()
        return self._rows

    def get_content_width(self, container, viewport) -> int:  # noqa: ANN001
        self._load()
        return self.max_cols

    def render(self) -> RenderableType:
        return self._load()
