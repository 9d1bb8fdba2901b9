"""Capacity stage: baselines, capacity probes, regularization experiments, Grad-CAM."""

from __future__ import annotations

from pathlib import Path

import pytest
from capacity_cases import MARKER, MEMORISE, OVERFIT, UNDERFIT
from helpers import CASES, run_check, write_case

from detective.checks.capacity.capacity import CapacitySettings
from detective.checks.capacity.regularization import RegularizationSettings
from detective.core.findings import Direction, Strength, Verdict


def _strength(finding, hypothesis):  # noqa: ANN001, ANN202
    e = finding.effect_on(hypothesis)
    return (e.direction, e.strength) if e else None


@pytest.fixture(scope="module")
def overfit_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_case(tmp_path_factory.mktemp("overfit"), OVERFIT)


def test_overparameterised_model_on_small_train_set_is_overfitting(
    overfit_case: Path, tmp_path: Path
) -> None:
    st = CapacitySettings(val_samples=300, max_seconds=1e9)  # step budgets only, no wall cap
    m, f = run_check("capacity", overfit_case, tmp_path, settings=st)
    assert f.verdict is Verdict.FAIL, f.summary
    assert _strength(f, "overfitting") == (Direction.SUPPORTS, Strength.STRONG)
    assert _strength(f, "underfitting") == (Direction.REFUTES, Strength.MODERATE)
    assert m.model_train_acc == 1.0 and m.model_train_acc - m.model_val_acc > 0.08
    curve = {p.train_fraction: p.val_acc for p in m.probes if p.lever == "data"}
    full = m.probes[0].val_acc
    assert full - curve[0.25] > 0.2  # more data helps, by a lot
    assert "more data helps" in f.summary


def test_regularization_experiment_shrinks_the_gap(overfit_case: Path, tmp_path: Path) -> None:
    st = RegularizationSettings(val_samples=300, seeds=(0,), max_seconds=1e9)
    m, f = run_check("regularization", overfit_case, tmp_path, settings=st)
    names = {e.name for e in m.experiments}
    assert names == {"add weight decay", "add dropout", "add augmentation"}
    aug = next(e for e in m.experiments if e.name == "add augmentation")
    assert aug.gap_before - aug.gap_after > 0.03, aug  # random shifts narrow the gap
    assert aug.val_after > aug.val_before
    assert f.verdict in (Verdict.WARN, Verdict.PASS)
    table = f.tables[0]
    assert table.columns[4:6] == ("gap before", "gap after") and len(table.rows) == 3


def test_memorisation_gap_runs_every_probe_and_experiment(tmp_path: Path) -> None:
    """Held-out train images score like val: the gap is memorisation, so the less-capacity and
    less-data probes and the regularization experiments all run."""
    case = write_case(tmp_path, MEMORISE)
    st = CapacitySettings(val_samples=300, max_seconds=1e9)
    m, f = run_check("capacity", case, tmp_path / "c", settings=st)
    base = m.probes[0]
    assert m.model_train_acc - m.model_val_acc > 0.09  # the symptom, clear of plan_max_gap
    assert abs(base.heldout_acc - base.val_acc) < 0.05  # no shift (plan_shift_gap is 0.10)
    assert not m.shift_stop
    assert [p.label for p in m.probes] == ["width=700", "width=175", "25% data", "50% data"]
    assert _strength(f, "overfitting") == (Direction.SUPPORTS, Strength.STRONG)
    r, fr = run_check("regularization", case, tmp_path / "r",
                      settings=RegularizationSettings(val_samples=300, max_seconds=1e9))
    assert not r.not_memorisation and r.experiments, fr.summary
    assert abs(r.base_heldout_acc - r.base_val_acc) < 0.05


def test_shortcut_gap_is_not_probed_for_memorisation(tmp_path: Path) -> None:
    """A train/val gap that held-out train images do not share (a shortcut only train has) is
    no memorisation: after the base run, capacity skips the less-capacity and less-data probes
    and regularization runs no experiment, and both say why."""
    case = write_case(tmp_path, MARKER)
    st = CapacitySettings(val_samples=300, max_seconds=1e9, width_factor=2)
    m, f = run_check("capacity", case, tmp_path / "c", settings=st)
    base = m.probes[0]
    assert m.model_train_acc - m.model_val_acc > 0.15
    assert base.heldout_acc - base.val_acc > 0.12  # a shift, clear of plan_shift_gap 0.10
    assert m.shift_stop
    assert not any(p.lever == "data" for p in m.probes)
    assert all(p.parameters >= base.parameters for p in m.probes)  # no smaller model
    assert _strength(f, "overfitting") == (Direction.REFUTES, Strength.MODERATE)
    assert "not overfitting" in f.summary and "were not probed" in f.summary
    r, fr = run_check("regularization", case, tmp_path / "r",
                      settings=RegularizationSettings(val_samples=300, max_seconds=1e9))
    assert r.not_memorisation and r.experiments == ()
    assert fr.verdict is Verdict.NOT_APPLICABLE
    assert "not memorisation" in fr.summary
    assert not any(e.direction is Direction.SUPPORTS for e in fr.effects)


def test_a_first_seed_without_gain_can_never_come_out_improved() -> None:
    """The regularization experiments stop a change after seed 0 when its val did not rise:
    with two seeds no second delta could make the paired outcome "improved"."""
    from detective.checks.capacity.regularization import _hopeless
    from detective.workflows.experiments import outcome

    grid = [i / 200 for i in range(-100, 101)]
    for d0 in grid:
        for d1 in grid:
            for p, n in ((0.6, 50), (0.9, 1000)):
                if outcome([d0, d1], p, n) == "improved":
                    assert not _hopeless(d0), (d0, d1)
    assert _hopeless(0.0) and _hopeless(-0.02)
    assert outcome([0.1, 0.11], 0.6, 1000) == "improved" and not _hopeless(0.1)


def test_too_small_model_is_underfitting(tmp_path: Path) -> None:
    case = write_case(tmp_path, UNDERFIT)
    st = CapacitySettings(train_samples=500, val_samples=300, max_seconds=1e9)
    m, f = run_check("capacity", case, tmp_path, settings=st)
    assert f.verdict is Verdict.FAIL, f.summary
    assert _strength(f, "underfitting") == (Direction.SUPPORTS, Strength.STRONG)
    base, wider = m.probes[0], m.probes[1]
    assert (base.label, wider.label) == ("width=1", "width=4")
    assert wider.train_acc - base.train_acc > 0.1
    assert m.model_train_acc < 0.5

    b, fb = run_check("baselines", case, tmp_path)
    assert fb.verdict is Verdict.FAIL
    assert _strength(fb, "underfitting") == (Direction.SUPPORTS, Strength.STRONG)
    assert b.pixels_val_acc > 0.9 and b.model_val_acc < 0.5  # a linear model on pixels wins


def test_underfit_model_without_a_width_keyword_trains_no_probe(tmp_path: Path) -> None:
    """Low train accuracy, no width keyword to vary and no gap: no probe could be compared
    with a base run, so none is trained; the finding still says the model underfits."""
    src = UNDERFIT.replace("def fresh_model(width=1):", "def fresh_model():").replace(
        "kit.SmallCNN(width=width)", "kit.SmallCNN(width=1)")
    case = write_case(tmp_path, src)
    st = CapacitySettings(train_samples=500, val_samples=300, max_seconds=1e9)
    m, f = run_check("capacity", case, tmp_path, settings=st)
    assert m.model_train_acc < 0.5 and m.probes == ()
    assert f.verdict is Verdict.WARN, f.summary
    assert _strength(f, "underfitting") == (Direction.SUPPORTS, Strength.MODERATE)
    assert _strength(f, "overfitting") == (Direction.REFUTES, Strength.MODERATE)
    assert "no width-like keyword" in f.summary


def test_gradcam_measures_the_mass_on_a_planted_corner_marker(tmp_path: Path) -> None:
    case = write_case(tmp_path, MARKER)
    m, f = run_check("gradcam", case, tmp_path)
    assert f.verdict is Verdict.WARN, f.summary
    assert "top-left corner" in f.summary
    s = m.failure_shares
    assert s.top_left > 3 * m.corner_area  # 4x4 of 16x16 = 6 % of the area
    assert s.top_left > 5 * max(s.top_right, s.bottom_left, s.bottom_right)
    assert s.top_left > m.reference_shares.top_left + 0.1
    assert m.grouping == "clusters" and m.groups
    assert (tmp_path / "artifacts" / m.grid).stat().st_size > 0


@pytest.mark.parametrize("check_id", ["baselines", "capacity", "regularization", "gradcam"])
def test_clean_case_gets_nothing_supported(check_id: str, tmp_path: Path) -> None:
    _, f = run_check(check_id, CASES / "digits_clean.py", tmp_path)
    assert f.verdict in (Verdict.PASS, Verdict.NOT_APPLICABLE), f.summary
    assert not any(e.direction is Direction.SUPPORTS for e in f.effects)


def test_demo_gets_no_capacity_false_alarm(tmp_path: Path) -> None:
    """The demo's flaw is preprocessing parity (train 100 %, val 95 %): nothing here fires."""
    from detective.casekit.demo import DEMO_CASE

    for check_id in ("baselines", "capacity", "regularization", "gradcam"):
        _, f = run_check(check_id, DEMO_CASE, tmp_path / check_id)
        assert f.verdict in (Verdict.PASS, Verdict.NOT_APPLICABLE), (check_id, f.summary)
        assert not any(e.direction is Direction.SUPPORTS for e in f.effects), check_id


def test_gradcam_names_clusters_with_failure_clusters_ids(tmp_path: Path) -> None:
    """One collection, one clustering: the Grad-CAM table's clusters are failure_clusters' own
    (rank and id), so a reviewed cluster is the same cluster in both tables."""
    import re

    case = write_case(tmp_path, MARKER)
    m, _ = run_check("gradcam", case, tmp_path)
    _, fc = run_check("failure_clusters", case, tmp_path)
    table = fc.tables[0]
    rank_col, id_col = table.columns.index("cluster"), table.columns.index("id")
    named = {str(r[id_col]): int(r[rank_col]) for r in table.rows}
    assert m.grouping == "clusters" and named
    groups = [re.fullmatch(r"cluster (\d+) \(([\w-]+)\)", g.group) for g in m.groups]
    assert all(groups), [g.group for g in m.groups]
    assert {g[2]: int(g[1]) for g in groups if g} == {
        k: v for k, v in named.items() if k in {g[2] for g in groups if g}
    }
    assert {g[2] for g in groups if g} <= set(named)
