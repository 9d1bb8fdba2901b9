"""The experiment log: one change at a time, seeds and noise, recording, export, CLI, compare."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from capacity_cases import OVERFIT
from helpers import context_for, write_case

from detective.analysis.paired import mcnemar_exact
from detective.core.context import RunOptions
from detective.core.progress import Cancelled, Progress
from detective.core.report import build_report
from detective.core.session import Session, SessionInfo
from detective.ui.cli import main
from detective.ui.export import Format, render
from detective.ui.export.text import md_escape
from detective.workflows.compare import CompareError, compare_cases
from detective.workflows.experiments import (
    ExperimentError,
    flush,
    outcome,
    parse_change,
    record,
    run_experiment,
)

FAST = {"max_epochs": 2, "train_samples": 200, "val_samples": 200}


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_case(tmp_path_factory.mktemp("exp"), OVERFIT)


def _session(tmp_path: Path, case: Path) -> Session:
    info = SessionInfo("s", str(case), "h", None, "vision-classification",
                       RunOptions(device="cpu"), time.time())
    return Session.create(tmp_path / "s", info)


def test_two_changes_at_once_are_refused_unless_insisted(case: Path, tmp_path: Path) -> None:
    ctx = context_for(case, tmp_path)
    with pytest.raises(ExperimentError, match="2 changes at once"):
        run_experiment(ctx, ["train.lr=1e-2", "train.weight_decay=0.1"], **FAST)
    run = run_experiment(ctx, ["train.lr=1e-2", "train.weight_decay=0.1"],
                         allow_confounded=True, **FAST)
    assert run.experiment.confounded
    assert run.experiment.changes == ("train.lr=0.01", "train.weight_decay=0.1")


def test_changes_are_parsed_and_bad_ones_named() -> None:
    assert parse_change("train.lr=1e-3").value == 1e-3
    assert parse_change("model.width=64").label == "model.width=64"
    for bad in ("lr=1", "train.momentum=0.9", "foo.x=1", "aug.shift=-1", "train.lr=fast"):
        with pytest.raises(ExperimentError):
            parse_change(bad)


def test_model_keyword_the_case_lacks_is_refused(case: Path, tmp_path: Path) -> None:
    ctx = context_for(case, tmp_path)
    with pytest.raises(ExperimentError, match="accepts no 'depth' keyword"):
        run_experiment(ctx, ["model.depth=3"], **FAST)


def test_noise_verdicts() -> None:
    # 0.3 % on 1000 items is inside the sampling noise; 10 % is not.
    assert outcome([0.003], 0.9, 1000) == "within noise"
    assert outcome([0.10], 0.8, 1000) == "improved"
    assert outcome([-0.10], 0.8, 1000) == "worse"
    # A mean gain swamped by the seed spread is noise even when it beats the binomial floor.
    assert outcome([0.2, -0.1, 0.25, -0.15], 0.8, 10_000) == "within noise"


def test_seeds_report_spread_and_records_export_with_delta(case: Path, tmp_path: Path) -> None:
    ctx = context_for(case, tmp_path)
    run = run_experiment(ctx, ["model.width=4"], seeds=(0, 1, 2), **FAST)
    e = run.experiment
    assert e.seeds == (0, 1, 2) and len(run.before) == len(run.after) == 3
    assert e.after_spread is not None and e.before_spread is not None
    assert e.after < e.before  # an 8× narrower model does worse on val
    assert "budget: 6 run(s)" in e.notes
    record(ctx, e)
    other = run_experiment(ctx, ["aug.shift=1"], **FAST).experiment
    record(ctx, other)
    with _session(tmp_path, case) as s:
        ids = flush(s, ctx, 7)
        assert len(ids) == 2 and not flush(s, ctx, 8)
        stored = s.experiments()
        assert [x.finding_ids for x in stored] == [(7,), (7,)]
        md = render(build_report(s), Format.MD, s.artifacts_dir)
    for x in (e, other):
        row = next(line for line in md.splitlines() if line.startswith(f"| {md_escape(x.name)} "))
        assert f"{x.delta:+.4g}" in row and x.verdict in row


def test_cancelling_records_nothing(case: Path, tmp_path: Path) -> None:
    ctx = context_for(case, tmp_path)
    progress = Progress()
    progress.cancel_event.set()
    with pytest.raises(Cancelled):
        run_experiment(ctx, ["train.lr=1e-2"], progress=progress, **FAST)
    assert len(ctx.experiments) == 0


def test_cli_experiment_records_into_the_session(case: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    _session(tmp_path, case).close()
    sess = str(tmp_path / "s")
    assert main(["experiment", sess, "--set", "train.lr=1e-2", "--set", "train.epochs=1"]) == 2
    assert "changes at once" in capsys.readouterr().out
    code = main(["experiment", sess, "--set", "train.lr=1e-2", "--seeds", "0,1",
                 "--epochs", "2", "--sample", "200"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "budget: 4 run(s)" in out and "experiment #1 train.lr=0.01" in out
    with Session.open(sess) as s:
        (e,) = s.experiments()
    assert e.seeds == (0, 1) and e.after_spread is not None


def test_mcnemar_exact() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 10) == pytest.approx(1.0)
    assert mcnemar_exact(30, 5) < 0.001


def test_compare_two_models_on_the_same_val_set(case: Path, tmp_path: Path) -> None:
    better = write_case(tmp_path, OVERFIT.replace("[:3] for c in range(10)",
                                                  "[:10] for c in range(10)"), "better.py")
    c = compare_cases(case, better, sample=300, device="cpu", out_dir=tmp_path / "out")
    assert c.n == 300 and c.acc_b > c.acc_a + 0.05
    assert c.fixed > c.broken and c.p_value < 0.001 and c.significant
    assert c.fixed - c.broken == round(c.delta * c.n)
    assert len(c.per_class) == 10 and {s.group for s in c.per_slice} >= {"brightness low"}
    assert any(g.endswith("compare-fixed.png") for g in c.galleries)
    same = compare_cases(case, case, sample=300, device="cpu")
    assert same.delta == 0 and same.p_value == 1.0 and "within noise" in same.summary
    other = OVERFIT.replace('s["val"][1])', 's["val"][1][::-1].copy())')
    other = other.replace("kit.file_key(__file__)", f"kit.file_key({str(case)!r})")  # A's weights
    other = write_case(tmp_path, other, "other.py")
    with pytest.raises(CompareError, match="labels differ"):
        compare_cases(case, other, sample=300, device="cpu")
