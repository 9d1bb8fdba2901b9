"""Checks as plug-ins: one registry, declared identity, measurement separate from judgement.

A check declares its id, stage, the case hooks it needs, the hypotheses it can move and the
shared measurements it reads (`uses`, see `detective.core.shared`). `measure` does the expensive
work, reads only the check's `settings` (how much to measure) and returns an unfiltered,
JSON-friendly dataclass; `judge` is pure and turns a measurement into a Finding with the check's
`thresholds` (what counts), so a stored session can be re-judged, with other thresholds, without
the model or a GPU.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from detective.core.findings import Effect, Finding, verdict_of
from detective.core.hypotheses import VOCABULARY, Stage

if TYPE_CHECKING:
    from detective.core.budget import CaseSize, Cost, Knob
    from detective.core.context import RunContext
    from detective.core.playbook import CheckConfig
    from detective.core.progress import Progress


M = TypeVar("M")


@dataclass(frozen=True)
class NoThresholds:
    pass


@dataclass(frozen=True)
class NoSettings:
    pass


class Check(ABC, Generic[M]):
    id: ClassVar[str]
    title: ClassVar[str]
    stage: ClassVar[Stage]
    description: ClassVar[str]
    #: Case hooks / inputs the check cannot run without: "model", "datasets", "raw_datasets",
    #: "transforms", "NORMALIZATION", "split:test", "reported_metric", "logs".
    needs: ClassVar[tuple[str, ...]] = ("model", "datasets")
    hypotheses: ClassVar[tuple[str, ...]] = ()
    measurement_type: ClassVar[type]
    thresholds_type: ClassVar[type] = NoThresholds  # read by judge only
    settings_type: ClassVar[type] = NoSettings  # read by measure only
    #: Shared measurement types (`detective.analysis.measures`) the check reads with `ctx.shared`.
    uses: ClassVar[tuple[type, ...]] = ()
    #: The check reads the findings of this run so far (`ctx.prior_findings`): the judgement.
    reads_findings: ClassVar[bool] = False
    #: False for checks that measure only the recipe (fresh_model, datasets, train settings):
    #: they still run when the trained model's output is unusable (NaN), and show why.
    needs_trained_model: ClassVar[bool] = True
    #: Settings `--budget` may shrink (sample sizes, short-run lengths), with their floors.
    shrinkable: ClassVar[tuple[Knob, ...]] = ()

    def __init__(self, thresholds: Any = None, settings: Any = None) -> None:
        self.thresholds = thresholds if thresholds is not None else self.thresholds_type()
        self.settings = settings if settings is not None else self.settings_type()

    @classmethod
    def configured(cls, config: CheckConfig | None) -> Check[Any]:
        """An instance with a playbook's (or the command line's) overrides applied."""
        from detective.core.overrides import apply

        if config is None:
            return cls()
        return cls(
            apply(cls.thresholds_type(), dict(config.thresholds), f"{cls.id}.thresholds"),
            apply(cls.settings_type(), dict(config.settings), f"{cls.id}.settings"),
        )

    def cost(self, size: CaseSize) -> Cost:
        """What `measure` costs on a case of this size under `self.settings`, in the units the
        engine measures (`detective.core.budget`). Default: a forward pass over --sample val
        items, the collection pass most checks share (counted once per run)."""
        from detective.core.budget import Cost, SharedCost

        n = min(size.sample, size.val_n)
        return Cost(shared=(SharedCost(f"collection@{n}", forward_items=n),))

    @abstractmethod
    def measure(self, ctx: RunContext, progress: Progress) -> M: ...

    @abstractmethod
    def judge(self, measurement: M) -> Finding: ...

    def finding(
        self,
        summary: str,
        effects: Iterable[Effect] = (),
        *,
        concern: bool = False,
        **parts: Any,
    ) -> Finding:
        """The one finding builder: the verdict follows from the effects by the one rule
        (`verdict_of`: FAIL iff a strong supporting effect; `concern` makes a WARN)."""
        effects = tuple(effects)
        return Finding(
            self.id, verdict_of(effects, concern=concern), summary, effects=effects, **parts
        )

    def run(self, ctx: RunContext, progress: Progress) -> tuple[M, Finding]:
        measurement = self.measure(ctx, progress)
        return measurement, self.judge(measurement)


_REGISTRY: dict[str, type[Check[Any]]] = {}


class RegistryError(Exception):
    pass


def register(cls: type[Check[Any]]) -> type[Check[Any]]:
    """Class decorator adding a check to the registry, validating its declaration."""
    for attr in ("id", "title", "stage", "description", "measurement_type"):
        if not getattr(cls, attr, None):
            raise RegistryError(f"check {cls.__name__} must declare {attr}")
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise RegistryError(f"two checks share the id {cls.id!r}")
    unknown = [h for h in cls.hypotheses if h not in VOCABULARY]
    if unknown:
        raise RegistryError(f"check {cls.id} names unknown hypotheses {unknown}")
    _REGISTRY[cls.id] = cls
    return cls


_loaded = False


def all_checks() -> dict[str, type[Check[Any]]]:
    """Every registered check, importing each module of `detective.checks` once."""
    global _loaded
    if not _loaded:
        import detective.checks as pkg

        for info in sorted(
            pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."), key=lambda i: i.name
        ):
            importlib.import_module(info.name)
        _loaded = True
    return dict(_REGISTRY)


def get_check(check_id: str) -> type[Check[Any]]:
    checks = all_checks()
    if check_id not in checks:
        raise KeyError(f"unknown check {check_id!r}")
    return checks[check_id]
