"""What a run hands its checks besides the case: explicit, typed ports instead of a shared dict.

- `KeyValueStore`: the session's key/value table (the engine attaches it; None outside a session),
  where checks cache derived text such as LLM summaries.
- `ExperimentQueue`: experiments a check ran, saved by the engine with the check's finding.
- `seeded`: what a computation draws at random, independent of what ran before it.
- `RunCache`: values computed once per run (tensors of a sample, probe data, trained copies),
  each under a `CacheKey[T]` that carries the value's type, so readers get a typed value back.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from detective.core.session import Experiment

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
    """Per-run memoisation: `get(key, compute)` computes once, then returns the same object.

    `compute` runs with the random generators seeded from the key (see `seeded`), so a cached
    value (a sample drawn through random augmentation, a short training run) is the same
    whichever check asked for it first.
    """

    def __init__(self, seed: int = 0) -> None:
        self._values: dict[CacheKey[Any], Any] = {}
        self._lock = threading.RLock()
        self._seed = seed

    def get(self, key: CacheKey[T], compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                return cast(T, self._values[key])
        with seeded(stable_seed(self._seed, key.name, key.parts)):
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


def stable_seed(*parts: object) -> int:
    """A seed from `parts` that is the same in every process (unlike hash())."""
    import hashlib

    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "little")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with python, numpy and torch seeded to `seed`, restoring their global state
    after: what the block draws does not depend on what ran before, and what runs after does not
    depend on whether the block ran (a cache hit or miss)."""
    import random

    import numpy as np

    py_state, np_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = torch.random.get_rng_state() if torch is not None else None
    random.seed(seed)
    np.random.seed(seed)
    if torch is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if torch is not None and torch_state is not None:
            torch.random.set_rng_state(torch_state)
