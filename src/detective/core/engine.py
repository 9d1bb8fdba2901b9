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

from detective.core.budget import RunPlan
from detective.core.case import CaseError, HookTimeout, user_frame, where
from detective.core.context import RunContext
from detective.core.findings import Finding, Verdict
from detective.core.hypotheses import Stage
from detective.core.playbook import CheckConfig, Playbook
from detective.core.progress import Cancelled, Progress, ProgressUpdate
from detective.core.registry import Check, all_checks
from detective.core.session import Session


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
    device: str = ""  # resolved: "cpu", "cuda:0 (NVIDIA A100)"


@dataclass(frozen=True)
class RunPlanned:
    """What the checks still to run will cost on this device, measured before the first one;
    with `--budget`, what was shortened to fit (see detective.core.budget)."""

    plan: RunPlan


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
class HookWaiting:
    """A hook of the user's case has not returned after a few seconds (it may be hung)."""

    hook: str
    check_id: str  # "" while the run is starting (the model is loaded for the fingerprint)


@dataclass(frozen=True)
class RunFinished:
    status: RunStatus
    message: str = ""
    errors: int = 0
    # Of `errors`, those raised by the user's code (hooks, forward, data): the case's problem.
    user_errors: int = 0
    blocked: str = ""  # why nothing past the blocking checks could be measured, if so


Event = (
    RunStarted
    | RunPlanned
    | CheckStarted
    | CheckProgress
    | CheckLog
    | CheckFinished
    | CheckSkipped
    | HookWaiting
    | RunFinished
)

JUDGEMENT_CHECK = "interventions"  # runs last, on the findings of the checks before it
BLOCKING_CHECKS = ("case_contract",)  # when these fail, the rest cannot give meaningful evidence
# A blocking finding whose only problem is the trained model's output (NaN/Inf) carries this
# metric: checks that measure the recipe alone (`needs_trained_model = False`) still run.
MODEL_OUTPUT_ONLY = "contract.model_output_only"


def run_one(
    check_cls: type[Check[Any]],
    ctx: RunContext,
    progress: Progress,
    config: CheckConfig | None = None,
) -> tuple[Any, Finding]:
    """Run a single check, turning missing needs and exceptions into findings (never raising,
    except `Cancelled` and `HookTimeout`). `config`: the playbook's settings and thresholds for
    it. The finding records the shared measurements (providers) the check read."""
    measurement, finding, _ = _run_check(check_cls, ctx, progress, config)
    return measurement, finding


def _run_check(
    check_cls: type[Check[Any]],
    ctx: RunContext,
    progress: Progress,
    config: CheckConfig | None,
) -> tuple[Any, Finding, bool]:
    """`run_one`, also saying whether an error came from the user's code (hook, forward, data)."""
    from dataclasses import replace

    from detective.core.ports import seeded, stable_seed

    ctx.measurements.begin()
    # Each check draws from generators seeded for it: its evidence does not depend on which
    # checks ran before it (--only, resume and the full playbook agree).
    with seeded(stable_seed(ctx.options.seed, check_cls.id)):
        measurement, finding, user = _run_one(check_cls, ctx, progress, config)
    return measurement, replace(finding, uses=ctx.measurements.used()), user


def _run_one(
    check_cls: type[Check[Any]],
    ctx: RunContext,
    progress: Progress,
    config: CheckConfig | None,
) -> tuple[Any, Finding, bool]:
    from dataclasses import replace

    start = time.monotonic()
    missing = ctx.missing(check_cls.needs)
    if missing:
        return (
            None,
            Finding(
                check_cls.id,
                Verdict.NOT_APPLICABLE,
                f"not applicable: needs {', '.join(missing)}",
            ),
            False,
        )
    user = False
    try:
        check = check_cls.configured(config) if config is not None else check_cls()
        measurement, finding = check.run(ctx, progress)
    except (Cancelled, HookTimeout):
        raise
    except CaseError as e:
        finding = Finding(check_cls.id, Verdict.ERROR, e.message, error=e.details or e.message)
        measurement, user = None, True
    except Exception as e:  # a crashed check is an error finding, never evidence
        frame = user_frame(e, ctx.case.path)
        user = frame is not None  # the exception came up through the user's code
        what = f"{type(e).__name__}: {e}"
        if frame is None:
            summary = f"the check crashed: {what}"
        elif frame.name == "forward":
            summary = f"your model's forward() raised {what} {where(frame, ctx.case.path)}"
        else:
            summary = f"your code raised {what} in {frame.name}() {where(frame, ctx.case.path)}"
        finding = Finding(
            check_cls.id,
            Verdict.ERROR,
            summary,
            error="".join(traceback.format_exception(e)),
        )
        measurement = None
    return measurement, replace(finding, duration_s=round(time.monotonic() - start, 3)), user


def fingerprint_of(ctx: RunContext) -> str:
    """Case file hash + model weights hash: findings are valid for exactly this pair."""
    try:
        from detective.analysis.torchutil import model_hash

        return f"{ctx.case.file_hash}-{model_hash(ctx.model())}"
    except HookTimeout:
        raise  # a hung model() would hang every check after it: the run ends here
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
    except Cancelled:  # stopped while a hook was loading, before any check started
        events.put(RunFinished(RunStatus.INTERRUPTED, "stopped while loading the case"))
    except HookTimeout as e:
        events.put(RunFinished(RunStatus.FAILED, e.message))
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
    from detective.core.hookwatch import HookWatch

    registry = all_checks()
    running = [""]  # the check in flight, for the slow-hook notice
    ctx.case.watch = HookWatch(
        timeout_s=ctx.options.hook_timeout,
        cancel=cancel,
        on_slow=lambda hook: events.put(HookWaiting(hook, running[0])),
    )
    plan = playbook.plan(ctx.options.symptom)
    if only:
        plan = [(s, c) for s, c in plan if c in only]
    if JUDGEMENT_CHECK in registry and all(c != JUDGEMENT_CHECK for _, c in plan):
        # Every run ends with the judgement: interventions on what the checks found.
        plan.append((Stage.JUDGEMENT, JUDGEMENT_CHECK))
    from detective.analysis.torchutil import describe_device

    device = describe_device(ctx.device)
    if session.info.device != device:
        session.update_info(device=device)
    fingerprint = fingerprint_of(ctx)
    # Checks cache derived text (LLM summaries) in the session's key/value store, and shared
    # measurements live there under this fingerprint (recomputed on --rerun).
    ctx.kv = session
    ctx.measurements.attach(session, fingerprint, reuse_stored=not rerun)
    done = set() if rerun else session.done_checks(fingerprint)
    planned = tuple(c for _, c in plan)
    events.put(
        RunStarted(
            session.name, planned, tuple(c for c in planned if c in done), fingerprint, device
        )
    )
    playbook = _plan(ctx, playbook, [c for c in planned if c not in done], events)
    errors = user_errors = 0
    blocked, model_blocked = _blocked_by_stored(session, fingerprint, done)
    ran = False  # a check measured in this run: the judgement must look again
    for index, (stage, check_id) in enumerate(plan):
        if cancel.is_set():
            events.put(RunFinished(RunStatus.INTERRUPTED, "stopped before " + check_id, errors))
            return
        check_cls = registry[check_id]
        if check_cls.reads_findings:
            ctx.prior_findings = tuple(
                f.finding for f in session.findings(fingerprint) if f.check_id != check_id
            )
        if check_id in done and not (check_cls.reads_findings and ran):
            events.put(CheckSkipped(check_id, "already done in this session"))
            continue
        if ctx.plan is not None and check_id in ctx.plan.dropped:
            events.put(CheckSkipped(check_id, "does not fit --budget; `detective resume` runs "
                                    "it next, on a budget of its own"))  # fmt: skip
            continue
        if blocked:
            events.put(CheckSkipped(check_id, "blocked: " + blocked.split(" (", 1)[0]))
            continue
        if model_blocked and check_cls.needs_trained_model:
            events.put(CheckSkipped(check_id, "blocked: " + model_blocked))
            continue
        events.put(CheckStarted(check_id, check_cls.title, stage.value, index, len(plan)))
        running[0] = check_id

        def on_update(u: ProgressUpdate, cid: str = check_id) -> None:
            events.put(CheckProgress(cid, u.fraction, u.message, u.elapsed_s))

        def on_log(message: str, cid: str = check_id) -> None:
            events.put(CheckLog(cid, message))

        progress = Progress(on_update, cancel, on_log)
        try:
            config = playbook.settings_for(check_id)
            measurement, finding, user = _run_check(check_cls, ctx, progress, config)
            finding = shortening_noted(finding, ctx.plan)
        except Cancelled:
            ctx.experiments.drain()  # a cancelled check's experiments are not evidence
            events.put(RunFinished(RunStatus.INTERRUPTED, f"cancelled during {check_id}", errors))
            return
        except HookTimeout as e:
            events.put(RunFinished(RunStatus.FAILED, f"{e.message} (in {check_id})", errors))
            return
        finding_id = session.save_finding(finding, fingerprint, measurement)
        ran = True
        from detective.workflows.experiments import flush  # experiments the check ran, linked to it

        flush(session, ctx, finding_id)
        errors += finding.verdict is Verdict.ERROR
        user_errors += finding.verdict is Verdict.ERROR and user
        events.put(CheckFinished(check_id, finding, finding_id))
        if check_id in BLOCKING_CHECKS and finding.verdict in (Verdict.FAIL, Verdict.ERROR):
            blocked, model_blocked = _blocking(check_id, finding)
    events.put(RunFinished(RunStatus.COMPLETED, "", errors, user_errors, blocked))


def _plan(
    ctx: RunContext, playbook: Playbook, todo: list[str], events: queue.Queue[Event | None]
) -> Playbook:
    """Measure what the run will cost and start the budget's clock; the playbook with settings
    shortened to fit the budget (`--budget`, else about one epoch). A case too broken to time
    runs unplanned (its checks say what is wrong) under the default budget's floor."""
    import math

    from detective.core.budget import BudgetClock, prepare, resolve_budget

    budget_min = ctx.options.budget_min
    if todo:
        # Loading the user's model (a checkpoint, or a case that trains in model()) is setup,
        # not the investigation's work: it happens before the clock starts.
        try:
            ctx.model()
        except (Cancelled, HookTimeout):
            raise
        except Exception:  # noqa: BLE001, S110 - the checks report a model that fails to load
            pass
    ctx.budget = BudgetClock(resolve_budget(budget_min, math.nan)[0])
    if not todo:
        return playbook
    try:
        plan, playbook = prepare(ctx, playbook, todo, budget_min)
    except (Cancelled, HookTimeout):
        raise
    except Exception as e:  # noqa: BLE001 - planning is advice: the checks report the case's faults
        events.put(CheckLog("plan", f"no cost plan: {type(e).__name__}: {e}"))
        return playbook
    ctx.budget.budget_s = plan.budget_s  # the clock started before the timing: it counts too
    ctx.plan = plan
    events.put(RunPlanned(plan))
    return playbook


def shortening_noted(finding: Finding, plan: RunPlan | None) -> Finding:
    """The finding of a check the budget shortened says so, in its own notes (the report's
    reader never saw the plan line): which settings, from what to what."""
    from dataclasses import replace

    if plan is None:
        return finding
    mine = [s for s in plan.shortened if s.check_id == finding.check_id]
    if not mine:
        return finding
    what = "; ".join(s.describe().split(".", 1)[1] for s in mine)
    note = (f"Shortened to fit the run's budget ({what}); `detective run … --only "
            f"{finding.check_id} --rerun --budget none` measures it in full.")
    return replace(finding, notes=(*finding.notes, note))


def model_output_only(finding: Finding) -> bool:
    """The finding says only the trained model's output failed (NaN/Inf logits): the recipe-only
    checks and the judgement's training side can still run."""
    return any(m.key == MODEL_OUTPUT_ONLY and m.value for m in finding.metrics)


def _blocking(check_id: str, finding: Finding) -> tuple[str, str]:
    """(why every later check is blocked, why those needing the trained model are): a failure
    of the trained model's output alone leaves the recipe-only checks free to run."""
    if model_output_only(finding):
        return "", f"{check_id}: the trained model's output is unusable"
    return f"{check_id} failed ({finding.summary})", ""


def _blocked_by_stored(session: Session, fingerprint: str, done: set[str]) -> tuple[str, str]:
    """A blocking check that already failed for this fingerprint still blocks on `resume`."""
    stored = {
        f.check_id: f.finding
        for f in session.findings(fingerprint)
        if f.check_id in BLOCKING_CHECKS and f.check_id in done
    }
    for check_id, finding in stored.items():
        if finding.verdict in (Verdict.FAIL, Verdict.ERROR):
            return _blocking(check_id, finding)
    return "", ""
