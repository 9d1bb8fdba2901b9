"""The measurement layer: evidence that does not depend on run history, thresholds apart from
settings (playbook and `rejudge --set` overrides), providers recorded in findings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import CASES

from detective.analysis.erroranalysis import SliceDef, SliceStat
from detective.analysis.measures import Candidate, LabelIssueScores, SliceStats, SplitIssues
from detective.core.case import load_case
from detective.core.context import RunContext, RunOptions
from detective.core.engine import CheckFinished, run_playbook
from detective.core.findings import Direction, Finding, Strength, Table, Verdict
from detective.core.playbook import PlaybookError, load_playbook, resolve_playbook
from detective.core.registry import all_checks
from detective.core.session import Session, SessionInfo
from detective.ui.cli import main
from detective.ui.exitcodes import ExitCode

CASE = CASES / "errors_dark_slice.py"
OPTIONS = {"device": "cpu", "sample": 450, "reported_metric": 0.8}


def _run(tmp: Path, only: tuple[str, ...] | None, cache: Path, playbook=None) -> dict[str, Finding]:  # noqa: ANN001
    """Run the playbook (or `--only` checks) in a fresh session and a fresh context."""
    info = SessionInfo(
        "s", str(CASE), "h", None, "vision-classification", RunOptions(**OPTIONS), time.time()
    )
    session = Session.create(tmp, info)
    ctx = RunContext(load_case(CASE), RunOptions(**OPTIONS), session.artifacts_dir, cache)
    pb = playbook or resolve_playbook(None, set(all_checks()))
    try:
        return {
            e.check_id: e.finding
            for e in run_playbook(session, pb, ctx, only=only)
            if isinstance(e, CheckFinished)
        }
    finally:
        session.close()


def _key(f: Finding) -> tuple:  # noqa: ANN001
    """What must not depend on run history: verdict, summary, effects, metrics, table cells
    (wall-clock columns aside), providers."""

    def cells(t: Table) -> tuple:
        keep = [i for i, c in enumerate(t.columns) if c != "seconds"]
        return tuple(tuple(row[i] for i in keep) for row in t.rows)

    return (
        f.verdict,
        f.summary,
        f.effects,
        tuple((m.name, m.value) for m in f.metrics),
        tuple(cells(t) for t in f.tables),
        f.uses,
    )


class _Tripwire:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"measure() read thresholds.{name}")


def _run_measuring_without_thresholds(self, ctx, progress):  # noqa: ANN001, ANN202
    real, self.thresholds = self.thresholds, _Tripwire()
    try:
        measurement = self.measure(ctx, progress)
    finally:
        self.thresholds = real
    return measurement, self.judge(measurement)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Finding], Path]:
    """The full playbook, every check's measure() run with its thresholds out of reach."""
    from detective.core.registry import Check

    root = tmp_path_factory.mktemp("full")
    cache = root / "cache"  # the collection pass on disk is shared; shared measurements are not
    original = Check.run
    Check.run = _run_measuring_without_thresholds  # type: ignore[method-assign]
    try:
        findings = _run(root / "session", None, cache)
    finally:
        Check.run = original  # type: ignore[method-assign]
    crashed = {k: f.summary for k, f in findings.items() if f.verdict is Verdict.ERROR}
    assert not crashed, crashed
    return findings, cache


def test_every_check_alone_gives_the_finding_it_gives_in_the_full_playbook(
    full: tuple[dict[str, Finding], Path], tmp_path: Path
) -> None:
    findings, cache = full
    assert len(findings) == len(all_checks())
    # Consumers of shared measurements found the same evidence the producer measured.
    assert "slice_stats" in findings["error_budget"].uses
    assert findings["metric_recompute"].uses == ("eval_mode_stats",)
    differ = []
    registry = all_checks()
    for check_id, finding in sorted(findings.items()):
        if registry[check_id].reads_findings:
            continue  # the judgement judges the other checks' findings: alone it has none
        alone = _run(tmp_path / check_id, (check_id,), cache)[check_id]
        if _key(alone) != _key(finding):
            differ.append(f"{check_id}: {finding.summary!r} vs alone {alone.summary!r}")
    assert not differ, "\n".join(differ)


def test_a_planted_history_bug_would_be_caught(
    full: tuple[dict[str, Finding], Path], tmp_path: Path
) -> None:
    """The comparison above is sensitive: a consumer that reads another check's result only when
    that check ran first (the old ctx.memo) gives a different finding alone."""
    findings, cache = full
    from detective.analysis.measures import EvalModeStats
    from detective.core.shared import SharedMeasurements

    class MemoOnly(SharedMeasurements):  # the old behaviour: nothing unless a producer ran
        def get(self, tp, ctx, progress=None):  # noqa: ANN001, ANN201
            if tp is EvalModeStats and tp not in self._values:
                return EvalModeStats("val", 0, (), 0, 0.0, 0.0, 0.0, 0.0, None)
            return super().get(tp, ctx, progress)

    import detective.core.context as context

    original = context.SharedMeasurements
    context.SharedMeasurements = MemoOnly  # type: ignore[misc]
    try:
        alone = _run(tmp_path / "m", ("metric_recompute",), cache)["metric_recompute"]
    finally:
        context.SharedMeasurements = original  # type: ignore[misc]
    assert _key(alone) != _key(findings["metric_recompute"])


def test_every_finding_follows_the_one_verdict_rule(
    full: tuple[dict[str, Finding], Path],
) -> None:
    """FAIL iff a strong supporting effect, for every check of the full playbook, with one
    documented exception: metric_recompute FAILs a reported number that is train-mode accuracy
    (the number is wrong) while moving metric_bug only moderately (eval_mode owns the cause)."""
    from detective.core.findings import verdict_of

    def exception(f: Finding) -> bool:
        from detective.checks.evaluation_integrity.metric_recompute import TRAIN_MODE

        return f.check_id == "metric_recompute" and TRAIN_MODE in f.summary

    findings, _ = full
    judged = [
        f for f in findings.values() if f.verdict in (Verdict.PASS, Verdict.WARN, Verdict.FAIL)
    ]
    assert len(judged) >= 20
    wrong = [
        f.check_id
        for f in judged
        if (f.verdict is Verdict.FAIL) != (verdict_of(f.effects) is Verdict.FAIL)
        and not exception(f)
    ]
    assert not wrong, wrong


# --- rejudge --set ------------------------------------------------------------------------


def _stat(label: str, p: float) -> SliceStat:
    return SliceStat(SliceDef("class", label, int(label)), 60, 20, 0.33, 0.04, 8.0, p, 0.45, 17.0)


def _issues(wrong: int, examined: int = 400) -> LabelIssueScores:
    cands = tuple(
        Candidate(i, 0, 1, 0.1, 0.9, 1, 0.9, "label probably wrong") for i in range(wrong)
    )
    split = SplitIssues(
        "val", examined, 0.9, wrong, wrong, 0, tuple(range(wrong)), tuple(range(wrong)), cands
    )
    return LabelIssueScores(("0", "1", "2"), (split,), "")


def _stored_session(path: Path, playbook: str = "vision-classification") -> Path:
    from detective.checks.error_analysis.error_slices import ErrorSlices
    from detective.checks.error_analysis.label_issues import LabelIssues

    info = SessionInfo("s", "case.py", "h", None, playbook, RunOptions(), time.time())
    with Session.create(path, info) as s:
        # A slice at p=0.02: significant at 5%, not at the default 1%.
        slices = SliceStats("val", 600, 44, 20, (_stat("3", 0.02),))
        s.save_finding(ErrorSlices().judge(slices), "fp", slices)
        # 7% of labels probably wrong: strong at the default 5%.
        issues = _issues(28)
        s.save_finding(LabelIssues().judge(issues), "fp", issues)
    return path


def _latest(path: Path) -> dict[str, Finding]:
    with Session.open(path) as s:
        return {f.check_id: f.finding for f in s.findings(fingerprint="fp")}


def test_rejudge_set_surfaces_what_the_default_hides_and_the_reverse(tmp_path: Path) -> None:
    path = _stored_session(tmp_path / "s")
    before = _latest(path)
    assert before["error_slices"].verdict is Verdict.PASS
    assert before["label_issues"].verdict is Verdict.FAIL

    # The default re-judgement changes nothing.
    assert main(["rejudge", str(path)]) == ExitCode.OK
    assert _latest(path) == before

    # A looser alpha surfaces the stored slice (measure kept every slice with its p-value)...
    assert main(["rejudge", str(path), "--set", "error_slices.alpha=0.05"]) == ExitCode.OK
    slices = _latest(path)["error_slices"]
    assert slices.verdict is Verdict.WARN
    assert slices.effect_on("slice_failure").direction is Direction.SUPPORTS
    # ...and a stricter rate hides the label-noise finding the default raises.
    assert main(["rejudge", str(path), "--set", "label_issues.strong_rate=0.1"]) == ExitCode.OK
    labels = _latest(path)["label_issues"]
    assert labels.verdict is Verdict.WARN
    assert labels.effect_on("label_noise").strength is Strength.MODERATE


def test_rejudge_leaves_a_measurement_of_an_older_layout_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session stored before error_slices kept every slice (it stored `significant`/`worst`)
    is not re-judged into a crash: the finding stays, the message says to re-run the check."""
    import sqlite3

    path = _stored_session(tmp_path / "s")
    before = _latest(path)
    old = '{"split": "val", "n": 600, "errors": 44, "tested": 20, "significant": [], "worst": []}'
    with sqlite3.connect(path / "session.sqlite") as db:
        db.execute("UPDATE findings SET measurement=? WHERE check_id='error_slices'", (old,))
    assert main(["rejudge", str(path), "--set", "error_slices.alpha=0.05"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "error_slices: not re-judged" in out and "--only error_slices --rerun" in out
    assert _latest(path)["error_slices"] == before["error_slices"]


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("nosuch.alpha=0.1", "unknown check 'nosuch'"),
        ("error_slices.nosuch=0.1", "unknown key 'nosuch'"),
        ("error_slices.alpha=often", "expected a number"),
        ("error_slices.min_size=2.5", "expected an integer"),
        ("label_issues.shown=3", "is a setting of label_issues"),
        ("error_slices", "expected CHECK.KEY=VALUE"),
    ],
)
def test_rejudge_set_rejects_bad_overrides_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], assignment: str, message: str
) -> None:
    path = _stored_session(tmp_path / "s")
    before = _latest(path)
    assert main(["rejudge", str(path), "--set", assignment]) == ExitCode.USAGE
    assert message in capsys.readouterr().out
    assert _latest(path) == before  # nothing judged, nothing lost


# --- playbook overrides -------------------------------------------------------------------


def _playbook(tmp_path: Path, extra: str) -> Path:
    text = resolve_playbook(None).path.read_text(encoding="utf-8") + "\n" + extra
    path = tmp_path / "custom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_playbook_thresholds_are_honoured_by_the_run_and_by_rejudge(tmp_path: Path) -> None:
    strict = _playbook(tmp_path, "[checks.error_slices.thresholds]\nstrong_ratio = 100.0\n")
    pb = load_playbook(strict, set(all_checks()))
    default = _run(tmp_path / "a", ("error_slices",), tmp_path / "cache")["error_slices"]
    custom = _run(tmp_path / "b", ("error_slices",), tmp_path / "cache", pb)["error_slices"]
    assert default.verdict is Verdict.FAIL  # the planted dark slice
    assert custom.verdict is Verdict.WARN  # the same slice, not strong under the playbook
    assert custom.effect_on("slice_failure").strength is Strength.MODERATE

    # rejudge reads the session's playbook: a label-noise finding judged with strong_rate 0.1
    loose = _playbook(tmp_path, "[checks.label_issues.thresholds]\nstrong_rate = 0.1\n")
    path = _stored_session(tmp_path / "s", playbook=str(loose))
    assert _latest(path)["label_issues"].verdict is Verdict.FAIL  # saved with the defaults
    assert main(["rejudge", str(path)]) == ExitCode.OK
    assert _latest(path)["label_issues"].verdict is Verdict.WARN


def test_playbook_settings_are_honoured(tmp_path: Path) -> None:
    few = _playbook(tmp_path, "[checks.worst_examples.settings]\ncount = 3\n")
    pb = load_playbook(few, set(all_checks()))
    finding = _run(tmp_path / "a", ("worst_examples",), tmp_path / "cache", pb)["worst_examples"]
    assert all(len(t.rows) == 3 for t in finding.tables)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[checks.error_slices.thresholds]\nnosuch = 1\n", "unknown key 'nosuch'"),
        ('[checks.error_slices.thresholds]\nalpha = "often"\n', "expected a number"),
        ("[checks.nosuch.thresholds]\nalpha = 0.1\n", "names a check no stage runs"),
        ("[checks.error_slices.limits]\nalpha = 0.1\n", "only [thresholds] and [settings]"),
    ],
)
def test_invalid_check_overrides_in_a_playbook_name_the_file_and_line(
    tmp_path: Path, extra: str, message: str
) -> None:
    path = _playbook(tmp_path, extra)
    with pytest.raises(PlaybookError, match="custom.toml:[0-9]+: .*") as e:
        load_playbook(path, set(all_checks()))
    assert message in str(e.value)
