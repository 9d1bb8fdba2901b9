"""The hypothesis ledger: every hypothesis with the evidence that moved it, ranked.

Status rules (the honesty bar): `supported` needs at least one STRONG supporting effect and more
support than refutation; weak or conflicting evidence is `inconclusive`; refutation with no
meaningful support is `refuted`; no evidence is `open`. A status set by hand wins and is marked.
Reviews that reject a hypothesis demote it in the ranking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from detective.core.findings import Direction, Strength, Verdict
from detective.core.hypotheses import VOCABULARY, describe
from detective.core.session import (
    HypothesisStatus,
    Note,
    Review,
    ReviewVerdict,
    StatusOverride,
    StoredFinding,
    UserHypothesis,
)


@dataclass(frozen=True)
class EvidenceRef:
    finding_id: int
    check_id: str
    direction: Direction
    strength: Strength
    reason: str


@dataclass(frozen=True)
class LedgerEntry:
    hypothesis_id: str
    title: str
    explanation: str
    status: HypothesisStatus
    score: float
    evidence: tuple[EvidenceRef, ...]
    manual: bool = False
    manual_reason: str = ""
    notes: tuple[str, ...] = ()
    user_defined: bool = False
    review_agree: int = 0
    review_disagree: int = 0


# Within a status, rank what to fix first. A bug in the code (pipeline, recipe, evaluation)
# comes first; then data-level findings such a bug can also produce (an off-by-one label index
# looks like label noise, a preprocessing bug like a distribution shift); last, descriptions of
# how or where the model fails rather than why (underfitting, overfitting, a failing slice).
DATA_LEVEL = frozenset({"label_noise", "class_imbalance", "distribution_shift"})
CONSEQUENCES = frozenset({"underfitting", "overfitting", "slice_failure"})


def tier(hypothesis_id: str) -> int:
    return 2 if hypothesis_id in CONSEQUENCES else 1 if hypothesis_id in DATA_LEVEL else 0

_STATUS_RANK = {
    HypothesisStatus.SUPPORTED: 0,
    HypothesisStatus.INCONCLUSIVE: 1,
    HypothesisStatus.OPEN: 2,
    HypothesisStatus.REFUTED: 3,
}


def judge_status(evidence: Iterable[EvidenceRef]) -> tuple[HypothesisStatus, float]:
    evidence = list(evidence)
    if not evidence:
        return HypothesisStatus.OPEN, 0.0
    support = sum(e.strength.weight for e in evidence if e.direction is Direction.SUPPORTS)
    refute = sum(e.strength.weight for e in evidence if e.direction is Direction.REFUTES)
    strong = any(
        e.direction is Direction.SUPPORTS and e.strength is Strength.STRONG for e in evidence
    )
    score = support - refute
    if strong and support > refute:
        return HypothesisStatus.SUPPORTED, score
    if refute >= Strength.MODERATE.weight and support < Strength.MODERATE.weight:
        return HypothesisStatus.REFUTED, score
    return HypothesisStatus.INCONCLUSIVE, score


def build_ledger(
    findings: Iterable[StoredFinding],
    overrides: dict[str, StatusOverride] | None = None,
    user_hypotheses: Iterable[UserHypothesis] = (),
    notes: Iterable[Note] = (),
    reviews: Iterable[Review] = (),
) -> list[LedgerEntry]:
    overrides = overrides or {}
    evidence: dict[str, list[EvidenceRef]] = {h: [] for h in VOCABULARY}
    for stored in findings:
        f = stored.finding
        if f.verdict in (Verdict.ERROR, Verdict.NOT_APPLICABLE):
            continue  # a crashed or skipped check is never evidence
        for e in f.effects:
            evidence.setdefault(e.hypothesis, []).append(
                EvidenceRef(stored.id, f.check_id, e.direction, e.strength, e.reason)
            )
    users = {u.id: u for u in user_hypotheses}
    for uid in users:
        evidence.setdefault(uid, [])
    notes_by: dict[str, list[str]] = {}
    for n in notes:
        notes_by.setdefault(n.hypothesis_id, []).append(n.text)
    votes: dict[str, list[int]] = {}
    for r in reviews:
        if r.target_kind == "hypothesis" and r.verdict is not ReviewVerdict.SKIP:
            v = votes.setdefault(r.target_id, [0, 0])
            v[0 if r.verdict is ReviewVerdict.AGREE else 1] += 1

    entries = []
    for hid, refs in evidence.items():
        status, score = judge_status(refs)
        agree, disagree = votes.get(hid, [0, 0])
        if disagree > agree:
            score -= 1.0  # reviewers rejected it: demote, keep the evidence visible
        override = overrides.get(hid)
        if hid in users:
            title, explanation = users[hid].title, users[hid].explanation
        else:
            info = describe(hid)
            title, explanation = info.title, info.explanation
        entries.append(
            LedgerEntry(
                hypothesis_id=hid,
                title=title,
                explanation=explanation,
                status=override.status if override else status,
                score=score,
                evidence=tuple(refs),
                manual=override is not None,
                manual_reason=override.reason if override else "",
                notes=tuple(notes_by.get(hid, ())),
                user_defined=hid in users,
                review_agree=agree,
                review_disagree=disagree,
            )
        )
    order = {h: i for i, h in enumerate(evidence)}
    entries.sort(
        key=lambda e: (
            _STATUS_RANK[e.status],
            e.review_disagree > e.review_agree,  # reviewers rejected it
            tier(e.hypothesis_id),
            -e.score,
            -sum(1 for r in e.evidence if r.direction is Direction.SUPPORTS),
            order[e.hypothesis_id],
        )
    )
    return entries


def session_ledger(session) -> list[LedgerEntry]:  # noqa: ANN001 - Session, imported lazily
    fingerprint = session.latest_fingerprint()
    return build_ledger(
        session.findings(fingerprint=fingerprint),
        session.status_overrides(),
        session.user_hypotheses(),
        session.notes(),
        session.reviews(),
    )
