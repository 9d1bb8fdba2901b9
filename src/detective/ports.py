"""What a run hands its checks besides the case: explicit, typed ports instead of a shared dict.

- `KeyValueStore`: the session's key/value table (the engine attaches it; None outside a session),
  where checks cache derived text such as LLM summaries.
- `ExperimentQueue`: experiments a check ran, saved by the engine with the check's finding.
- `RunCache`: values computed once per run (tensors of a sample, probe data, trained copies),
  each under a `CacheKey[T]` that carries the value's type, so readers get a typed value back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from detective.session import Experiment

T = TypeVar("T")


class KeyValueStore(Protocol):
    def kv_get(self, key: str) -> str | None: ...

    def kv_set(self, key: str, value: str) -> None: ...


class ExperimentQueue:
    """Experiments finished during the current check, waiting to be linked to its finding."""

    def __init__(self) -> None:
        self._pending: list[Experiment] = []

    def put(self, experiment: Experiment) -> None:
        self._pending.append(experiment)

    def drain(self) -> list[Experiment]:
        out, self._pending = self._pending, []
        return out

    def __len__(self) -> int:
        return len(self._pending)


@dataclass(frozen=True)
class CacheKey(Generic[T]):
    """A run-cache key; `T` is the type of the value stored under it (checked by mypy)."""

    name: str
    parts: tuple[Hashable, ...] = ()


class RunCache:
    """Per-run memoisation: `get(key, compute)` computes once, then returns the same object."""

    def __init__(self) -> None:
        self._values: dict[CacheKey[Any], Any] = {}
        self._lock = threading.RLock()

    def get(self, key: CacheKey[T], compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                return cast(T, self._values[key])
        value = compute()
        with self._lock:
            return cast(T, self._values.setdefault(key, value))

    def peek(self, key: CacheKey[T]) -> T | None:
        with self._lock:
            return cast("T | None", self._values.get(key))

    def __contains__(self, key: CacheKey[Any]) -> bool:
        return key in self._values

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
