"""detective: a hypothesis-driven investigation of why a vision model underperforms.

The package root stays import-free so that `detective --help` and the TUI's first frame are fast;
torch is imported inside the functions that need it.
"""

__version__ = "0.1.0"
