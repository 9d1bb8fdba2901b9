import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import CASES

from detective.core.case import load_case
from detective.core.context import RunContext, RunOptions
from detective.core.engine import CheckFinished, CheckStarted, RunFinished, RunStatus, run_playbook
from detective.core.findings import Verdict
from detective.core.playbook import resolve_playbook
from detective.core.session import Session

DETECTIVE = [sys.executable, "-m", "detective"]


def findings_in(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(db, timeout=5)
        rows = conn.execute("SELECT check_id FROM findings ORDER BY id").fetchall()
        conn.close()
    except sqlite3.OperationalError:
        return []
    return [r[0] for r in rows]


def test_killed_mid_check_then_resumed_loses_no_finished_finding(tmp_path: Path) -> None:
    session = tmp_path / "sess"
    env = {**os.environ, "PYTHONPATH": str(CASES)}
    proc = subprocess.Popen(
        [
            *DETECTIVE,
            "run",
            str(CASES / "slow_clean.py"),
            "--session",
            str(session),
            "--headless",
            "--device",
            "cpu",
            "--symptom",
            "train_high_val_low",
            "--only",
            "case_contract,preprocessing_parity",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    while "case_contract" not in findings_in(session / "session.sqlite"):
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)  # now inside preprocessing_parity (its raw images are slow)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert findings_in(session / "session.sqlite") == ["case_contract"]

    resumed = subprocess.run(
        [*DETECTIVE, "resume", str(session)], env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "already done" in resumed.stdout
    # resume keeps the --only selection (and every run ends with the judgement)
    assert "· 3 checks ·" in " ".join(resumed.stdout.split())
    assert findings_in(session / "session.sqlite") == [
        "case_contract", "preprocessing_parity", "interventions"
    ]


def test_cancel_stops_the_running_check_and_saves_nothing_partial(tmp_path: Path) -> None:
    sys.path.insert(0, str(CASES))
    case = load_case(CASES / "slow_clean.py")
    from detective.core.session import SessionInfo

    session = Session.create(
        tmp_path / "s",
        SessionInfo(
            "s", str(case.path), case.file_hash, None, "vision-classification", RunOptions(), 0.0
        ),
    )
    ctx = RunContext(case, RunOptions(device="cpu"), session.artifacts_dir, session.cache_dir)
    cancel = threading.Event()
    seen = []
    only = ["case_contract", "preprocessing_parity"]
    for event in run_playbook(session, resolve_playbook(None), ctx, cancel=cancel, only=only):
        seen.append(event)
        if isinstance(event, CheckStarted) and event.check_id == "preprocessing_parity":
            cancel.set()
    assert isinstance(seen[-1], RunFinished) and seen[-1].status is RunStatus.INTERRUPTED
    # The finished check is stored; the cancelled one left nothing behind.
    assert [f.check_id for f in session.findings()] == ["case_contract"]
    session.close()


def test_blocking_check_failure_skips_the_rest(tmp_path: Path) -> None:
    from helpers import write_case
    from test_case_loading import TINY

    path = write_case(tmp_path, TINY.replace("num_classes=2", "num_classes=3"))
    case = load_case(path)
    from detective.core.session import SessionInfo

    session = Session.create(
        tmp_path / "s",
        SessionInfo(
            "s", str(path), case.file_hash, None, "vision-classification", RunOptions(), 0.0
        ),
    )
    ctx = RunContext(case, RunOptions(device="cpu"), session.artifacts_dir, session.cache_dir)
    events = list(run_playbook(session, resolve_playbook(None), ctx))
    finished = [e for e in events if isinstance(e, CheckFinished)]
    assert [e.finding.verdict for e in finished] == [Verdict.FAIL]
    assert events[-1].status is RunStatus.COMPLETED
    session.close()


def test_cli_usage_errors_have_documented_exit_codes(tmp_path: Path) -> None:
    r = subprocess.run(
        [*DETECTIVE, "run", str(tmp_path / "missing.py"), "--session", str(tmp_path / "s")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 4 and "case file not found" in r.stdout
    r = subprocess.run(
        [*DETECTIVE, "run", "x.py", "--symptom", "nope"], capture_output=True, text=True
    )
    assert r.returncode == 2
    r = subprocess.run(
        [*DETECTIVE, "resume", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert r.returncode == 5 and "no session at" in r.stdout
    r = subprocess.run(
        [
            *DETECTIVE,
            "run",
            str(CASES / "digits_clean.py"),
            "--device",
            "cuda:7",
            "--session",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
    )
    if "no CUDA" in r.stdout:
        assert r.returncode == 2


def test_a_nan_checkpoint_blocks_only_the_checks_that_need_it(tmp_path: Path) -> None:
    """Diverged weights (NaN logits) fail the contract, but the recipe-only checks still run
    and show the divergence; the checks that read the trained model are skipped."""
    sys.path.insert(0, str(CASES))
    case = load_case(CASES / "learning_nan_checkpoint.py")
    from detective.core.engine import CheckSkipped
    from detective.core.session import SessionInfo

    session = Session.create(
        tmp_path / "s",
        SessionInfo(
            "s", str(case.path), case.file_hash, None, "vision-classification", RunOptions(), 0.0
        ),
    )
    ctx = RunContext(case, RunOptions(device="cpu"), session.artifacts_dir, session.cache_dir)
    only = ["case_contract", "loss_curve", "activations"]
    events = list(run_playbook(session, resolve_playbook(None), ctx, only=only))
    finished = {e.check_id: e.finding for e in events if isinstance(e, CheckFinished)}
    skipped = {e.check_id: e.reason for e in events if isinstance(e, CheckSkipped)}
    assert finished["case_contract"].verdict is Verdict.FAIL
    assert "loss_curve" in finished and finished["loss_curve"].verdict is Verdict.FAIL
    assert "lr_too_high" in finished["loss_curve"].summary or any(
        e.hypothesis == "lr_too_high" for e in finished["loss_curve"].effects
    )
    assert "activations" in skipped and "output is unusable" in skipped["activations"]
    assert events[-1].status is RunStatus.COMPLETED and not events[-1].blocked
    session.close()
