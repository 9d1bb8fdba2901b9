"""Evaluation-side interventions: each one recovers (or, for leakage, deflates) val accuracy on
a case with its planted cause, and leaves a clean case alone; the statistics; the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import CASES, context_for

from detective.core.session import Session
from detective.ui.cli import main
from detective.workflows.interventions import (
    INTERVENTIONS,
    Effect,
    InterventionError,
    drop_result,
    paired_result,
    parse_intervention,
    run_intervention,
    to_experiment,
)

DEMO = Path(__file__).parents[1] / "src" / "detective" / "casekit" / "demo" / "digits_case.py"
CLEAN = CASES / "digits_clean.py"

# (intervention, planted case, clean case); MIN_MOVE: the least signed change in the planted one
PLANTED = [
    ("transform=train", DEMO, CLEAN),
    ("channels=swap", CASES / "iv_rgb_swapped.py", CASES / "iv_rgb_clean.py"),
    ("normalize=measured", DEMO, CLEAN),
    ("normalize=declared", CASES / "iv_unscaled_eval.py", CLEAN),
    ("labels=remap", CASES / "iv_labels_shifted.py", CLEAN),
    ("mode=train", CASES / "iv_bn_stale.py", CLEAN),
    ("drop=near_twins", CASES / "iv_leaky.py", CLEAN),
    ("drop=corrupt", CASES / "iv_blank.py", CLEAN),
]
# Measured: the demo +3.1 points, swap +70, remap +66, stale BN +65, leakage −7.9, blanks +14.
MIN_MOVE = {
    "transform=train": 0.015,
    "normalize=measured": 0.015,
    "normalize=declared": 0.3,
    "channels=swap": 0.4,
    "labels=remap": 0.4,
    "mode=train": 0.4,
    "drop=near_twins": 0.04,
    "drop=corrupt": 0.07,
}


# Interventions whose planted and clean cases need a reported metric: tests/test_judgement.py.
WITH_REPORTED_METRIC = {"mode=eval", "metric=recomputed"}


def test_every_intervention_has_a_planted_and_a_clean_case() -> None:
    assert {p[0] for p in PLANTED} | WITH_REPORTED_METRIC == {i.id for i in INTERVENTIONS}


@pytest.mark.parametrize(("iid", "planted"), [p[:2] for p in PLANTED], ids=[p[0] for p in PLANTED])
def test_planted_cause_is_recovered(iid: str, planted: Path, tmp_path: Path) -> None:
    r = run_intervention(context_for(planted, tmp_path), iid)
    assert r.effect is Effect.RECOVERS, r.sentence
    assert r.p_value < 1e-3
    # In the predicted direction, by a margin, with the CI excluding zero on the same side.
    signed = r.delta * r.intervention.predicted
    assert signed > MIN_MOVE[iid], r.sentence
    assert (r.ci_low > 0) if r.intervention.predicted > 0 else (r.ci_high < 0)
    assert "moves val accuracy" in r.sentence


@pytest.mark.parametrize(("iid", "clean"), [(p[0], p[2]) for p in PLANTED],
                         ids=[p[0] for p in PLANTED])
def test_clean_case_shows_no_recovery(iid: str, clean: Path, tmp_path: Path) -> None:
    if iid == "labels=remap":
        # An identity permutation changes nothing: the intervention is not run (no evidence).
        with pytest.raises(InterventionError, match="nothing to remap"):
            run_intervention(context_for(clean, tmp_path), iid)
        return
    r = run_intervention(context_for(clean, tmp_path), iid)
    assert r.effect is not Effect.RECOVERS, r.sentence
    if iid == "channels=swap":
        # Reversing the channels of a correctly ordered input breaks it: never a recovery.
        assert r.delta < 0.01
    else:
        assert r.effect is Effect.NO_EFFECT, r.sentence
        assert abs(r.delta) < 0.01
        assert r.p_value > 0.2


def test_the_permutation_is_named_and_not_run_when_identity(tmp_path: Path) -> None:
    shifted = run_intervention(context_for(CASES / "iv_labels_shifted.py", tmp_path),
                               "labels=remap")
    assert any("3→4" in n and "8→9" in n for n in shifted.notes)
    # Train labels shuffled, val aligned: val's confusion is no permutation, so remapping val
    # cannot speak for (or against) the misalignment.
    shuffled = context_for(CASES / "label_misaligned_train.py", tmp_path / "s")
    with pytest.raises(InterventionError, match="identity on both halves"):
        run_intervention(shuffled, "labels=remap")


def test_near_twins_finds_exact_and_near_copies(tmp_path: Path) -> None:
    r = run_intervention(context_for(CASES / "iv_leaky.py", tmp_path), "drop=near_twins")
    assert r.dropped == 80  # 40 copies + 40 darker copies; none of the 150 real val images
    assert r.n_after == 150


def test_mcnemar_and_ci_on_known_tables() -> None:
    it = parse_intervention("eval.mode=train")
    before = np.array([True] * 50 + [False] * 50)
    after = np.array([True] * 50 + [True] * 30 + [False] * 20)
    r = paired_result(it, before, after)
    assert (r.fixed, r.broken) == (30, 0)
    assert r.p_value == pytest.approx(2 * 0.5**30)  # exact two-sided binomial on 30 vs 0
    assert r.ci_low > 0.2 and r.ci_high < 0.4 and r.delta == pytest.approx(0.3)
    same = paired_result(it, before, before)
    assert same.p_value == 1.0 and same.effect is Effect.NO_EFFECT
    # Balanced discordant pairs: a large turnover with no net change is no effect.
    swapped = paired_result(it, before, ~before)
    assert swapped.delta == 0 and swapped.effect is Effect.NO_EFFECT


def test_drop_result_nothing_to_drop_and_opposite_direction() -> None:
    it = parse_intervention("drop=near_twins")
    ok = np.array([True] * 80 + [False] * 20)
    nothing = drop_result(it, ok, np.zeros(100, bool))
    assert nothing.p_value == 1.0 and nothing.delta == 0 and nothing.dropped == 0
    # Dropping wrong items raises accuracy: against leakage's prediction, so "opposite".
    wrong = drop_result(it, ok, ~ok)
    assert wrong.effect is Effect.OPPOSITE


def test_unknown_or_inapplicable_interventions_are_named(tmp_path: Path) -> None:
    with pytest.raises(InterventionError, match="known: eval.transform=train"):
        parse_intervention("eval.transform=test")
    with pytest.raises(InterventionError, match="3-channel"):
        run_intervention(context_for(CLEAN, tmp_path), "channels=swap")
    with pytest.raises(InterventionError, match="raw_datasets"):
        run_intervention(context_for(CASES / "iv_bn_stale.py", tmp_path), "transform=train")


def test_experiment_record_carries_the_sentence(tmp_path: Path) -> None:
    r = run_intervention(context_for(DEMO, tmp_path), "transform=train")
    e = to_experiment(r)
    assert e.changes == ("eval.transform=train",) and e.metric == "val_acc"
    assert e.verdict == "recovers" and r.sentence in e.notes
    assert e.after > e.before


def test_cli_fixes_the_demo_in_one_command_and_records_it(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    sess = tmp_path / "demo"
    code = main(["experiment", str(DEMO), "--set", "eval.transform=train",
                 "--session", str(sess), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "evaluating with the train transform moves val accuracy" in out
    assert "recovers" in out and "recorded as experiment #1" in out
    # Replayed on the session itself; the log holds both, each with its measured effect.
    assert main(["experiment", str(sess), "--set", "eval.normalize=measured"]) == 0
    with Session.open(sess, readonly=True) as s:
        log = s.experiments()
    assert [e.name for e in log] == ["eval.transform=train", "eval.normalize=measured"]
    assert all(e.after - e.before > 0.015 for e in log)


def test_cli_refuses_bad_intervention_usage(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["experiment", str(DEMO), "--set", "eval.transform=nope"]) == 2
    assert main(["experiment", str(DEMO), "--set", "eval.mode=train",
                 "--set", "train.lr=1e-3"]) == 2
    assert main(["experiment", str(tmp_path / "missing.py"), "--set", "eval.mode=train"]) == 4
    out = capsys.readouterr().out
    assert "unknown evaluation intervention" in out and "one --set eval." in out
    assert "Traceback" not in out


def test_a_failing_train_transform_is_a_case_error_naming_the_item(tmp_path: Path) -> None:
    from detective.core.case import CaseError

    ctx = context_for(CLEAN, tmp_path)
    broken = {"train": lambda _image: 1 / 0, "eval": ctx.case.transforms()["eval"]}
    ctx.case.transforms = lambda: broken  # type: ignore[method-assign]
    with pytest.raises(CaseError, match="raw val item 0: ZeroDivisionError"):
        run_intervention(ctx, "transform=train")
