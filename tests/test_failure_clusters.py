"""The failure_clusters check on a real model: planted failure modes, a clean case, the report."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest
from helpers import CASES, run_check

from detective.checks.error_analysis.failure_clusters import (
    FailureClusters,
    FailureClustersSettings,
    FailureClustersThresholds,
)
from detective.core.findings import Direction, Strength, Verdict
from detective.llm.fake import FakeBackend
from detective.llm.summary import summarize_cluster

PLANTED_CASE = CASES / "clusters_planted.py"


def planted_modes() -> dict[int, int]:
    spec = importlib.util.spec_from_file_location("clusters_planted", PLANTED_CASE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PLANTED


def ari(measurement) -> float:
    from sklearn.metrics import adjusted_rand_score

    planted = planted_modes()
    modes, found = [], []
    for c, facts in enumerate(measurement.clustering.clusters):
        for i in facts.members:
            if i in planted:
                modes.append(planted[i])
                found.append(c)
    # Most planted images fail and get clustered (how many fail varies a little with training).
    assert len(modes) > 0.5 * len(planted)
    return adjusted_rand_score(modes, found)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    return run_check("failure_clusters", PLANTED_CASE, tmp_path_factory.mktemp("planted"))


def test_planted_failure_modes_form_clusters_described_by_the_numbers(planted_run) -> None:
    m, f = planted_run
    assert f.verdict is Verdict.WARN
    score = ari(m)
    print(f"adjusted Rand index (k by silhouette, k={m.clustering.k}): {score:.3f}")  # noqa: T201 - the number this test reports
    assert score > 0.5
    dark = next(c for c in m.clustering.clusters if c.properties[0].name == "contrast")
    assert dark.properties[0].effect_size < -3  # darkened ×0.15: contrast collapses
    modes = [planted_modes().get(i) for i in dark.members]
    assert modes.count(0) >= 0.9 * len(modes)  # (almost) only darkened images
    # Errors are everywhere (~36% of val): a pattern, but not a slice an expert calls strong.
    # The planted case keeps the deciding numbers clear of the judge's thresholds, so the
    # expected strength cannot flip when training or clustering shifts them a little.
    th = FailureClustersThresholds()
    assert m.error_rate > th.strong_max_error_rate + 0.03  # too many errors for STRONG
    lift = max(s.lift for s in dark.slices)
    assert th.moderate_min_lift + 0.2 < lift < th.strong_min_lift - 0.2
    effect = f.effect_on("slice_failure")
    assert effect.direction is Direction.SUPPORTS and effect.strength is Strength.MODERATE
    assert len(f.artifacts) == len(m.clustering.clusters)
    assert "Summaries from the numbers (no --llm model configured)." in f.notes


def test_three_planted_modes_recovered_when_k_range_starts_at_three(tmp_path) -> None:
    m, f = run_check(
        "failure_clusters", PLANTED_CASE, tmp_path, settings=FailureClustersSettings(k_min=3)
    )
    score = ari(m)
    print(f"adjusted Rand index (k from 3, k={m.clustering.k}): {score:.3f}")  # noqa: T201 - the number this test reports
    assert m.clustering.k == 3 and score > 0.9


def test_clean_model_gets_nothing_supported(tmp_path) -> None:
    m, f = run_check("failure_clusters", CASES / "digits_clean.py", tmp_path)
    assert f.verdict is Verdict.PASS
    assert not [e for e in f.effects if e.direction is Direction.SUPPORTS]
    assert m.error_rate < 0.1


def test_a_contradicted_model_claim_is_marked_in_the_finding(planted_run) -> None:
    m, _ = planted_run
    facts = m.clustering.clusters[0]
    lie = {
        "title": "Very dark images",
        "cause": "All of these are dark.",
        "fix_kind": "augmentation",
        "fix": "Brightness jitter.",
        "properties": [{"property": "brightness", "direction": "lower"}],
        "confusions": [],
    }
    record = summarize_cluster(facts, FakeBackend([lie], name="llama.cpp fake.gguf"), m.classes)
    judged = FailureClusters().judge(replace(m, summaries=(record, *m.summaries[1:])))
    row = judged.tables[1].rows[0]
    assert row[1] == "llama.cpp fake.gguf" and "✗ unsupported: brightness lower" in row[5]
    assert any("contradicted (marked ✗ unsupported)" in n for n in judged.notes)
    # the model's words never move the ledger: the effects are the numbers' alone
    assert judged.effects == FailureClusters().judge(m).effects
    assert np.isfinite(facts.properties[0].effect_size)
