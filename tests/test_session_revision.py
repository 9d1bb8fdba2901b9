"""Session.revision: moves with every write a view shows (from any connection), not with the
UI's own key/value notes — the TUI re-reads a screen only when it moved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detective.core.context import RunOptions
from detective.core.findings import Finding, Verdict
from detective.core.session import (
    Experiment,
    HypothesisStatus,
    ReviewVerdict,
    Session,
    SessionInfo,
)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    info = SessionInfo("s", "case.py", "h", "both_low", "default", RunOptions(), 0.0)
    Session.create(tmp_path / "s", info).close()
    return Session.open(tmp_path / "s")


WRITES: dict[str, Callable[[Session], object]] = {
    "finding": lambda s: s.save_finding(Finding("x", Verdict.PASS, "ok"), "fp"),
    "hypothesis": lambda s: s.add_hypothesis("mine"),
    "status": lambda s: s.set_status("overfitting", HypothesisStatus.REFUTED, "by hand"),
    "note": lambda s: s.add_note("overfitting", "a note"),
    "review": lambda s: s.add_review("image", "val:3", ReviewVerdict.AGREE),
    "experiment": lambda s: s.add_experiment(Experiment("e", ("lr",), "acc", 0.5, 0.6)),
    "info": lambda s: s.update_info(  # another symptom each time
        symptom="both_low" if s.info.symptom == "low_train_acc" else "low_train_acc"
    ),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_every_write_a_view_shows_moves_the_revision(session: Session, write: str) -> None:
    before = session.revision()
    other = Session.open(session.path)  # another writer: a run's child process
    WRITES[write](other)
    other.close()
    assert session.revision() != before
    moved = session.revision()
    WRITES[write](session)  # and this connection's own writes
    assert session.revision() != moved


def test_the_uis_own_notes_and_reads_leave_it_alone(session: Session) -> None:
    before = session.revision()
    session.kv_set("ui.screen", "ledger")
    session.findings()
    session.reviews()
    assert session.revision() == before
    # Clearing a status by hand is a change too (the override row goes away).
    session.set_status("overfitting", HypothesisStatus.REFUTED)
    set_once = session.revision()
    session.set_status("overfitting", None)
    assert session.revision() != set_once
