"""Human review of failure clusters and per-failure hypotheses: agree / disagree / skip.

Verdicts live in the session (`Session.add_review`; a later verdict on the same target replaces
the earlier one). Target ids: a cluster's id (`ClusterFacts.id`, stable for the same members),
a failure (one image) as "<split>:<index>", a confusion pair as "<true>→<pred>" (class names), a
hypothesis by its ledger id. A cluster's agreement counts its
own verdict and the verdicts on its member failures; a cluster is *rejected* when its own verdict
is disagree, or when at least `MIN_VOTES` verdicts agree less than half the time. Rejected
clusters drop to the end of the ranking and are marked so in the report. (The ledger already
demotes hypotheses with more disagree than agree reviews.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from detective.analysis.clusters import ClusterFacts
from detective.core.session import Review, ReviewVerdict
from detective.llm.summary import SummaryRecord
from detective.llm.verify import CheckedClaim, verify

if TYPE_CHECKING:
    from detective.core.session import Session

MIN_VOTES = 3
CHECK_ID = "failure_clusters"


class TargetKind(StrEnum):
    CLUSTER = "cluster"
    FAILURE = "failure"  # one image of a split: "<split>:<index>"
    PAIR = "pair"  # a confusion between two classes: "<true>→<pred>"
    HYPOTHESIS = "hypothesis"


class ReviewError(ValueError):
    """A review that cannot be stored (unknown kind or verdict); the message says which."""


def add_review(session: Session, kind: str, target_id: str, verdict: str, note: str = "") -> int:
    """Store one verdict; validates the kind and the verdict."""
    try:
        kind_ = TargetKind(kind)
        verdict_ = ReviewVerdict(verdict)
    except ValueError as e:
        raise ReviewError(
            f"{e}: kinds are {', '.join(TargetKind)}, verdicts {', '.join(ReviewVerdict)}"
        ) from e
    if not target_id:
        raise ReviewError("a review needs a target id")
    return session.add_review(kind_.value, target_id, verdict_, note)


def review_cluster(session: Session, cluster_id: str, verdict: str, note: str = "") -> int:
    return add_review(session, TargetKind.CLUSTER, cluster_id, verdict, note)


def review_failure(session: Session, split: str, index: int, verdict: str, note: str = "") -> int:
    return add_review(session, TargetKind.FAILURE, f"{split}:{index}", verdict, note)


@dataclass(frozen=True)
class ClusterReview:
    """A cluster as the report shows it: facts, summary with checked claims, and review."""

    rank: int  # after review: rejected clusters come last
    cluster: ClusterFacts  # members omitted (they are in the stored measurement)
    summary: SummaryRecord | None
    checks: tuple[CheckedClaim, ...]
    verdict: ReviewVerdict | None  # the cluster's own latest verdict
    note: str
    agree: int
    disagree: int
    rejected: bool
    thumbnail: str = ""  # artifact path

    @property
    def agreement_rate(self) -> float | None:
        votes = self.agree + self.disagree
        return self.agree / votes if votes else None


def rank_clusters(
    clusters: Sequence[ClusterFacts],
    summaries: Iterable[SummaryRecord],
    reviews: Iterable[Review],
    *,
    split: str = "val",
    classes: Sequence[str] = (),
    thumbnails: Iterable[tuple[str, str]] = (),
) -> tuple[ClusterReview, ...]:
    """Clusters with their reviews, accepted ones first (by size), rejected ones last."""
    by_summary = {s.cluster_id: s for s in summaries}
    thumbs = dict(thumbnails)
    own: dict[str, Review] = {}
    failures: dict[str, Review] = {}
    for r in reviews:
        if r.target_kind == TargetKind.CLUSTER:
            own[r.target_id] = r
        elif r.target_kind == TargetKind.FAILURE:
            failures[r.target_id] = r
    out = []
    for c in clusters:
        votes = [own[c.id]] if c.id in own else []
        votes += [failures[f"{split}:{i}"] for i in c.members if f"{split}:{i}" in failures]
        agree = sum(v.verdict is ReviewVerdict.AGREE for v in votes)
        disagree = sum(v.verdict is ReviewVerdict.DISAGREE for v in votes)
        mine = own.get(c.id)
        rejected = (mine is not None and mine.verdict is ReviewVerdict.DISAGREE) or (
            agree + disagree >= MIN_VOTES and agree < disagree
        )
        summary = by_summary.get(c.id)
        out.append(
            ClusterReview(
                rank=0,
                cluster=replace(c, members=()),
                summary=summary,
                checks=verify(summary.summary, c, tuple(classes)) if summary else (),
                verdict=mine.verdict if mine else None,
                note=mine.note if mine else "",
                agree=agree,
                disagree=disagree,
                rejected=rejected,
                thumbnail=thumbs.get(c.id, ""),
            )
        )
    out.sort(key=lambda r: (r.rejected, r.cluster.rank))
    return tuple(replace(r, rank=n + 1) for n, r in enumerate(out))


def session_clusters(session: Session) -> tuple[ClusterReview, ...]:
    """The latest failure-cluster measurement of the session's latest fingerprint, reviewed."""
    from detective.checks.error_analysis.failure_clusters import FailureClustersMeasurement
    from detective.core.serde import from_jsonable

    stored = [
        f
        for f in session.findings(fingerprint=session.latest_fingerprint())
        if f.check_id == CHECK_ID and f.measurement is not None
    ]
    if not stored:
        return ()
    try:
        m: Any = from_jsonable(FailureClustersMeasurement, stored[-1].measurement)
    except (TypeError, ValueError, KeyError):
        return ()  # a measurement from an incompatible version: the finding still shows it
    return rank_clusters(
        m.clustering.clusters,
        m.summaries,
        session.reviews(),
        split=m.split,
        classes=m.classes,
        thumbnails=m.thumbnails,
    )
