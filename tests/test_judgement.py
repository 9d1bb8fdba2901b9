"""Judgement by intervention: the `interventions` check, Holm's correction, the gap share, and the
whole run — a planted cause is supported with the change that moved the metric; a clean model gets
nothing supported."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import context_for

from detective.checks.judgement.interventions import (
    Candidate,
    Interventions,
    InterventionsMeasurement,
    InterventionThresholds,
    candidates,
    gap_share,
    holm,
)
from detective.core.findings import (
    Finding,
    InterventionOutcome,
    Moved,
    Side,
    Strength,
    Verdict,
    supports,
)
from detective.ui.cli import main
from detective.workflows.interventions import InterventionError, run_intervention

CASES = Path(__file__).parent / "cases"
DEMO = Path(__file__).parents[1] / "src" / "detective" / "casekit" / "demo" / "digits_case.py"


def outcome(h: str, before: float, after: float, p: float, predicted: int = 1,
            effect: Moved = Moved.RECOVERS) -> InterventionOutcome:
    d = after - before
    return InterventionOutcome(h, "eval.x=y", Side.EVAL, "changing x", "val_acc", before, after,
                               d - 0.01, d + 0.01, p, "t", effect, predicted=predicted)


def test_holm_keeps_the_family_wise_error() -> None:
    outs = [outcome("a", 0.5, 0.9, 0.001), outcome("b", 0.5, 0.9, 0.02),
            outcome("c", 0.5, 0.9, 0.04)]
    # 0.001 ≤ 0.05/3; 0.02 ≤ 0.05/2; 0.04 ≤ 0.05/1
    assert holm(outs, 0.05) == [True, True, True]
    outs[1] = outcome("b", 0.5, 0.9, 0.03)  # 0.03 > 0.025: it and everything after stop
    assert holm(outs, 0.05) == [True, False, False]


def test_gap_share_rising_and_falling() -> None:
    # 31 % → 92 % with train at 95 %: 61 of the 64 points of the train–val gap
    assert gap_share(outcome("h", 0.31, 0.92, 1e-9), 0.95, 0.1) == pytest.approx(61 / 64)
    # val above train: the gap is to 100 %
    assert gap_share(outcome("h", 0.80, 0.90, 1e-9), 0.70, 0.1) == pytest.approx(0.5)
    # train a hair above val (within the seeds' noise) is no gap either: not "100 % recovered"
    assert gap_share(outcome("h", 0.22, 0.53, 1e-9), 0.225, 0.1) == pytest.approx(31 / 78)
    assert gap_share(outcome("h", 0.22, 0.53, 1e-9), 0.215, 0.1) == pytest.approx(31 / 78)
    # leakage: dropping twins takes 0.6 → 0.45 with chance 0.1: 30 % of the above-chance part
    drop = outcome("train_val_leakage", 0.6, 0.45, 1e-9, predicted=-1)
    assert gap_share(drop, 0.99, 0.1) == pytest.approx(0.3)
    assert gap_share(outcome("h", 0.5, 0.5, 1.0, effect=Moved.NO_EFFECT), 0.9, 0.1) is None


def test_judge_demotes_tiny_or_uncorrected_effects() -> None:
    m = InterventionsMeasurement(
        candidates=(Candidate("preprocessing_parity", 1.0, ("x",)),
                    Candidate("label_noise", 1.0, ("y",)), Candidate("lr_too_low", 1.0, ("z",))),
        outcomes=(
            outcome("preprocessing_parity", 0.60, 0.90, 1e-9),
            outcome("label_noise", 0.900, 0.905, 1e-4),  # significant but 0.5 points
            outcome("lr_too_low", 0.60, 0.70, 0.04),  # 0.04 > 0.05/2 (Holm's third step)
            outcome("exploding_gradients", 0.60, 0.70, 0.045),  # after a failed step: none
        ),
        skipped=(), descriptions=("slice_failure",), reference=0.95, chance=0.1,
    )
    f = Interventions(InterventionThresholds()).judge(m)
    by = {o.hypothesis: o for o in f.interventions}
    assert by["preprocessing_parity"].effect is Moved.RECOVERS
    assert by["preprocessing_parity"].gap_share == pytest.approx(30 / 35)
    assert by["label_noise"].effect is Moved.NO_EFFECT
    # Not significant after Holm, yet its CI holds a 10-point gain: demoted, but not to a
    # "no effect" that would rank the cause as tested and unmoved.
    assert by["lr_too_low"].effect is Moved.INCONCLUSIVE
    assert f.verdict is Verdict.FAIL and "preprocessing_parity" in f.summary
    assert [e.hypothesis for e in f.effects if e.direction.value == "supports"] == [
        "preprocessing_parity"
    ]
    assert "Descriptions, not causes: slice_failure" in f.summary


def test_an_inconclusive_outcome_neither_supports_nor_refutes() -> None:
    # Two identical measurements whose CI excludes a gain: measured in full, "no effect" refutes
    # the cause; cut short by the budget (inconclusive), it says nothing about it.
    def m(effect: Moved) -> InterventionsMeasurement:
        o = InterventionOutcome("frozen_parameters", "hook.optimizer=default", Side.TRAIN,
                                "x", "val_acc", 0.84, 0.42, -0.50, -0.35, 1e-8, "t", effect)
        return InterventionsMeasurement(
            candidates=(Candidate("frozen_parameters", 1.0, ("x",)),), outcomes=(o,),
            skipped=(), descriptions=(), reference=0.95, chance=0.1,
        )

    def directions(f: Finding) -> list[str]:
        return [e.direction.value for e in f.effects if e.hypothesis == "frozen_parameters"]

    judge = Interventions(InterventionThresholds()).judge
    assert directions(judge(m(Moved.NO_EFFECT))) == ["refutes"]
    cut = judge(m(Moved.INCONCLUSIVE))
    assert directions(cut) == []
    assert [o.effect for o in cut.interventions] == [Moved.INCONCLUSIVE]


def test_candidates_exclude_descriptions_and_refuted() -> None:
    fs = (
        Finding("a", Verdict.FAIL, "", effects=(supports("slice_failure", Strength.STRONG, "r"),
                                                supports("label_noise", Strength.WEAK, "r"))),
        Finding("b", Verdict.FAIL, "", effects=(supports("lr_too_high", Strength.STRONG, "r"),)),
        Finding("c", Verdict.ERROR, "", effects=(supports("dead_units", Strength.STRONG, "r"),)),
    )
    found, descriptions = candidates(fs)
    assert [c.hypothesis for c in found] == ["lr_too_high", "label_noise"]  # strongest first
    assert descriptions == ["slice_failure"]


# --- the two interventions that read the reported metric ----------------------------------------
def test_mode_eval_recovers_a_model_stuck_in_train_mode(tmp_path: Path) -> None:
    r = run_intervention(context_for(CASES / "errors_train_mode.py", tmp_path), "mode=eval")
    # measured +2.0 points (BN batch statistics at batch 256 are close to the running ones)
    assert r.effect is Moved.RECOVERS and r.delta > 0.008 and r.p_value < 0.02, r.sentence


def test_mode_eval_recovers_a_loop_that_forgot_eval(tmp_path: Path) -> None:
    import errors_eval_forgotten as planted

    ctx = context_for(CASES / "errors_eval_forgotten.py", tmp_path,
                      reported_metric=planted.reported())
    r = run_intervention(ctx, "mode=eval")
    assert r.effect is Moved.RECOVERS and r.delta > 0.05, r.sentence


def test_mode_eval_has_nothing_to_remove_on_a_clean_model(tmp_path: Path) -> None:
    ctx = context_for(CASES / "digits_clean.py", tmp_path)
    with pytest.raises(InterventionError, match="nothing to remove"):
        run_intervention(ctx, "mode=eval")
    honest = context_for(CASES / "digits_clean.py", tmp_path / "a", reported_metric=0.5)
    v = run_intervention(honest, "metric=recomputed")  # its `after`: the honest number
    ctx2 = context_for(CASES / "digits_clean.py", tmp_path / "b", reported_metric=v.after)
    with pytest.raises(InterventionError, match="nothing to remove"):
        run_intervention(ctx2, "mode=eval")


def test_metric_recomputed_planted_and_clean(tmp_path: Path) -> None:
    import errors_eval_forgotten as planted

    reported = planted.reported()
    bad = run_intervention(context_for(CASES / "errors_eval_forgotten.py", tmp_path,
                                       reported_metric=reported), "metric=recomputed")
    assert bad.effect is Moved.RECOVERS and bad.after - reported > 0.05, bad.sentence
    ctx = context_for(CASES / "digits_clean.py", tmp_path / "c", reported_metric=0.5)
    honest = run_intervention(ctx, "metric=recomputed").after
    ok = run_intervention(context_for(CASES / "digits_clean.py", tmp_path / "d",
                                      reported_metric=honest), "metric=recomputed")
    assert ok.effect is Moved.NO_EFFECT and ok.p_value > 0.5


# --- end to end through the CLI -----------------------------------------------------------------
def _run(case: Path, session: Path, only: str, *extra: str) -> int:
    return main(["run", str(case), "--session", str(session), "--device", "cpu",
                 "--only", only, *extra])


def _report(session: Path, tmp_path: Path) -> dict:
    out = tmp_path / "r.json"
    assert main(["export", str(session), "--format", "json", "-o", str(out)]) == 0
    return json.loads(out.read_text())


def test_a_planted_cause_is_supported_with_what_moved_the_metric(tmp_path: Path) -> None:
    s = tmp_path / "s"
    assert _run(DEMO, s, "preprocessing_parity,normalization_mismatch", "--strict") == 1
    report = _report(s, tmp_path)
    top = report["hypotheses"][0]
    assert top["status"] == "supported" and top["hypothesis_id"] == "preprocessing_parity"
    proof = top["proof"]
    assert proof["label"] == "eval.transform=train" and proof["after"] > proof["before"] + 0.015
    assert proof["p_value"] < 1e-3 and 0 < proof["gap_share"] <= 1
    assert "moves val accuracy" in proof["sentence"]
    for h in report["hypotheses"]:  # every supported hypothesis carries its intervention
        assert (h["proof"] is not None) == (h["status"] == "supported")


def test_darker_raw_val_images_are_a_described_shift_not_a_pipeline_cause(
    tmp_path: Path,
) -> None:
    """The raw val images differ (not the pipeline): the shift is reported as a description
    with its evidence, and no pipeline cause is supported for it."""
    s = tmp_path / "s"
    assert _run(CASES / "shift_dark_val.py", s, "normalization_mismatch", "--strict") == 0
    report = _report(s, tmp_path)
    assert not [h for h in report["hypotheses"] if h["status"] == "supported"]
    by = {h["hypothesis_id"]: h for h in report["hypotheses"]}
    assert by["distribution_shift"]["status"] == "inconclusive"
    assert by["distribution_shift"]["score"] > 0
    assert by["preprocessing_parity"]["status"] == "refuted"


def test_a_clean_model_gets_nothing_supported(tmp_path: Path) -> None:
    s = tmp_path / "s"
    assert _run(CASES / "digits_clean.py", s,
                "preprocessing_parity,normalization_mismatch,baselines", "--strict") == 0
    report = _report(s, tmp_path)
    assert not [h for h in report["hypotheses"] if h["status"] == "supported"]
    judged = [f["finding"] for f in report["findings"]
              if f["finding"]["check_id"] == "interventions"]
    assert judged and judged[0]["verdict"] == "pass"


_UNDERFIT_AND_LR = (
    Finding("capacity", Verdict.FAIL, "", effects=(
        supports("underfitting", Strength.STRONG, "r"),
        supports("underfitting", Strength.STRONG, "r"))),
    Finding("loss_curve", Verdict.FAIL, "", effects=(
        supports("lr_too_high", Strength.STRONG, "r"),)),
)


def _judge_with(
    monkeypatch: pytest.MonkeyPatch,
    after: Callable[[str], tuple[float, float]],
    findings: tuple[Finding, ...],
) -> tuple[list[str], InterventionsMeasurement]:
    """The judgement with every training-side intervention faked: 0.5 → `after(hypothesis)`'s
    accuracy at its p-value, train accuracy 0.95, chance 0.1. The labels run, the measurement."""
    import detective.checks.judgement.interventions as judgement
    import detective.workflows.training_interventions as training
    from detective.core.progress import Progress
    from detective.workflows.interventions import InterventionResult

    ran: list[str] = []

    def fake(_ctx, it, **_):  # noqa: ANN001, ANN202
        ran.append(it.label)
        up, p = after(it.hypothesis)
        return InterventionResult(it, "val_acc", 0.5, up, 400, 400, up - 0.55, up - 0.45, p, "t",
                                  seeds=3)

    monkeypatch.setattr(training, "run_training_intervention", fake)
    monkeypatch.setattr(judgement, "_reference", lambda _ctx, _n: (0.95, 0.1))

    class Ctx:
        budget = None
        prior_findings = findings

    return ran, Interventions().measure(Ctx(), Progress())  # type: ignore[arg-type]


def test_generic_retraining_waits_until_the_gap_is_unexplained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More epochs would 'recover' any undertrained model: it runs after the specific causes,
    and not at all once they explain the gap."""
    ran, m = _judge_with(monkeypatch, lambda _h: (0.94, 1e-9), _UNDERFIT_AND_LR)
    assert ran == ["train.lr=/10"]  # the specific cause first; it explains 98 % of the gap
    assert {s.label for s in m.skipped} >= {"train.epochs=x2"}
    assert all("already explained" in s.reason or "is proven" in s.reason
               for s in m.skipped if s.hypothesis == "underfitting")


def test_no_retraining_for_a_symptom_whose_proven_cause_explains_the_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proven cause recovering 60 % of the gap (below the 90 % that stops all retraining)
    ranks above the underfitting it produces whatever retraining finds: the generic retraining
    is not run. An unrelated cause is still tested; a weakly proven cause skips nothing."""
    findings = (*_UNDERFIT_AND_LR, Finding("per_class_report", Verdict.WARN, "", effects=(
        supports("class_imbalance", Strength.MODERATE, "r"),)))

    def lr_moves(to: float) -> Callable[[str], tuple[float, float]]:
        return lambda h: (to, 1e-9) if h == "lr_too_high" else (0.52, 0.5)

    ran, m = _judge_with(monkeypatch, lr_moves(0.77), findings)  # 0.27 of a 0.45 gap: 60 %
    assert "train.lr=/10" in ran and "train.class_weight=balanced" in ran
    assert not {"train.epochs=x2", "model.width=x2"} & set(ran)
    assert all("lr_too_high, which produces underfitting, is proven" in s.reason
               for s in m.skipped if s.hypothesis == "underfitting")
    ran, _ = _judge_with(monkeypatch, lr_moves(0.60), findings)  # 22 % of the gap: it runs
    assert "train.epochs=x2" in ran


def test_training_side_skipped_when_its_time_is_spent_says_how_to_run_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import detective.checks.judgement.interventions as judgement
    import detective.workflows.training_interventions as training
    from detective.checks.judgement.interventions import InterventionSettings
    from detective.core.progress import Progress

    ran: list[str] = []

    def fake(_ctx, it, **_):  # noqa: ANN001, ANN202
        ran.append(it.label)
        raise AssertionError("no training-side intervention may start")

    monkeypatch.setattr(training, "run_training_intervention", fake)
    monkeypatch.setattr(judgement, "_reference", lambda _ctx, _n: (0.95, 0.1))

    class Ctx:
        budget = None
        prior_findings = (Finding("loss_curve", Verdict.FAIL, "", effects=(
            supports("lr_too_high", Strength.STRONG, "r"),)),)

    check = Interventions(settings=InterventionSettings(max_seconds=-1.0))  # already spent
    m = check.measure(Ctx(), Progress())  # type: ignore[arg-type]
    assert not ran and not m.outcomes
    [skip] = [s for s in m.skipped if s.label == "train.lr=/10"]
    assert "--budget MIN" in skip.reason
    assert "detective experiment CASE --set train.lr=/10" in skip.reason


@pytest.mark.parametrize(
    ("before", "after", "effect", "removes"),
    [
        (0.6, 0.05, Moved.RECOVERS, ("dead_units",)),  # the LR fix revives the dead units
        (0.6, 0.5, Moved.RECOVERS, ()),  # it recovers val but the units stay dead
        (0.1, 0.0, Moved.RECOVERS, ()),  # there were hardly any dead units to remove
        (0.6, 0.05, Moved.NO_EFFECT, ()),  # no proof: nothing is removed
    ],
)
def test_a_recovering_change_removes_a_consequence_only_when_it_halves_its_marker(
    before: float, after: float, effect: Moved, removes: tuple[str, ...]
) -> None:
    from dataclasses import replace

    from detective.core.findings import ConsequenceMarker

    o = replace(
        outcome("lr_too_high", 0.2, 0.55, 1e-9, effect=effect),
        markers=(ConsequenceMarker("dead_units", "share of dead ReLU units", before, after),),
    )
    m = InterventionsMeasurement((), (o,), (), (), 0.95, 0.1)
    (judged,) = Interventions().judged(m)
    assert judged.removes == removes
    assert any("removes dead_units" in n for n in judged.notes) is bool(removes)


@pytest.mark.parametrize(
    ("ci", "effect"),
    [
        # Dropping 35 twins: val 84.0 → 80.9 %, p = 0.07, CI −8 … +1: a real fall is not ruled out.
        ((-0.08, 0.01), Moved.INCONCLUSIVE),
        # A CI that rules out a 2-point fall is a measured "no effect".
        ((-0.015, 0.01), Moved.NO_EFFECT),
    ],
)
def test_an_underpowered_evaluation_side_no_effect_is_inconclusive(
    ci: tuple[float, float], effect: Moved
) -> None:
    from dataclasses import replace

    o = replace(outcome("train_val_leakage", 0.84, 0.809, 0.067, predicted=-1,
                        effect=Moved.NO_EFFECT), ci_low=ci[0], ci_high=ci[1])
    (judged,) = Interventions().judged(InterventionsMeasurement((), (o,), (), (), 0.99, 0.17))
    assert judged.effect is effect
    assert any("underpowered" in n for n in judged.notes) is (effect is Moved.INCONCLUSIVE)
