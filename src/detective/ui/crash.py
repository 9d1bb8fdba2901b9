"""The last line of defence in `main()`: an unexpected exception is our bug, never the user's
exit 1 (which `--strict` owns). It becomes exit 3 with one line on the console and the full
traceback in a log file: in the session folder when there is one, else in the temp folder."""

from __future__ import annotations

import datetime as dt
import platform
import sys
import tempfile
import traceback
from pathlib import Path

from detective import __version__


def write_crash_log(exc: BaseException, argv: list[str], session: str | None) -> Path | None:
    """Write the traceback and context to a fresh log file; its path, or None if nothing could
    be written anywhere."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = (
        f"detective {__version__} · Python {platform.python_version()} · {platform.platform()}\n"
        f"command: detective {' '.join(argv)}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    folders = []
    if session and Path(session).is_dir():
        folders.append(Path(session))
    folders.append(Path(tempfile.gettempdir()))
    for folder in folders:
        try:
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=folder, prefix=f"detective-crash-{stamp}-",
                suffix=".log", delete=False,
            ) as f:
                f.write(text)
                return Path(f.name)
        except OSError:
            continue
    return None


def report_crash(exc: BaseException, argv: list[str], session: str | None) -> None:
    log = write_crash_log(exc, argv, session)
    where = f"the traceback is in {log}" if log else "the traceback could not be written"
    print(  # noqa: T201 - rich may be what broke
        f"error: this is a bug in detective ({type(exc).__name__}: {exc}); {where}. "
        "Please report it with that file.",
        file=sys.stderr,
    )
