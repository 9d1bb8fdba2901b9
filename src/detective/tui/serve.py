"""`detective serve`: the same app in a browser, via textual-serve, on localhost by default."""

from __future__ import annotations

import shlex
import sys


def serve_command(session: str | None) -> str:
    """The command textual-serve runs for each browser tab: this Python, this package."""
    return shlex.join([sys.executable, "-m", "detective", *(["open", session] if session else [])])


def serve(session: str | None, host: str = "localhost", port: int = 8000) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:
        sys.stderr.write("detective serve needs textual-serve: pip install 'detective[serve]'\n")
        return 2
    Server(serve_command(session), host=host, port=port, title="detective").serve()
    return 0
