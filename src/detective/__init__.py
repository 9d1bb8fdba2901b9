"""detective: a hypothesis-driven investigation of why a vision model underperforms.

The package root stays import-free so that `detective --help` and the TUI's first frame are fast;
torch is imported inside the functions that need it. `detective.investigate` (the Python API) is
exported lazily (PEP 562): importing the package does not import it.
"""

from typing import Any

__version__ = "0.1.0"

_LAZY = {"investigate": "detective.api", "Investigation": "detective.api"}
__all__ = ["Investigation", "__version__", "investigate"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'detective' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
