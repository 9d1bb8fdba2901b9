"""Argument types for the CLI: bad values are usage errors (exit 2) that name the accepted range,
before anything is loaded. Kept out of cli.py so every command shares them."""

from __future__ import annotations

import argparse
import math
import re
import sys

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def positive_int(text: str) -> int:
    """An integer ≥ 1 (`--sample 0` would 'pass' checks on no data; a negative one crashes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (expected ≥ 1)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range: expected a whole number ≥ 1")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is out of range: expected seconds > 0")
    return value


def workers(text: str) -> int:
    """A number of DataLoader worker processes, ≥ 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (expected ≥ 0)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is out of range: expected a whole number ≥ 0")
    return value


def minutes(text: str) -> float:
    """A positive, finite number of minutes (`--budget 2`, `--budget 0.5`)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is out of range: expected minutes > 0")
    return value


def budget(text: str) -> float:
    """`--budget`: minutes of measured work, or `none` / `0` for no bound (returned as inf)."""
    if text.strip().lower() in ("none", "0", "0.0", "inf"):
        return math.inf
    try:
        return minutes(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a budget: expected minutes > 0, or none for no bound"
        ) from None


def reported_metric(text: str) -> float:
    """An accuracy in [0, 1]; a value in (1, 100] (or "87%") is read as a percentage, with a
    printed notice so that a typo is not silently rescaled."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        value = math.nan
    accepted = "expected an accuracy in [0, 1], or a percentage in (1, 100]"
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number: {accepted}")
    if percent or 1.0 < value <= 100.0:
        if not 0.0 <= value <= 100.0:
            raise argparse.ArgumentTypeError(f"{text} is out of range: {accepted}")
        print(  # noqa: T201 - a notice at parse time, before any console exists
            f"note: --reported-metric {raw} read as a percentage: {value / 100:g}",
            file=sys.stderr,
        )
        return value / 100.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is out of range: {accepted}")
    return value


def device(text: str) -> str:
    """The spelling of a device (availability is checked later, with torch loaded)."""
    if not _DEVICE.match(text.strip()):
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r}: expected auto, cpu, cuda or cuda:N"
        )
    return text.strip()


def device_problem(name: str | None) -> str | None:
    """Why `name` cannot run here (e.g. cuda without a GPU), or None. Imports torch."""
    if name is None:
        return None
    from detective.analysis.torchutil import DeviceError, resolve_device

    try:
        resolve_device(name)
    except DeviceError as e:
        return str(e)
    return None
