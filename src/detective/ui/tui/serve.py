"""`detective serve`: the same app in a browser, via textual-serve, on localhost by default.

It must work on an offline GPU box: textual-serve's page template loads its font from Google
Fonts, so we serve a copy of that template whose stylesheet links to remote hosts are replaced
by an @font-face on the Roboto Mono files textual-serve itself ships in its static folder.
"""

from __future__ import annotations

import re
import shlex
import sys
import tempfile
from pathlib import Path

TEMPLATE = "app_index.html"
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.S)
LOCAL_FONT = """<style>
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf");
      }
    </style>"""


def serve_command(session: str | None) -> str:
    """The command textual-serve runs for each browser tab: this Python, this package."""
    return shlex.join([sys.executable, "-m", "detective", *(["open", session] if session else [])])


def offline_template(original: str) -> str:
    """textual-serve's page without remote stylesheets, with the font from its own statics."""
    return _REMOTE_LINK.sub("", original).replace("</head>", LOCAL_FONT + "\n  </head>", 1)


def offline_templates(into: Path) -> Path:
    """A templates folder holding the offline page; textual-serve reads it per request."""
    import textual_serve

    source = Path(textual_serve.__file__).parent / "templates" / TEMPLATE
    (into / TEMPLATE).write_text(
        offline_template(source.read_text(encoding="utf-8")), encoding="utf-8"
    )
    return into


def serve(session: str | None, host: str = "localhost", port: int = 8000) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:
        sys.stderr.write("detective serve needs textual-serve: pip install 'detective[serve]'\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="detective-serve-") as folder:
        templates = offline_templates(Path(folder))
        Server(
            serve_command(session),
            host=host,
            port=port,
            title="detective",
            templates_path=templates,
        ).serve()
    return 0
