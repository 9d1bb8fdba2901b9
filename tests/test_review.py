"""Reviews: verdicts on clusters and failures change the cluster ranking, the report and export."""

from __future__ import annotations

import json
import time

import pytest
from test_clusters import CLASSES, planted

from detective.analysis.clusters import cluster_failures
from detective.checks.error_analysis.failure_clusters import (
    FailureClusters,
    FailureClustersMeasurement,
)
from detective.core.context import RunOptions
from detective.core.report import build_report
from detective.core.session import Session, SessionInfo
from detective.llm.summary import summarize_clusters
from detective.workflows.review import (
    ReviewError,
    add_review,
    review_cluster,
    review_failure,
    session_clusters,
)


@pytest.fixture
def session(tmp_path):
    s = Session.create(
        tmp_path / "s",
        SessionInfo(
            "s",
            str(tmp_path / "case.py"),
            "h",
            None,
            "vision-classification",
            RunOptions(),
            time.time(),
        ),
    )
    feats, true, pred, ids, props, successes, _ = planted()
    clustering = cluster_failures(
        feats, true, pred, ids, CLASSES, properties=props, reference=successes
    )
    m = FailureClustersMeasurement(
        split="val",
        examples=800,
        failures=len(true),
        error_rate=len(true) / 800,
        classes=CLASSES,
        clustering=clustering,
        summaries=summarize_clusters(clustering.clusters, None, CLASSES),
        llm_configured="",
        llm_note="",
        thumbnails=(),
        features_used=True,
    )
    s.save_finding(FailureClusters().judge(m), "fp", m)
    yield s
    s.close()


def test_rejected_clusters_drop_to_the_end_and_agreement_is_counted(session) -> None:
    before = session_clusters(session)
    assert [c.rank for c in before] == [1, 2, 3]
    assert all(c.verdict is None and not c.rejected for c in before)
    first, second = before[0].cluster, before[1].cluster
    review_cluster(session, first.id, "disagree", "these are two unrelated groups")
    members = sorted(next(c for c in planted_members(session) if c.id == second.id).members)
    review_failure(session, "val", members[0], "agree")
    review_failure(session, "val", members[1], "agree")
    review_failure(session, "val", members[2], "disagree")
    review_failure(session, "val", members[3], "skip")
    after = session_clusters(session)
    assert [c.cluster.id for c in after] == [second.id, before[2].cluster.id, first.id]
    rejected = after[-1]
    assert rejected.rejected and rejected.rank == 3 and rejected.agreement_rate == 0.0
    assert rejected.note == "these are two unrelated groups"
    kept = after[0]
    assert (kept.agree, kept.disagree) == (2, 1) and not kept.rejected
    assert kept.agreement_rate == pytest.approx(2 / 3)
    review_cluster(session, first.id, "agree")  # a later verdict replaces the earlier one
    assert session_clusters(session)[0].cluster.id == first.id


def planted_members(session):
    from detective.core.serde import from_jsonable

    stored = [f for f in session.findings() if f.check_id == "failure_clusters"][-1]
    return from_jsonable(FailureClustersMeasurement, stored.measurement).clustering.clusters


def test_report_and_export_carry_the_review_verdicts(session) -> None:
    import jsonschema

    from detective.ui.export import Format, render
    from detective.ui.export.json import schema

    rejected_id = session_clusters(session)[0].cluster.id
    review_cluster(session, rejected_id, "disagree", "not a real pattern")
    report = build_report(session)
    assert report.clusters[-1].cluster.id == rejected_id and report.clusters[-1].rejected
    md = render(report, Format.MD, session.artifacts_dir)
    assert "## Failure clusters" in md and "rejected by review" in md
    assert md.index("Cluster 1 (") < md.index("rejected by review")
    html = render(report, Format.HTML, session.artifacts_dir)
    assert "REJECTED by review" in html
    data = json.loads(render(report, Format.JSON, session.artifacts_dir))
    jsonschema.validate(data, schema())
    last = data["clusters"][-1]
    assert last["verdict"] == "disagree" and last["rejected"] is True
    assert last["cluster"]["id"] == rejected_id and last["cluster"]["members"] == []
    assert {c["status"] for c in data["clusters"][0]["checks"]} == {"supported"}


def test_bad_reviews_are_refused_with_a_clear_message(session) -> None:
    with pytest.raises(ReviewError, match="kinds are cluster, failure, pair, hypothesis"):
        add_review(session, "picture", "x", "agree")
    with pytest.raises(ReviewError, match="verdicts agree, disagree, skip"):
        review_cluster(session, "c-1", "maybe")


def test_a_confusion_pair_is_stored_and_exported_as_a_pair(session) -> None:
    import jsonschema

    from detective.ui.export import Format, render
    from detective.ui.export.json import schema

    add_review(session, "pair", "2→1", "disagree", "they are genuinely ambiguous")
    add_review(session, "failure", "val:3", "agree")
    data = json.loads(render(build_report(session), Format.JSON, session.artifacts_dir))
    jsonschema.validate(data, schema())
    assert [(r["target_kind"], r["target_id"], r["verdict"]) for r in data["reviews"]] == [
        ("pair", "2→1", "disagree"),
        ("failure", "val:3", "agree"),
    ]
