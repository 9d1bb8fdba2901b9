"""Declared, typed measurements shared between checks, resolved on demand by providers.

A provider computes one frozen-dataclass measurement (slice statistics, the train-mode
evaluation, label-issue scores, ...) from the RunContext. A check declares what it reads,
`uses = (SliceStats,)`, and reads it with `ctx.shared(SliceStats, progress)`. The value never
depends on which checks ran before: the first reader computes it, and when the engine attached a
session it is stored there (serde round trip) under the case fingerprint, the run options that
change it and the provider's settings, so `resume`, `--only` and the TUI's "run selected" read
the same evidence. The engine records which providers each finding used.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from detective.core.serde import from_jsonable, to_jsonable

if TYPE_CHECKING:
    from detective.core.context import RunContext
    from detective.core.ports import KeyValueStore
    from detective.core.progress import Progress

S = TypeVar("S")


@dataclass(frozen=True)
class Provider(Generic[S]):
    name: str  # stable id, stored with the findings that used it
    type: type[S]
    compute: Callable[[RunContext, Progress], S]
    settings: Any = None  # a frozen dataclass of what (how much) it measures; part of the key
    version: int = 1  # bump when the computation changes: stored values are then recomputed


_PROVIDERS: dict[type, Provider[Any]] = {}


class ProviderError(Exception):
    pass


def provides(
    tp: type[S], name: str, settings: Any = None, version: int = 1
) -> Callable[[Callable[[RunContext, Progress], S]], Callable[[RunContext, Progress], S]]:
    """Decorator registering `compute(ctx, progress) -> tp` as the provider of `tp`."""

    def register(compute: Callable[[RunContext, Progress], S]) -> Callable[..., S]:
        known = _PROVIDERS.get(tp)
        if known is not None and known.name != name:
            raise ProviderError(f"{tp.__name__} already has the provider {known.name!r}")
        _PROVIDERS[tp] = Provider(name, tp, compute, settings, version)
        return compute

    return register


def provider_of(tp: type[S]) -> Provider[S]:
    if tp not in _PROVIDERS:
        import detective.analysis.measures  # noqa: F401 - registers the built-in providers

    if tp not in _PROVIDERS:
        raise ProviderError(f"no provider computes {tp.__name__}")
    return cast(Provider[S], _PROVIDERS[tp])


def all_providers() -> dict[str, Provider[Any]]:
    import detective.analysis.measures  # noqa: F401

    return {p.name: p for p in _PROVIDERS.values()}


def _digest(value: Any) -> str:
    text = json.dumps(to_jsonable(value), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class SharedMeasurements:
    """The per-run resolver: memory, else the attached store, else the provider computes."""

    store: KeyValueStore | None = None
    scope: str = ""  # the case fingerprint the store's entries belong to
    reuse_stored: bool = True
    _values: dict[type, Any] = field(default_factory=dict)
    _used: list[str] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def attach(self, store: KeyValueStore | None, scope: str, reuse_stored: bool = True) -> None:
        with self._lock:
            self.store, self.scope, self.reuse_stored = store, scope, reuse_stored

    def begin(self) -> None:
        """Start recording the providers the next check uses."""
        with self._lock:
            self._used = []

    def used(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._used)

    def key(self, provider: Provider[Any], ctx: RunContext) -> str:
        o = ctx.options
        # The options that change what a provider sees; device and workers do not.
        inputs = (o.sample, o.seed, o.reported_metric, o.logs, provider.settings)
        return f"shared:{provider.name}:v{provider.version}:{self.scope}:{_digest(inputs)}"

    def get(self, tp: type[S], ctx: RunContext, progress: Progress | None = None) -> S:
        provider = provider_of(tp)
        with self._lock:
            if provider.name not in self._used:
                self._used.append(provider.name)
            if tp in self._values:
                return cast(S, self._values[tp])
        value = self._load(provider, ctx)
        if value is None:
            from detective.core.ports import seeded, stable_seed
            from detective.core.progress import Progress

            with seeded(stable_seed(ctx.options.seed, provider.name)):
                computed = provider.compute(ctx, progress or Progress())
            text = json.dumps(to_jsonable(computed))
            # Readers always get the round-tripped value, so a fresh and a stored measurement
            # are the same evidence to the bit.
            value = cast(S, from_jsonable(provider.type, json.loads(text)))
            if self.store is not None and self.scope:
                self.store.kv_set(self.key(provider, ctx), text)
        with self._lock:
            return cast(S, self._values.setdefault(tp, value))

    def _load(self, provider: Provider[S], ctx: RunContext) -> S | None:
        if self.store is None or not self.scope or not self.reuse_stored:
            return None
        text = self.store.kv_get(self.key(provider, ctx))
        if text is None:
            return None
        try:
            return cast(S, from_jsonable(provider.type, json.loads(text)))
        except (TypeError, ValueError, KeyError):  # an older layout: measure again
            return None
