"""The core views the TUI renders (`detective.ui.browse`, `detective.workflows.investigation`):
pure, no UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_snapshots import build_session

from detective.core.findings import Finding, Strength, Table, Verdict, pair_ref, supports
from detective.core.ledger import session_ledger
from detective.core.playbook import resolve_playbook
from detective.core.session import Session
from detective.ui.browse import (
    PENDING,
    CheckRow,
    check_board,
    cluster_target,
    curves,
    failure_items,
    galleries,
    recent_sessions,
    recommend,
)
from detective.workflows.investigation import IntakeForm, parse_metric, validate


def test_curves_are_tables_with_an_increasing_numeric_first_column() -> None:
    rising = Table(
        "lr sweep", ("lr", "loss", "note"), tuple((i, 2.0 - i / 10, "x") for i in range(5))
    )
    unordered = Table("t", ("k", "v"), ((3, 1.0), (1, 2.0), (2, 3.0), (4, 4.0)))
    short = Table("s", ("k", "v"), ((1, 1.0), (2, 2.0)))
    found = curves(Finding("c", Verdict.PASS, "", tables=(rising, unordered, short)))
    assert [(c.title, c.x_label, [s[0] for s in c.series]) for c in found] == [
        ("lr sweep", "lr", ["loss"])
    ]
    assert found[0].x == (0.0, 1.0, 2.0, 3.0, 4.0)


def test_failures_are_the_typed_references_checks_emit_never_guessed_tables(
    tmp_path: Path,
) -> None:
    path = build_session(tmp_path)
    with Session.open(path) as s:
        # A table that merely looks like failures (true/pred captions) is not a failure list:
        # the largest-confusions table once became "items 0…8" reviewed against val:0, val:1.
        s.save_finding(
            Finding(
                "per_class_report",
                Verdict.PASS,
                "",
                tables=(
                    Table("largest confusions", ("true", "predicted", "count"), (("2", "1", 6),)),
                ),
                failures=(pair_ref("2", "1", 6, "confusion.png"),),
            ),
            "fp",
        )
        s.save_finding(
            Finding(
                "worst_examples",
                Verdict.PASS,
                "",
                tables=(Table("highest loss", ("index", "true", "pred"), ((7, "cat", "dog"),)),),
            ),
            "fp",
        )
        items = failure_items(s)
        assert [(i.key, i.review_kind, i.true, i.pred, i.count) for i in items] == [
            ("val:12", "failure", "3", "8", 1),
            ("val:40", "failure", "7", "1", 1),
            ("val:77", "failure", "9", "4", 1),
            ("3→8", "pair", "3", "8", 6),
            ("2→1", "pair", "2", "1", 6),
        ]
        assert items[0].confidence == pytest.approx(0.97)
        assert [g.path for g in galleries(s)] == ["errors-grid.png"]
    cluster = Table("failure clusters", ("cluster", "id", "failures"), ((0, "c-3f2a", 12),))
    assert cluster_target(cluster, cluster.rows[0]) == "c-3f2a"


def test_a_finding_stored_before_typed_failures_still_opens(tmp_path: Path) -> None:
    import json

    path = build_session(tmp_path)
    with Session.open(path) as s:
        fid = s.findings()[-1].id
        s._conn.execute(  # an older version's record: no "failures" key at all
            "UPDATE findings SET finding=? WHERE id=?",
            (json.dumps({"check_id": "old", "verdict": "warn", "summary": "s"}), fid),
        )
        s._conn.commit()
        assert s.findings()[-1].finding.failures == ()
        assert failure_items(s) == []


def test_recommendation_prefers_a_check_that_can_settle_a_doubtful_hypothesis(
    tmp_path: Path,
) -> None:
    path = build_session(tmp_path, with_failures=False)
    with Session.open(path) as s:
        playbook = resolve_playbook(s.info.playbook)
        rows = check_board(s, playbook)
        assert [r.status for r in rows] == ["pass", "fail"]
        assert recommend(rows, session_ledger(s), playbook) is None  # every check has run
        pending = [
            CheckRow(r.stage, r.check_id, r.title, PENDING, "", None, r.hypotheses) for r in rows
        ]
        first = recommend(pending, session_ledger(s), playbook)
        assert first is not None and first.check_id == "preprocessing_parity"
        assert "Training and evaluation preprocess images differently" in first.reason
        s.save_finding(
            Finding("x", Verdict.WARN, "", effects=(supports("overfitting", Strength.WEAK, "r"),)),
            "fp",
        )
        ledger = session_ledger(s)
    fresh = [CheckRow(r.stage, r.check_id, r.title, PENDING, "", None, ()) for r in rows]
    plain_order = recommend(fresh, ledger, playbook)
    assert plain_order is not None and plain_order.check_id == "case_contract"
    assert "first check" in plain_order.reason


def test_recent_sessions_summarise_and_survive_a_broken_one(tmp_path: Path) -> None:
    build_session(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "session.sqlite").write_bytes(b"not a database at all" * 100)
    summaries = {s.name: s for s in recent_sessions(tmp_path)}
    good = summaries["digits"]
    assert (good.symptom, good.last_step, good.top_status) == (
        "train_high_val_low",
        "error_gallery: warn",
        "supported",
    )
    assert summaries["broken"].problem


@pytest.mark.parametrize(
    ("text", "value"), [("", None), ("0.87", 0.87), ("87%", 0.87), ("87", 0.87), ("1", 1.0)]
)
def test_reported_metric_parsing(text: str, value: float | None) -> None:
    assert parse_metric(text) == (None if value is None else pytest.approx(value))


def test_intake_validation_names_each_field(tmp_path: Path) -> None:
    logs = tmp_path / "log.txt"
    logs.write_text("x")
    form = IntakeForm(str(tmp_path / "nope.py"), "", "sad", "150%", str(logs))
    assert {e.field for e in validate(form)} == {
        "case_path",
        "session_dir",
        "symptom",
        "reported_metric",
        "logs",
    }
    case = tmp_path / "case.py"
    case.write_text("")
    assert validate(IntakeForm(str(case), str(tmp_path / "s"), "both_low", "41%")) == []


@pytest.mark.parametrize(
    "module",
    ["detective.ui.browse", "detective.workflows.investigation", "detective.workflows.childrun"],
)
def test_core_views_import_neither_textual_nor_torch(module: str) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", f"import {module}, sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "textual" not in out and "torch" not in out


def test_real_pixels_are_asked_for_only_in_terminals_that_draw_them() -> None:
    from detective.ui.tui.widgets.graphics import graphics_terminal

    assert graphics_terminal({"TERM": "xterm-kitty"})
    assert graphics_terminal({"TERM_PROGRAM": "WezTerm", "TERM": "xterm-256color"})
    # tmux, plain terminals over SSH, headless runs: half-blocks, and no terminal query.
    assert not graphics_terminal({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"})
    assert not graphics_terminal({"TERM": "xterm-256color"})
    assert not graphics_terminal({})
