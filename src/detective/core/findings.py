"""Typed results of a check: the verdict, its evidence and the hypotheses it moved."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

Cell = str | float | int | bool | None


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"


class Direction(StrEnum):
    SUPPORTS = "supports"
    REFUTES = "refutes"


class Strength(StrEnum):
    """How much a piece of evidence should move a hypothesis.

    STRONG is reserved for evidence an expert would act on; only STRONG support can make a
    hypothesis `supported`.
    """

    WEAK = "weak"
    MODERATE = "moderate"
    STRONG = "strong"

    @property
    def weight(self) -> float:
        return {"weak": 0.25, "moderate": 0.5, "strong": 1.0}[self.value]


@dataclass(frozen=True)
class Metric:
    """A number in a finding. `name` is the human label (free to change); `key` is the stable
    id that code (the model card, comparisons) finds it by."""

    name: str
    value: float
    unit: str = ""
    note: str = ""
    key: str = ""


@dataclass(frozen=True)
class Table:
    name: str  # the human title
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    key: str = ""  # the stable id code finds it by


class ArtifactKind(StrEnum):
    """What an artifact shows, so readers never guess it from a file name or caption."""

    PLOT = "plot"  # a chart of numbers (curves, histograms, heatmaps)
    GALLERY = "gallery"  # a grid of example images
    OVERLAY = "overlay"  # saliency / attention drawn over example images


@dataclass(frozen=True)
class Artifact:
    """A file the check wrote; `path` is relative to the session's artifact folder."""

    name: str
    path: str
    caption: str = ""
    media_type: str = "image/png"
    kind: ArtifactKind = ArtifactKind.PLOT


class FailureKind(StrEnum):
    """What a reviewable failure is: one item of a split, or a confusion between two classes."""

    IMAGE = "image"  # target "<split>:<index>"
    PAIR = "pair"  # target "<true>→<pred>" (class names)


@dataclass(frozen=True)
class FailureRef:
    """A failure a check names, typed so that a UI lists and reviews it as what it is (never
    guessed from table captions). `artifact` is the image that shows it, relative to the
    session's artifact folder."""

    kind: FailureKind
    target: str
    true: str = ""
    pred: str = ""
    confidence: float | None = None
    count: int = 1
    artifact: str = ""
    caption: str = ""


def image_ref(
    split: str, index: int, true: str, pred: str, confidence: float | None, artifact: str = ""
) -> FailureRef:
    return FailureRef(
        FailureKind.IMAGE, f"{split}:{index}", true, pred, confidence, artifact=artifact
    )


def pair_ref(true: str, pred: str, count: int, artifact: str = "") -> FailureRef:
    return FailureRef(FailureKind.PAIR, f"{true}→{pred}", true, pred, None, count, artifact)


@dataclass(frozen=True)
class Effect:
    hypothesis: str
    direction: Direction
    strength: Strength
    reason: str


class Side(StrEnum):
    """Where an intervention changes things."""

    EVAL = "eval"  # how val is evaluated; the model is not retrained (seconds)
    TRAIN = "train"  # the recipe; short paired re-training runs over seeds
    CHECK = "check"  # an intervention a check runs itself (e.g. the context swap)


class Moved(StrEnum):
    """What an intervention did to the metric, judged statistically."""

    RECOVERS = "recovers"  # significant, in the direction the hypothesis predicts
    NO_EFFECT = "no effect"
    OPPOSITE = "opposite"  # significant, against the prediction
    # Measured but unable to speak either way (a run the budget cut short; short runs too
    # undertrained to compare with the user's model): neither supports nor refutes.
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ConsequenceMarker:
    """A consequence's own measurement in a retraining's baseline and changed runs: whether the
    change removed what a consequence of its cause looks like (dead units after an LR fix)."""

    hypothesis: str  # the consequence ("dead_units")
    measure: str  # "share of ReLU units that never fire on val"
    before: float  # baseline short runs (mean over seeds)
    after: float  # changed runs


@dataclass(frozen=True)
class InterventionOutcome:
    """A measured intervention: what was changed to remove a suspected cause and how the metric
    moved. The ledger supports a hypothesis only through an outcome that RECOVERS."""

    hypothesis: str
    label: str  # replayable: `detective experiment CASE --set <label>`
    side: Side
    change: str  # what was changed, as a phrase: "evaluating with the train transform"
    metric: str  # "val_acc"
    before: float
    after: float
    ci_low: float  # 95 % CI of after − before
    ci_high: float
    p_value: float
    test: str  # the statistical test used
    effect: Moved
    predicted: int = 1  # +1: the metric rises when the cause is removed; -1: it falls
    n: int = 0  # items (eval side) or val items per seed (train side)
    seeds: int = 1
    gap_share: float | None = None  # share of the symptom's gap the change recovers
    cost_s: float = 0.0
    notes: tuple[str, ...] = ()
    markers: tuple[ConsequenceMarker, ...] = ()
    # Consequences whose marker the change removed (judged with thresholds): the ledger ranks
    # this cause above them whatever share of the gap it recovers.
    removes: tuple[str, ...] = ()

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def sentence(self) -> str:
        """"evaluating with the train transform moves val accuracy 26.3 % → 91.4 % (…)"."""
        p = "p < 1e-6" if self.p_value < 1e-6 else f"p = {self.p_value:.2g}"
        over = f" over {self.seeds} seeds" if self.seeds > 1 else ""
        share = (
            f"; recovers {self.gap_share:.0%} of the gap"
            if self.gap_share is not None
            else f": {self.effect.value}"
        )
        name = "val accuracy" if self.metric == "val_acc" else self.metric
        return (
            f"{self.change} moves {name} {self.before:.1%} → {self.after:.1%} "
            f"(Δ {self.delta * 100:+.1f} points, 95 % CI {self.ci_low * 100:+.1f} … "
            f"{self.ci_high * 100:+.1f}{over}, {p}){share}"
        )


@dataclass(frozen=True)
class Finding:
    check_id: str
    verdict: Verdict
    summary: str
    metrics: tuple[Metric, ...] = ()
    tables: tuple[Table, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    effects: tuple[Effect, ...] = ()
    next_step: str = ""
    duration_s: float = 0.0
    error: str = ""  # traceback text when verdict is ERROR
    notes: tuple[str, ...] = field(default_factory=tuple)
    uses: tuple[str, ...] = ()  # the shared measurements (providers) the check read
    failures: tuple[FailureRef, ...] = ()  # reviewable failures it names (additive, schema 1.x)
    interventions: tuple[InterventionOutcome, ...] = ()  # measured interventions (additive)

    def metric(self, name: str) -> float:
        for m in self.metrics:
            if m.name == name:
                return m.value
        raise KeyError(name)

    def metric_by_key(self, key: str) -> Metric | None:
        return next((m for m in self.metrics if m.key == key), None)

    def table_by_key(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)

    def effect_on(self, hypothesis: str) -> Effect | None:
        return next((e for e in self.effects if e.hypothesis == hypothesis), None)


@dataclass(frozen=True)
class Concern:
    """One part of a judgement: the effects it has and the facts behind them. A judge that
    weighs several concerns assesses each (with its thresholds), then presents them together."""

    effects: tuple[Effect, ...] = ()
    problems: tuple[str, ...] = ()  # one sentence per problem found, for the summary
    metrics: tuple[Metric, ...] = ()
    tables: tuple[Table, ...] = ()
    next_steps: tuple[str, ...] = ()


def verdict_of(effects: Iterable[Effect], *, concern: bool = False) -> Verdict:
    """The one verdict rule: FAIL iff an effect strongly supports a hypothesis; WARN when one
    supports a hypothesis less strongly, or on a `concern` that moves no hypothesis (something
    worth a look); PASS otherwise."""
    effects = tuple(effects)
    if any(e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG for e in effects):
        return Verdict.FAIL
    if concern or any(e.direction is Direction.SUPPORTS for e in effects):
        return Verdict.WARN
    return Verdict.PASS


def supports(hypothesis: str, strength: Strength, reason: str) -> Effect:
    return Effect(hypothesis, Direction.SUPPORTS, strength, reason)


def refutes(hypothesis: str, strength: Strength, reason: str) -> Effect:
    return Effect(hypothesis, Direction.REFUTES, strength, reason)
