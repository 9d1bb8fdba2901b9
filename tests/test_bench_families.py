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
