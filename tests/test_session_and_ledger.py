import sqlite3
import time
from pathlib import Path

import pytest

from detective.core.context import RunOptions
from detective.core.findings import (
    Finding,
    InterventionOutcome,
    Moved,
    Side,
    Strength,
    Verdict,
    refutes,
    supports,
)
from detective.core.ledger import build_ledger, session_ledger
from detective.core.session import (
    Experiment,
    HypothesisStatus,
    ReviewVerdict,
    Session,
    SessionError,
    SessionInfo,
)


def new_session(path: Path) -> Session:
    info = SessionInfo(
        "s",
        "/x/case.py",
        "abc",
        "train_high_val_low",
        "vision-classification",
        RunOptions(device="cpu", sample=10),
        time.time(),
    )
    return Session.create(path, info)


def finding(check: str, *effects, verdict: Verdict = Verdict.FAIL) -> Finding:
    return Finding(check, verdict, "summary", effects=tuple(effects))


def outcome(hypothesis: str, effect: Moved = Moved.RECOVERS, share: float = 0.8):
    return InterventionOutcome(
        hypothesis, "eval.x=y", Side.EVAL, "changing x", "val_acc", 0.5, 0.5 + 0.4 * share,
        0.1, 0.5, 1e-6, "exact McNemar", effect, gap_share=share,
    )


def proof(hypothesis: str, effect: Moved = Moved.RECOVERS, share: float = 0.8) -> Finding:
    o = outcome(hypothesis, effect, share)
    proven = effect is Moved.RECOVERS
    effects = (supports(hypothesis, Strength.STRONG, o.sentence),) if proven else ()
    return Finding("interventions", Verdict.FAIL, "s", effects=effects, interventions=(o,))


def test_roundtrip_and_latest_per_check(tmp_path: Path) -> None:
    with new_session(tmp_path / "s") as s:
        s.save_finding(finding("a", supports("overfitting", Strength.WEAK, "r")), "fp")
        s.save_finding(
            finding("a", supports("overfitting", Strength.STRONG, "r2")), "fp", {"gap": 0.3}
        )
        s.save_finding(finding("b"), "other-fp")
    with Session.open(tmp_path / "s") as s:
        assert s.info.options.sample == 10 and s.info.symptom == "train_high_val_low"
        latest = s.findings(fingerprint="fp")
        assert [f.check_id for f in latest] == ["a"]
        assert latest[0].finding.effects[0].strength is Strength.STRONG
        assert latest[0].measurement == {"gap": 0.3}
        assert s.done_checks("fp") == {"a"}
        assert len(s.findings(latest=False)) == 3


def test_status_rules_are_honest() -> None:
    from detective.core.session import StoredFinding

    def stored(i, f):
        return StoredFinding(i, f.check_id, "fp", f, None, 0.0)

    entries = build_ledger(
        [
            stored(1, finding("a", supports("label_noise", Strength.STRONG, "12% flagged"))),
            stored(2, finding("b", supports("overfitting", Strength.MODERATE, "gap 8 pts"))),
            stored(3, finding("c", refutes("dead_units", Strength.MODERATE, "0% dead"))),
            stored(
                4,
                finding(
                    "d",
                    supports("lr_too_high", Strength.STRONG, "x"),
                    refutes("lr_too_high", Strength.STRONG, "y"),
                    refutes("lr_too_high", Strength.WEAK, "z"),
                ),
            ),
            stored(
                5,
                finding(
                    "e",
                    supports("slice_failure", Strength.STRONG, "crashed"),
                    verdict=Verdict.ERROR,
                ),
            ),
            stored(6, finding("f", supports("dead_units", Strength.STRONG, "60% dead"))),
            stored(7, proof("label_noise")),
            stored(8, proof("dead_units", Moved.NO_EFFECT)),
        ]
    )
    by = {e.hypothesis_id: e for e in entries}
    assert by["label_noise"].status is HypothesisStatus.SUPPORTED
    assert by["label_noise"].proof is not None and by["label_noise"].gap_share == 0.8
    assert (
        by["overfitting"].status is HypothesisStatus.INCONCLUSIVE
    )  # a description is never supported
    # strong evidence whose intervention did not move the metric stays inconclusive
    assert by["dead_units"].status is HypothesisStatus.INCONCLUSIVE
    assert by["lr_too_high"].status is HypothesisStatus.INCONCLUSIVE  # conflicting evidence
    assert by["slice_failure"].status is HypothesisStatus.OPEN  # an error is never evidence
    assert entries[0].hypothesis_id == "label_noise"


def test_strong_evidence_without_an_intervention_is_never_supported() -> None:
    from detective.core.session import StoredFinding

    entries = build_ledger(
        [StoredFinding(1, "a", "fp", finding("a", supports("underfitting", Strength.STRONG,
                                                              "a pixel LR is within 1.3 points")),
                       None, 0.0)]
    )
    (top,) = [e for e in entries if e.evidence]
    assert top.status is HypothesisStatus.INCONCLUSIVE and top.proof is None


def test_a_cause_ranks_above_its_consequence_by_gap_share() -> None:
    """Unscaled inputs make the LR look too high: both have evidence and both interventions
    move the metric, but removing the cause recovers most of the gap."""
    from detective.core.session import StoredFinding

    rows = [
        finding("a", supports("lr_too_high", Strength.STRONG, "loss oscillates")),
        finding("b", supports("normalization_mismatch", Strength.MODERATE, "inputs 0-255")),
        finding("c", supports("slice_failure", Strength.STRONG, "dark images fail")),
        proof("lr_too_high", share=0.3),
        proof("normalization_mismatch", share=0.9),
    ]
    entries = build_ledger([StoredFinding(i, f.check_id, "fp", f, None, 0.0)
                            for i, f in enumerate(rows)])
    ranked = [e.hypothesis_id for e in entries if e.evidence]
    assert ranked[:2] == ["normalization_mismatch", "lr_too_high"]
    by = {e.hypothesis_id: e for e in entries}
    assert by["slice_failure"].status is HypothesisStatus.INCONCLUSIVE
    assert by["slice_failure"].explained_by == "normalization_mismatch"


@pytest.mark.parametrize("removed", [True, False])
def test_a_cause_whose_fix_removes_its_consequence_ranks_above_it(removed: bool) -> None:
    """Adam at 0.2 kills ReLUs: LeakyReLU at that LR recovers 87 % of the gap, the LR ÷100 in a
    short run only 40 %. When the LR fix also revives the dead units (it removes the
    consequence's marker), the LR is the cause whatever its share; when it does not, the
    consequence's own, larger recovery ranks first."""
    from dataclasses import replace

    from detective.core.session import StoredFinding

    lr = proof("lr_too_high", share=0.4)
    o = replace(lr.interventions[0], removes=("dead_units",) if removed else ())
    rows = [
        finding("a", supports("lr_too_high", Strength.STRONG, "range test")),
        finding("b", supports("dead_units", Strength.STRONG, "60 % dead")),
        replace(lr, interventions=(o,)),
        proof("dead_units", share=0.87),
    ]
    entries = build_ledger([StoredFinding(i, f.check_id, "fp", f, None, 0.0)
                            for i, f in enumerate(rows)])
    ranked = [e.hypothesis_id for e in entries if e.evidence][:2]
    assert ranked == (["lr_too_high", "dead_units"] if removed else ["dead_units", "lr_too_high"])


def test_manual_status_notes_user_hypotheses_and_reviews(tmp_path: Path) -> None:
    with new_session(tmp_path / "s") as s:
        s.save_finding(finding("a", supports("label_noise", Strength.STRONG, "r")), "fp")
        s.save_finding(finding("b", supports("lr_too_high", Strength.STRONG, "r")), "fp")
        s.save_finding(
            Finding("interventions", Verdict.FAIL, "s",
                    interventions=(outcome("label_noise", share=0.9),
                                   outcome("lr_too_high", share=0.5))),
            "fp",
        )
        hid = s.add_hypothesis("Camera 3 is miscalibrated", "images from camera 3 are darker")
        s.set_status(hid, HypothesisStatus.SUPPORTED, "checked by hand")
        s.add_note("label_noise", "confirmed 5 of them")
        ledger = {e.hypothesis_id: e for e in session_ledger(s)}
        assert ledger[hid].manual and ledger[hid].status is HypothesisStatus.SUPPORTED
        assert ledger["label_noise"].notes == ("confirmed 5 of them",)
        top_before = [e.hypothesis_id for e in session_ledger(s) if not e.user_defined][:2]
        assert top_before[0] == "label_noise"
        s.add_review("hypothesis", "label_noise", ReviewVerdict.DISAGREE, "these are hard cases")
        order = [e.hypothesis_id for e in session_ledger(s) if e.status.value == "supported"]
        assert order.index("label_noise") > order.index("lr_too_high")


def test_experiments_roundtrip(tmp_path: Path) -> None:
    with new_session(tmp_path / "s") as s:
        s.add_experiment(
            Experiment(
                "fix eval norm",
                ("eval Normalize constants",),
                "val_acc",
                0.951,
                0.984,
                seeds=(0, 1),
            )
        )
        (e,) = s.experiments()
        assert e.id == 1 and e.delta == pytest.approx(0.033) and e.seeds == (0, 1)


def test_refuses_newer_schema(tmp_path: Path) -> None:
    new_session(tmp_path / "s").close()
    conn = sqlite3.connect(tmp_path / "s" / "session.sqlite")
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(SessionError, match="newer detective.*schema 99"):
        Session.open(tmp_path / "s")


def test_corrupt_database_gives_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "session.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SessionError, match="not a readable session database"):
        Session.open(tmp_path / "s")


def test_missing_session(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="no session at"):
        Session.open(tmp_path / "nothing")


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    new_session(tmp_path / "s").close()
    with pytest.raises(SessionError, match="already exists"):
        new_session(tmp_path / "s")


def test_rejudge_applies_current_thresholds_without_the_model(tmp_path: Path) -> None:
    from detective.checks.pipeline.preprocessing_parity import ChannelStats, ParityMeasurement
    from detective.workflows.rejudge import rejudge

    m = ParityMeasurement(
        images=100, augmentation_removed=True, train_shape=(1, 8, 8), eval_shape=(1, 8, 8),
        channels=(ChannelStats(0, 0.0, 1.0, -0.39, 0.75),), train_range=(-1.0, 2.0),
        eval_range=(-1.0, 1.0), channel_swap_fits_better=False, prediction_disagreement=0.03,
        train_tf_accuracy=0.98, eval_tf_accuracy=0.95, problems=(),
    )
    with new_session(tmp_path / "s") as s:
        stale = Finding("preprocessing_parity", Verdict.PASS, "judged by an older version")
        s.save_finding(stale, "fp", m)
        (r,) = rejudge(s)
        assert r.changed and r.after is Verdict.FAIL
        assert s.findings()[0].finding.verdict is Verdict.FAIL
        assert not rejudge(s)[0].changed  # idempotent


def test_a_supported_cause_ranks_before_a_supported_consequence() -> None:
    """Both proven, but LR ×10 recovers most of the gap and more capacity little of it."""
    from detective.core.session import StoredFinding

    entries = build_ledger([
        StoredFinding(1, "capacity", "fp", finding(
            "capacity", supports("underfitting", Strength.STRONG, "train acc 40%"),
            supports("underfitting", Strength.STRONG, "wider model no better")), None, 0.0),
        StoredFinding(2, "lr_range_test", "fp", finding(
            "lr_range_test", supports("lr_too_low", Strength.STRONG, "LR 1000x below")), None, 0.0),
        StoredFinding(3, "interventions", "fp", proof("underfitting", share=0.2), None, 0.0),
        StoredFinding(4, "interventions", "fp", proof("lr_too_low", share=0.85), None, 0.0),
    ])
    supported = [e.hypothesis_id for e in entries if e.status is HypothesisStatus.SUPPORTED]
    assert supported == ["lr_too_low", "underfitting"]  # despite underfitting's higher score


def test_a_code_bug_ranks_before_the_data_level_finding_it_can_produce() -> None:
    """An off-by-one label index also looks like label noise; remapping the labels recovers
    the gap, dropping flagged labels little of it; the failing slice is a description."""
    from detective.core.session import StoredFinding

    def stored(i: int, check: str, hyp: str) -> StoredFinding:
        both = (supports(hyp, Strength.STRONG, "x"), supports(hyp, Strength.STRONG, "y"))
        return StoredFinding(i, check, "fp", finding(check, *both), None, 0.0)

    entries = build_ledger([
        stored(1, "label_issues", "label_noise"),
        stored(2, "error_slices", "slice_failure"),
        StoredFinding(3, "label_alignment", "fp", finding(
            "label_alignment", supports("label_misalignment", Strength.STRONG, "off by one")),
            None, 0.0),
        StoredFinding(4, "interventions", "fp", proof("label_noise", share=0.15), None, 0.0),
        StoredFinding(5, "interventions", "fp", proof("label_misalignment", share=0.9), None, 0.0),
    ])
    supported = [e.hypothesis_id for e in entries if e.status is HypothesisStatus.SUPPORTED]
    assert supported == ["label_misalignment", "label_noise"]
    ranked = [e.hypothesis_id for e in entries if e.evidence]
    assert ranked.index("slice_failure") > ranked.index("label_noise")


def test_a_proven_cause_ranks_above_the_proven_symptom_it_produces() -> None:
    """Train-mode evaluation makes the reported metric disagree with a recomputation: both
    interventions recover the whole gap; the cause leads. Training twice as long recovers more
    than He init, but the exploding init is what to fix; a cause that explains
    little stays below."""
    from detective.core.session import StoredFinding

    def rows(*pairs: tuple[str, float]) -> list[StoredFinding]:
        out = []
        for i, (hyp, share) in enumerate(pairs):
            out.append(StoredFinding(2 * i, "c", "fp", finding(
                "c", supports(hyp, Strength.STRONG, "x")), None, 0.0))
            out.append(StoredFinding(2 * i + 1, "interventions", "fp", proof(hyp, share=share),
                                     None, 0.0))
        return out

    def supported(entries) -> list[str]:  # noqa: ANN001
        return [e.hypothesis_id for e in entries if e.status is HypothesisStatus.SUPPORTED]

    assert supported(build_ledger(rows(("metric_bug", 1.0), ("eval_mode_bug", 1.0)))) == [
        "eval_mode_bug", "metric_bug"]
    assert supported(build_ledger(rows(("underfitting", 1.0), ("exploding_gradients", 0.7)))) == [
        "exploding_gradients", "underfitting"]
    assert supported(build_ledger(rows(("underfitting", 0.9), ("exploding_gradients", 0.2)))) == [
        "underfitting", "exploding_gradients"]
    assert supported(build_ledger(rows(("exploding_gradients", 1.0),
                                       ("normalization_mismatch", 0.8)))) == [
        "normalization_mismatch", "exploding_gradients"]
    # Blank-decoded inputs cannot be fitted: training longer recovers more, the inputs lead.
    assert supported(build_ledger(rows(("underfitting", 1.0), ("corrupt_inputs", 0.63)))) == [
        "corrupt_inputs", "underfitting"]
    # Unrelated causes keep the gap-share order.
    assert supported(build_ledger(rows(("class_imbalance", 0.9), ("eval_mode_bug", 0.6)))) == [
        "class_imbalance", "eval_mode_bug"]


def test_a_cause_with_net_support_ranks_above_one_with_only_a_weak_refutation() -> None:
    """An intervention that did not move the metric leaves a cause with strong evidence
    inconclusive; it still leads a cause whose only evidence is a weak refutation."""
    from detective.core.session import StoredFinding

    entries = build_ledger([
        StoredFinding(1, "label_issues", "fp", finding(
            "label_issues", refutes("label_noise", Strength.WEAK, "flags at a clean rate")),
            None, 0.0),
        StoredFinding(2, "label_alignment", "fp", finding(
            "label_alignment", supports("label_misalignment", Strength.STRONG, "91% differ"),
            supports("label_misalignment", Strength.STRONG, "less learnable")), None, 0.0),
        StoredFinding(3, "interventions", "fp", proof("label_misalignment", Moved.NO_EFFECT),
                      None, 0.0),
    ])
    ranked = [e.hypothesis_id for e in entries if e.evidence]
    assert ranked.index("label_misalignment") < ranked.index("label_noise")


def test_a_cause_whose_intervention_the_budget_cut_short_ranks_as_untested() -> None:
    """Frozen parameters with strong evidence and an intervention the budget cut short
    (inconclusive) lead a weakly supported, untested cause; with a measured "no effect" they
    would follow it."""
    from detective.core.session import StoredFinding

    def ranked(effect: Moved) -> list[str]:
        entries = build_ledger([
            StoredFinding(1, "label_issues", "fp", finding(
                "label_issues", supports("label_noise", Strength.WEAK, "8% flagged")), None, 0.0),
            StoredFinding(2, "gradient_flow", "fp", finding(
                "gradient_flow", supports("frozen_parameters", Strength.STRONG, "100% frozen"),
                refutes("frozen_parameters", Strength.WEAK, "memorises a batch")), None, 0.0),
            StoredFinding(3, "interventions", "fp", proof("frozen_parameters", effect),
                          None, 0.0),
        ])
        return [e.hypothesis_id for e in entries if e.evidence]

    assert ranked(Moved.INCONCLUSIVE)[:2] == ["frozen_parameters", "label_noise"]
    assert ranked(Moved.NO_EFFECT)[:2] == ["label_noise", "frozen_parameters"]


def test_unproven_cause_with_support_ranks_above_the_unproven_symptom() -> None:
    """A deep sigmoid MLP: underfitting has more evidence than vanishing gradients, neither is
    proven; the specific cause is the lead, the symptom follows. Without net support it does not
    jump."""
    from detective.core.session import StoredFinding

    def ledger(vanishing: tuple) -> list[str]:  # noqa: ANN001
        entries = build_ledger([
            StoredFinding(1, "capacity", "fp", finding(
                "capacity", supports("underfitting", Strength.STRONG, "train acc 30%"),
                supports("underfitting", Strength.STRONG, "baseline beats it")), None, 0.0),
            StoredFinding(2, "gradient_flow", "fp", finding("gradient_flow", *vanishing),
                          None, 0.0),
        ])
        return [e.hypothesis_id for e in entries if e.evidence]

    weak = (supports("vanishing_gradients", Strength.WEAK, "first/last ratio 1e-3"),)
    assert ledger(weak)[:2] == ["vanishing_gradients", "underfitting"]
    against = (refutes("vanishing_gradients", Strength.WEAK, "ratio 0.5"),)
    assert ledger(against)[:2] == ["underfitting", "vanishing_gradients"]
