"""The diagnosis benchmark's family breakdown: leave-one-family-out aggregates and the baseline
gate on held-out families (benchmarks/diagnose.py, loaded from its path; no case is run)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "diagnose.py"


@pytest.fixture(scope="module")
def diagnose():
    spec = importlib.util.spec_from_file_location("bench_diagnose", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_diagnose"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def _results(d, shapes_hits: int):
    r = d.CaseResult
    rows = [
        r("d1", "lr_too_high", None, "completed", ("lr_too_high",), family="digits"),
        r("d2", "label_noise", None, "completed", ("label_noise",), family="digits"),
        r("dc", None, None, "completed", (), family="digits"),
        r("pc", None, None, "completed", ("slice_failure",), family="photos"),
    ]
    for i in range(4):
        supported = ("label_noise",) if i < shapes_hits else ("distribution_shift",)
        rows.append(r(f"s{i}", "label_noise", None, "completed", supported, family="shapes"))
    return rows


def test_held_out_families_are_scored_apart_from_the_dev_family(diagnose) -> None:
    view = diagnose.family_view(_results(diagnose, shapes_hits=1), ("digits",))
    assert view.held_out_families == ("photos", "shapes")
    assert view.in_family.bug_cases == 2 and view.in_family.top1 == 1.0
    assert view.held_out.bug_cases == 4 and view.held_out.top1 == 0.25
    assert view.held_out.false_alarms == 1 and view.in_family.false_alarms == 0
    assert view.families["shapes"].top1 == 0.25
    # naming shapes a development family moves it in-family
    moved = diagnose.family_view(_results(diagnose, shapes_hits=1), ("digits", "shapes"))
    assert moved.held_out_families == ("photos",) and moved.in_family.bug_cases == 6


def test_baseline_gate_catches_a_held_out_regression_and_passes_a_held_run(
    diagnose, tmp_path: Path
) -> None:
    recorded = _results(diagnose, shapes_hits=3)
    names = [r.name for r in recorded]
    view = diagnose.family_view(recorded, ("digits",))
    base = tmp_path / "baseline.json"
    base.write_text(
        json.dumps(
            {
                "cases": names,
                "top1": diagnose.score(recorded).top1,
                "false_alarms": 1,
                "dev_families": ["digits"],
                "held_out": {"top1": view.held_out.top1, "false_alarms": 1},
            }
        )
    )
    same = diagnose.score(recorded)
    assert diagnose.check_baseline(base, same, names, view) == []
    worse = _results(diagnose, shapes_hits=1)  # two held-out hits lost
    problems = diagnose.check_baseline(
        base, diagnose.score(worse), names, diagnose.family_view(worse, ("digits",))
    )
    assert any("held-out-family top-1" in p for p in problems)
    other_dev = diagnose.family_view(recorded, ("digits", "shapes"))
    assert any("in-family" in p for p in diagnose.check_baseline(base, same, names, other_dev))


def test_every_case_file_declares_its_family(diagnose) -> None:
    cases = diagnose.discover(diagnose.CASES_DIR, None)
    assert len(cases) >= 40
    undeclared = [p.stem for p in cases if diagnose._declared(p)[2] == "unspecified"]
    assert undeclared == []
    families = {diagnose._declared(p)[2] for p in cases}
    assert {"digits", "shapes", "photos", "textures"} <= families


def test_the_top_of_the_ledger_is_the_first_supported_else_the_first_inconclusive(
    diagnose,
) -> None:
    r = diagnose.CaseResult
    supported_right = r("a", "label_noise", None, "completed", ("label_noise", "overfitting"))
    # something else is supported: an inconclusive right answer does not count
    supported_wrong = r("b", "label_noise", None, "completed", ("shift",), ("label_noise",))
    only_inconclusive = r("c", "label_noise", None, "completed", (), ("label_noise", "x"))
    inconclusive_wrong = r("d", "label_noise", None, "completed", (), ("x", "label_noise"))
    assert [x.top1_any for x in (supported_right, supported_wrong, only_inconclusive)] == [
        True, False, True,
    ]  # fmt: skip
    assert not inconclusive_wrong.top1_any
    assert [x.top1 for x in (supported_right, only_inconclusive)] == [True, False]
    quiet = r("q", None, None, "completed", (), ("slice_failure",))
    alarm = r("z", None, None, "completed", ("slice_failure",))
    assert not quiet.false_alarm and alarm.false_alarm and not quiet.top1_any
    s = diagnose.score(
        [supported_right, supported_wrong, only_inconclusive, inconclusive_wrong, quiet, alarm]
    )
    assert (s.bug_cases, s.controls, s.false_alarms) == (4, 2, 1)
    assert s.top1 == 0.25 and s.top1_any == 0.5


def test_the_intervention_sentence_of_the_top_entry_prefers_one_that_recovers(diagnose) -> None:
    from detective.core.findings import Finding, InterventionOutcome, Moved, Side, Verdict

    def outcome(hyp: str, after: float, effect: Moved) -> InterventionOutcome:
        return InterventionOutcome(
            hyp, "eval.transform=train", Side.EVAL, "evaluating with the train transform",
            "val_acc", 0.263, after, 0.6, 0.7, 1e-9, "McNemar", effect, n=450,
        )  # fmt: skip

    findings = [
        Finding("a", Verdict.WARN, "", interventions=(outcome("x", 0.27, Moved.NO_EFFECT),)),
        Finding("b", Verdict.FAIL, "", interventions=(outcome("x", 0.914, Moved.RECOVERS),)),
    ]
    sentence = diagnose.intervention_sentence(findings, "x")
    assert sentence == findings[1].interventions[0].sentence  # the one that recovers, as written
    assert "91.4" in sentence
    assert diagnose.intervention_sentence(findings, "y") == ""
    assert diagnose.intervention_sentence(findings, None) == ""


def test_stored_results_are_reused_only_for_an_unchanged_case_file(
    diagnose, tmp_path: Path
) -> None:
    from dataclasses import asdict

    cases, runs = tmp_path / "cases", tmp_path / "run"
    cases.mkdir()
    runs.mkdir()
    case = cases / "one.py"
    case.write_text("EXPECTED = 'label_noise'\nFAMILY = 'digits'\n")
    done = diagnose.CaseResult(
        "one", "label_noise", None, "completed", ("label_noise",), family="digits",
        case_sha=diagnose.case_sha(case),
    )  # fmt: skip
    (runs / "one.json").write_text(json.dumps(asdict(done) | {"from_a_newer_version": 1}))
    assert diagnose.stored_result(case, runs) == done  # unknown keys are tolerated
    case.write_text("EXPECTED = 'label_noise'\nFAMILY = 'digits'\n# edited\n")
    assert diagnose.stored_result(case, runs) is None  # the file changed: run it again
    (runs / "one.json").write_text("{half a fi")
    assert diagnose.stored_result(case, runs) is None


def test_merge_scores_several_runs_and_families_filter_selects(diagnose, tmp_path: Path) -> None:
    from dataclasses import asdict

    r = diagnose.CaseResult
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "d1.json").write_text(json.dumps(asdict(r("d1", "x", None, "crashed"))))
    (second / "d1.json").write_text(json.dumps(asdict(r("d1", "x", None, "completed", ("x",)))))
    (second / "p1.json").write_text(json.dumps(asdict(r("p1", None, None, "completed"))))
    (second / "other.json").write_text(json.dumps(asdict(r("other", None, None, "completed"))))
    merged = diagnose.merged_results([first, second], {"d1", "p1"})
    assert [(m.name, m.status) for m in merged] == [("d1", "completed"), ("p1", "completed")]

    cases = diagnose.discover(diagnose.CASES_DIR, None, ["resnet"])
    assert cases and all(diagnose._declared(p)[2] == "resnet" for p in cases)
    with pytest.raises(ValueError, match="unknown family"):
        diagnose.discover(diagnose.CASES_DIR, None, ["nosuchfamily"])
    with pytest.raises(SystemExit) as exit_:
        diagnose.main(["--families", "nosuchfamily"])
    assert exit_.value.code == 2
