"""The core views the TUI renders (`detective.browse`, `detective.investigation`): pure, no UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_snapshots import build_session

from detective.browse import (
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
from detective.findings import Finding, Strength, Table, Verdict, supports
from detective.investigation import IntakeForm, parse_metric, validate
from detective.ledger import session_ledger
from detective.playbook import resolve_playbook
from detective.session import Session


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


def test_failures_and_clusters_are_read_from_the_session(tmp_path: Path) -> None:
    path = build_session(tmp_path)
    with Session.open(path) as s:
        s.save_finding(
            Finding(
                "worst_examples",
                Verdict.PASS,
                "",
                tables=(
                    Table(
                        "highest loss",
                        ("index", "true", "predicted", "confidence", "loss"),
                        ((7, "cat", "dog", 0.9, 3.1), (8, "dog", "dog", 0.6, 0.9)),
                    ),
                ),
            ),
            "fp",
            {"split": "test"},
        )
        items = failure_items(s)
        assert [(i.key, i.true, i.pred, i.confidence) for i in items] == [
            ("val:12", "3", "8", 0.97),
            ("val:40", "7", "1", 0.91),
            ("val:77", "9", "4", 0.88),
            ("test:7", "cat", "dog", 0.9),  # the correct row (8) is not a failure
        ]
        assert [g.path for g in galleries(s)] == ["errors-grid.png"]
    cluster = Table("failure clusters", ("cluster", "id", "failures"), ((0, "c-3f2a", 12),))
    assert cluster_target(cluster, cluster.rows[0]) == "c-3f2a"


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


@pytest.mark.parametrize("module", ["detective.browse", "detective.investigation"])
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
