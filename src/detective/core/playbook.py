"""Playbooks: which checks run, in which stage order, re-prioritised by the user's symptom.

File format (`playbooks/*.toml`)::

    name = "vision-classification"
    [[stages]]
    id = "pipeline"                      # one of detective.core.hypotheses.Stage
    checks = ["data_health", "normalization_mismatch"]
    [symptoms.train_high_val_low]
    stage_order = ["intake", "pipeline", ...]   # stages not named keep their order, after these
    first = ["preprocessing_parity"]            # checks moved to the front of their stage
    [after]                                     # check -> checks that must run before it
    label_issues = ["collect_predictions"]
    [checks.label_issues.thresholds]            # what counts (re-judging honours it)
    strong_rate = 0.1
    [checks.capacity.settings]                  # how much to measure
    val_samples = 300

Validation errors name the file and the line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path

from detective.core.hypotheses import Stage


class Symptom(StrEnum):
    LOW_TRAIN_ACC = "low_train_acc"
    TRAIN_HIGH_VAL_LOW = "train_high_val_low"
    BOTH_LOW = "both_low"
    GOOD_OFFLINE_BAD_IN_PRODUCTION = "good_offline_bad_in_production"
    ONE_CLASS_BAD = "one_class_bad"


SYMPTOM_TEXT = {
    Symptom.LOW_TRAIN_ACC: "training accuracy itself is low",
    Symptom.TRAIN_HIGH_VAL_LOW: "training accuracy is high, validation accuracy is low",
    Symptom.BOTH_LOW: "training and validation accuracy are both low",
    Symptom.GOOD_OFFLINE_BAD_IN_PRODUCTION: "good offline numbers, bad results in production",
    Symptom.ONE_CLASS_BAD: "one class (or a few) is much worse than the others",
}

DEFAULT_PLAYBOOK = "vision-classification"


class PlaybookError(Exception):
    pass


@dataclass(frozen=True)
class StageSpec:
    id: Stage
    checks: tuple[str, ...]


@dataclass(frozen=True)
class SymptomSpec:
    stage_order: tuple[Stage, ...]
    first: tuple[str, ...]


@dataclass(frozen=True)
class CheckConfig:
    """A playbook's overrides of one check's thresholds and settings (field name -> value)."""

    thresholds: tuple[tuple[str, object], ...] = ()
    settings: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Playbook:
    name: str
    path: Path
    description: str
    stages: tuple[StageSpec, ...]
    symptoms: dict[Symptom, SymptomSpec]
    after: dict[str, tuple[str, ...]]
    configs: dict[str, CheckConfig] = field(default_factory=dict)

    def settings_for(self, check_id: str) -> CheckConfig | None:
        return self.configs.get(check_id)

    @property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(c for s in self.stages for c in s.checks)

    def plan(self, symptom: str | None = None) -> list[tuple[Stage, str]]:
        """The checks to run, in order, for a symptom (None: the default order)."""
        stages = {s.id: s for s in self.stages}
        order = [s.id for s in self.stages]
        first: tuple[str, ...] = ()
        if symptom is not None:
            spec = self.symptoms.get(Symptom(symptom))
            if spec is not None:
                named = [s for s in spec.stage_order if s in stages]
                order = named + [s for s in order if s not in named]
                first = spec.first
        planned: list[tuple[Stage, str]] = []
        for sid in order:
            checks = list(stages[sid].checks)
            checks.sort(key=lambda c: (c not in first, first.index(c) if c in first else 0))
            planned.extend((sid, c) for c in checks)
        return _respect_dependencies(planned, self.after)


def _respect_dependencies(
    planned: list[tuple[Stage, str]], after: dict[str, tuple[str, ...]]
) -> list[tuple[Stage, str]]:
    """Stable topological order: a check moves just after the last check it depends on."""
    result: list[tuple[Stage, str]] = []
    pending = list(planned)
    placed: set[str] = set()
    present = {c for _, c in planned}
    while pending:
        for i, (stage, check) in enumerate(pending):
            deps = [d for d in after.get(check, ()) if d in present]
            if all(d in placed for d in deps):
                result.append((stage, check))
                placed.add(check)
                del pending[i]
                break
        else:  # validated on load; unreachable for a valid playbook
            raise PlaybookError(f"dependency cycle among {[c for _, c in pending]}")
    return result


def _line_of(text: str, needle: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    return 0


def load_playbook(path: str | Path, known_checks: set[str] | None = None) -> Playbook:
    """Load and validate a playbook file (`known_checks`: ids of registered checks)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PlaybookError(f"cannot read playbook {path}: {e}") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlaybookError(f"{path}: {e}") from e

    def fail(message: str, needle: str) -> PlaybookError:
        line = _line_of(text, needle)
        return PlaybookError(f"{path}:{line}: {message}" if line else f"{path}: {message}")

    stages: list[StageSpec] = []
    seen: dict[str, str] = {}
    valid_stages = {s.value for s in Stage}
    for raw in data.get("stages", []):
        sid = raw.get("id")
        if sid not in valid_stages:
            raise fail(
                f"unknown stage {sid!r} (stages: {', '.join(sorted(valid_stages))})", f'"{sid}"'
            )
        checks = tuple(raw.get("checks", []))
        for c in checks:
            if known_checks is not None and c not in known_checks:
                raise fail(f"unknown check id {c!r} in stage {sid!r}", f'"{c}"')
            if c in seen:
                raise fail(f"check {c!r} appears twice (stages {seen[c]!r} and {sid!r})", f'"{c}"')
            seen[c] = sid
        stages.append(StageSpec(Stage(sid), checks))
    if not stages:
        raise PlaybookError(f"{path}: a playbook needs at least one [[stages]] entry")

    symptoms: dict[Symptom, SymptomSpec] = {}
    valid_symptoms = {s.value for s in Symptom}
    for name, raw in data.get("symptoms", {}).items():
        if name not in valid_symptoms:
            raise fail(
                f"unknown symptom {name!r} (symptoms: {', '.join(sorted(valid_symptoms))})",
                f"symptoms.{name}",
            )
        order = raw.get("stage_order", [])
        for s in order:
            if s not in valid_stages:
                raise fail(f"unknown stage {s!r} in symptom {name!r}", f'"{s}"')
        first = tuple(raw.get("first", []))
        for c in first:
            if c not in seen:
                raise fail(f"symptom {name!r} puts {c!r} first, but no stage runs it", f'"{c}"')
        symptoms[Symptom(name)] = SymptomSpec(tuple(Stage(s) for s in order), first)

    after: dict[str, tuple[str, ...]] = {}
    for check, deps in data.get("after", {}).items():
        for c in (check, *deps):
            if c not in seen:
                raise fail(f"[after] names {c!r}, which no stage runs", c)
        after[check] = tuple(deps)
    cycle = _find_cycle(after)
    if cycle:
        raise fail(f"dependency cycle: {' -> '.join(cycle)}", cycle[0])

    configs = _check_configs(data.get("checks", {}), seen, known_checks is not None, fail)
    return Playbook(
        name=str(data.get("name", path.stem)),
        path=path,
        description=str(data.get("description", "")),
        stages=tuple(stages),
        symptoms=symptoms,
        after=after,
        configs=configs,
    )


def _check_configs(
    raw: object,
    seen: dict[str, str],
    validate: bool,
    fail: Callable[[str, str], PlaybookError],
) -> dict[str, CheckConfig]:
    """`[checks.<id>.thresholds]` / `[checks.<id>.settings]` tables, validated against the
    check's dataclasses when the registry is at hand."""
    if not isinstance(raw, dict):
        raise fail("[checks] must be a table of check ids", "[checks")
    out = {}
    for check_id, tables in raw.items():
        if check_id not in seen:
            raise fail(f"[checks.{check_id}] names a check no stage runs", f"checks.{check_id}")
        if not isinstance(tables, dict) or set(tables) - {"thresholds", "settings"}:
            raise fail(
                f"[checks.{check_id}] may hold only [thresholds] and [settings] tables",
                f"checks.{check_id}",
            )
        config = CheckConfig(
            tuple(sorted(tables.get("thresholds", {}).items())),
            tuple(sorted(tables.get("settings", {}).items())),
        )
        if validate:
            from detective.core.overrides import OverrideError
            from detective.core.registry import get_check

            try:
                get_check(check_id).configured(config)
            except OverrideError as e:
                raise fail(str(e), f"checks.{check_id}") from e
        out[check_id] = config
    return out


def _find_cycle(after: dict[str, tuple[str, ...]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in after.get(node, ()):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in after:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def builtin_playbook_path(name: str = DEFAULT_PLAYBOOK) -> Path:
    return Path(str(resources.files("detective") / "core" / "playbooks" / f"{name}.toml"))


def resolve_playbook(name_or_path: str | None, known_checks: set[str] | None = None) -> Playbook:
    """A path to a TOML file, or the name of a built-in playbook."""
    target = name_or_path or DEFAULT_PLAYBOOK
    candidate = Path(target)
    if candidate.suffix == ".toml" or candidate.exists():
        return load_playbook(candidate, known_checks)
    path = builtin_playbook_path(target)
    if not path.is_file():
        raise PlaybookError(f"no playbook named {target!r} and no such file")
    return load_playbook(path, known_checks)
