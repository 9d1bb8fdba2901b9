"""Dataclass <-> JSON-friendly values, at the file boundary only.

Supports nested dataclasses, StrEnums, tuples/lists, dicts with string keys, optionals and
primitives. Unknown keys are ignored when reading, so newer files open in older code and vice versa.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return to_jsonable(obj.item())
    return obj


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(tp: Any, data: Any) -> Any:
    """Rebuild a value of type `tp` from `to_jsonable` output."""
    if tp is Any or data is None and _is_optional(tp):
        return data
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if data is None:
            return None
        last_error: Exception | None = None
        for arg in args:
            try:
                return from_jsonable(arg, data)
            except (TypeError, ValueError, KeyError) as e:
                last_error = e
        raise TypeError(f"{data!r} matches none of {args}") from last_error
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {tp.__name__}, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = from_jsonable(hints[f.name], data[f.name])
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if origin in (tuple, list):
        targs = get_args(tp)
        if origin is tuple and targs and targs[-1] is not Ellipsis:
            return tuple(from_jsonable(a, v) for a, v in zip(targs, data, strict=False))
        item = targs[0] if targs else Any
        values = [from_jsonable(item, v) for v in data]
        return tuple(values) if origin is tuple else list(values)
    if origin is dict:
        _, vt = get_args(tp) or (str, Any)
        return {k: from_jsonable(vt, v) for k, v in data.items()}
    if tp is float:
        if data in ("inf", "-inf"):
            return float(data)
        return float("nan") if data is None else float(data)
    if tp is int:
        return int(data)
    return data


def _is_optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)
