"""Overriding fields of a check's frozen Settings / Thresholds dataclass by name.

Used by playbooks (`[checks.label_issues.thresholds] strong_rate = 0.1`, values typed by TOML) and
by `detective rejudge --set label_issues.strong_rate=0.1` (values as text). A key the dataclass
does not have, or a value of the wrong type, is an `OverrideError` naming the valid keys.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

class OverrideError(ValueError):
    pass


def parse_assignment(text: str) -> tuple[str, str, str]:
    """'check.key=value' -> (check, key, value text)."""
    target, sep, value = text.partition("=")
    check_id, dot, key = target.strip().rpartition(".")
    if not sep or not dot or not check_id or not key:
        raise OverrideError(f"expected CHECK.KEY=VALUE, got {text!r}")
    return check_id, key, value.strip()


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """`value` (TOML-typed, or text from the command line) as type `tp`, or OverrideError."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        items = value
        if isinstance(value, str):
            items = [v for v in value.strip("()[] ").split(",") if v.strip()]
        if not isinstance(items, list | tuple):
            raise OverrideError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else str
        return tuple(_coerce(item, v, where) for v in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise OverrideError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise OverrideError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise OverrideError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise OverrideError(f"{where}: expected text, got {value!r}")
    raise OverrideError(f"{where}: this field cannot be set from outside (type {tp})")


def fields_of(tp: type) -> dict[str, Any]:
    """Settable field names of a dataclass type and their types."""
    hints = typing.get_type_hints(tp)
    return {f.name: hints[f.name] for f in dataclasses.fields(tp)}


def apply(base: T, values: Mapping[str, Any], where: str) -> T:
    """A copy of the frozen dataclass `base` with `values` (by field name) set."""
    if not values:
        return base
    known = fields_of(type(base))
    changes = {}
    for key, value in values.items():
        if key not in known:
            names = ", ".join(sorted(known)) or "none"
            raise OverrideError(f"{where}: unknown key {key!r} (keys: {names})")
        changes[key] = _coerce(known[key], value, f"{where}.{key}")
    return dataclasses.replace(base, **changes)  # type: ignore[type-var]
