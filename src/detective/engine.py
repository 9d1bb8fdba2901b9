"""Running a playbook: one iterator of typed events, consumed by the headless CLI and the TUI.

Checks run one at a time in a worker thread; the iterator yields their progress as it happens.
Each finished finding is committed before the next check starts, so a killed process loses at most
the check in flight, and `resume` skips checks already done for the same case and weights.
Closing the iterator early (or Ctrl-C in the consumer) cancels the running check cooperatively.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from detective.case import CaseError
from detective.context import RunContext
from detective.findings import Finding, Verdict
from detective.playbook import CheckConfig, Playbook
from detective.progress import Cancelled, Progress, ProgressUpdate
from detective.registry import Check, all_checks
from detective.session import Session


class RunStatus(StrEnum):
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"  # the run itself could not proceed (the case cannot be used)


@dataclass(frozen=True)
class RunStarted:
    session: str
    planned: tuple[str, ...]
    already_done: tuple[str, ...]
    fingerprint: str


@dataclass(frozen=True)
class CheckStarted:
    check_id: str
    title: str
    stage: str
    index: int
    total: int


@dataclass(frozen=True)
class CheckProgress:
    check_id: str
    fraction: float
    message: str
    elapsed_s: float


@dataclass(frozen=True)
class CheckLog:
    check_id: str
    message: str


@dataclass(frozen=True)
class CheckFinished:
    check_id: str
    finding: Finding
    finding_id: int


@dataclass(frozen=True)
class CheckSkipped:
    check_id: str
    reason: str


@dataclass(frozen=True)
class RunFinished:
    status: RunStatus
    message: str = ""
    errors: int = 0


Event = (
    RunStarted
    | CheckStarted
    | CheckProgress
    | CheckLog
    | CheckFinished
    | CheckSkipped
    | RunFinished
)

BLOCKING_CHECKS = ("case_contract",)  # when these fail, the rest cannot give meaningful evidence


def run_one(
    check_cls: type[Check[Any]],
    ctx: RunContext,
    progress: Progress,
    config: CheckConfig | None = None,
) -> tuple[Any, Finding]:
    """Run a single check, turning missing needs and exceptions into findings (never raising,
    except `Cancelled`). `config`: the playbook's settings and thresholds for it. The finding
    records the shared measurements (providers) the check read."""
    from dataclasses import replace

    from detective.ports import seeded, stable_seed

    ctx.measurements.begin()
    # Each check draws from generators seeded for it: its evidence does not depend on which
    # checks ran before it (--only, resume and the full playbook agree).
    with seeded(stable_seed(ctx.options.seed, check_cls.id)):
        measurement, finding = _run_one(check_cls, ctx, progress, config)
    return measurement, replace(finding, uses=ctx.measurements.used())


def _run_one(
    check_cls: type[Check[Any]],
    ctx: RunContext,
    progress: Progress,
    config: CheckConfig | None,
) -> tuple[Any, Finding]:
    start = time.monotonic()
    missing = ctx.missing(check_cls.needs)
    if missing:
        return None, Finding(
            check_cls.id, Verdict.NOT_APPLICABLE, f"not applicable: needs {', '.join(missing)}"
        )
    try:
        check = check_cls.configured(config) if config is not None else check_cls()
        measurement, finding = check.run(ctx, progress)
    except Cancelled:
        raise
    except CaseError as e:
        finding = Finding(check_cls.id, Verdict.ERROR, e.message, error=e.details or e.message)
        measurement = None
    except Exception as e:  # a crashed check is an error finding, never evidence
        finding = Finding(
            check_cls.id,
            Verdict.ERROR,
            f"the check crashed: {type(e).__name__}: {e}",
            error="".join(traceback.format_exception(e)),
        )
        measurement = None
    from dataclasses import replace

    return measurement, replace(finding, duration_s=round(time.monotonic() - start, 3))


def fingerprint_of(ctx: RunContext) -> str:
    """Case file hash + model weights hash: findings are valid for exactly this pair."""
    try:
        from detective.torchutil import model_hash

        return f"{ctx.case.file_hash}-{model_hash(ctx.model())}"
    except CaseError:
        return f"{ctx.case.file_hash}-nomodel"


def run_playbook(
    session: Session,
    playbook: Playbook,
    ctx: RunContext,
    *,
    cancel: threading.Event | None = None,
    only: Sequence[str] | None = None,
    rerun: bool = False,
) -> Iterator[Event]:
    cancel = cancel or threading.Event()
    events: queue.Queue[Event | None] = queue.Queue()
    worker = threading.Thread(
        target=_execute,
        args=(session, playbook, ctx, cancel, only, rerun, events),
        name="detective-run",
        daemon=True,
    )
    worker.start()
    try:
        while True:
            try:
                event = events.get(timeout=0.1)
            except queue.Empty:
                if not worker.is_alive() and events.empty():
                    return
                continue
            if event is None:
                return
            yield event
    finally:
        if worker.is_alive():
            cancel.set()
            worker.join(timeout=30)


def _execute(
    session: Session,
    playbook: Playbook,
    ctx: RunContext,
    cancel: threading.Event,
    only: Sequence[str] | None,
    rerun: bool,
    events: queue.Queue[Event | None],
) -> None:
    try:
        _execute_inner(session, playbook, ctx, cancel, only, rerun, events)
    except Exception as e:  # never leave the consumer waiting
        events.put(RunFinished(RunStatus.FAILED, f"{type(e).__name__}: {e}"))
    finally:
        events.put(None)


def _execute_inner(
    session: Session,
    playbook: Playbook,
    ctx: RunContext,
    cancel: threading.Event,
    only: Sequence[str] | None,
    rerun: bool,
    events: queue.Queue[Event | None],
) -> None:
    registry = all_checks()
    plan = playbook.plan(ctx.options.symptom)
    if only:
        plan = [(s, c) for s, c in plan if c in only]
    fingerprint = fingerprint_of(ctx)
    # Checks cache derived text (LLM summaries) in the session's key/value store, and shared
    # measurements live there under this fingerprint (recomputed on --rerun).
    ctx.kv = session
    ctx.measurements.attach(session, fingerprint, reuse_stored=not rerun)
    done = set() if rerun else session.done_checks(fingerprint)
    planned = tuple(c for _, c in plan)
    events.put(
        RunStarted(session.name, planned, tuple(c for c in planned if c in done), fingerprint)
    )
    errors = 0
    blocked = ""
    for index, (stage, check_id) in enumerate(plan):
        if cancel.is_set():
            events.put(RunFinished(RunStatus.INTERRUPTED, "stopped before " + check_id, errors))
            return
        if check_id in done:
            events.put(CheckSkipped(check_id, "already done in this session"))
            continue
        check_cls = registry[check_id]
        if blocked:
            events.put(CheckSkipped(check_id, blocked))
            continue
        events.put(CheckStarted(check_id, check_cls.title, stage.value, index, len(plan)))

        def on_update(u: ProgressUpdate, cid: str = check_id) -> None:
            events.put(CheckProgress(cid, u.fraction, u.message, u.elapsed_s))

        def on_log(message: str, cid: str = check_id) -> None:
            events.put(CheckLog(cid, message))

        progress = Progress(on_update, cancel, on_log)
        try:
            config = playbook.settings_for(check_id)
            measurement, finding = run_one(check_cls, ctx, progress, config)
        except Cancelled:
            ctx.experiments.drain()  # a cancelled check's experiments are not evidence
            events.put(RunFinished(RunStatus.INTERRUPTED, f"cancelled during {check_id}", errors))
            return
        finding_id = session.save_finding(finding, fingerprint, measurement)
        from detective.experiments import flush  # experiments the check ran, linked to it

        flush(session, ctx, finding_id)
        errors += finding.verdict is Verdict.ERROR
        events.put(CheckFinished(check_id, finding, finding_id))
        if check_id in BLOCKING_CHECKS and finding.verdict in (Verdict.FAIL, Verdict.ERROR):
            blocked = f"blocked: {check_id} failed ({finding.summary})"
    events.put(RunFinished(RunStatus.COMPLETED, "", errors))
