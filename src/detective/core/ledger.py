"""The hypothesis ledger: every hypothesis with the evidence that moved it, ranked.

Status rules (the honesty bar): a hypothesis is `supported` only when an intervention that removes
its cause moved the metric significantly in the predicted direction (an `InterventionOutcome`
that RECOVERS, carried by a finding) and its evidence supports it more than it refutes it.
Evidence without such an intervention — however strong — is `inconclusive`, with its numbers;
refutation with no meaningful support is `refuted`; no evidence is `open`. A status set by hand
wins and is marked. Reviews that reject a hypothesis demote it in the ranking.

Ranking: supported causes by the share of the symptom's gap their intervention recovers; then the
rest by status, net support before none, causes before descriptions (slice_failure, overfitting,
… — how the model fails, not why), untested causes before causes whose intervention had no
effect, then by evidence.
A proven cause that recovers at least half of the gap ranks above a proven symptom it is known to
produce (eval mode → metric mismatch; an optimisation pathology → underfitting): fixing the cause
removes the symptom, a generic fix of the symptom (train longer) leaves the cause in place.
A description with evidence is attached to the supported cause that explains most of the gap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from detective.core.findings import Direction, InterventionOutcome, Moved, Strength, Verdict
from detective.core.hypotheses import CAUSED_BY, VOCABULARY, describe
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
    #: interventions measured for this hypothesis, the one that proves it first
    interventions: tuple[InterventionOutcome, ...] = ()
    description: bool = False  # how the model fails, not a cause (never supported alone)
    explained_by: str = ""  # a description: the supported cause that explains the gap

    @property
    def proof(self) -> InterventionOutcome | None:
        """The intervention that moved the metric (the first RECOVERS), if any."""
        return next((o for o in self.interventions if o.effect is Moved.RECOVERS), None)

    @property
    def gap_share(self) -> float | None:
        proof = self.proof
        return proof.gap_share if proof is not None else None

    @property
    def tested(self) -> bool:
        """An intervention measured something: one the budget cut short (inconclusive) leaves
        the cause as untested as one never run."""
        return any(o.effect is not Moved.INCONCLUSIVE for o in self.interventions)

_STATUS_RANK = {
    HypothesisStatus.SUPPORTED: 0,
    HypothesisStatus.INCONCLUSIVE: 1,
    HypothesisStatus.OPEN: 2,
    HypothesisStatus.REFUTED: 3,
}


def judge_status(
    evidence: Iterable[EvidenceRef], outcomes: Iterable[InterventionOutcome] = ()
) -> tuple[HypothesisStatus, float]:
    """Supported only when an intervention recovered the metric and the evidence agrees."""
    evidence = list(evidence)
    if not evidence:
        return HypothesisStatus.OPEN, 0.0
    support = sum(e.strength.weight for e in evidence if e.direction is Direction.SUPPORTS)
    refute = sum(e.strength.weight for e in evidence if e.direction is Direction.REFUTES)
    score = support - refute
    proven = any(o.effect is Moved.RECOVERS for o in outcomes)
    if proven and support > refute:
        return HypothesisStatus.SUPPORTED, score
    if refute >= Strength.MODERATE.weight and support < Strength.MODERATE.weight:
        return HypothesisStatus.REFUTED, score
    return HypothesisStatus.INCONCLUSIVE, score


def _proof_order(o: InterventionOutcome) -> tuple[bool, float]:
    return (o.effect is not Moved.RECOVERS, -(o.gap_share or 0.0))


def rank_key(e: LedgerEntry) -> tuple[int, bool, float, bool, int, float, int]:
    """Supported: by gap share recovered. Others: causes before descriptions, untested causes
    before causes an intervention did not move, then by evidence."""
    proven = e.status is HypothesisStatus.SUPPORTED
    share = -(e.gap_share if proven and e.gap_share is not None else 0.0)
    kind = 0 if proven else 2 if e.description else 1 if e.tested and e.proof is None else 0
    supports = sum(1 for r in e.evidence if r.direction is Direction.SUPPORTS)
    # Net support first: a cause with only a weak refutation is no lead, tested or not.
    return (_STATUS_RANK[e.status], e.review_disagree > e.review_agree, share, e.score <= 0,
            kind, -e.score, -supports)


def build_ledger(
    findings: Iterable[StoredFinding],
    overrides: dict[str, StatusOverride] | None = None,
    user_hypotheses: Iterable[UserHypothesis] = (),
    notes: Iterable[Note] = (),
    reviews: Iterable[Review] = (),
) -> list[LedgerEntry]:
    overrides = overrides or {}
    evidence: dict[str, list[EvidenceRef]] = {h: [] for h in VOCABULARY}
    outcomes: dict[str, list[InterventionOutcome]] = {}
    for stored in findings:
        f = stored.finding
        if f.verdict in (Verdict.ERROR, Verdict.NOT_APPLICABLE):
            continue  # a crashed or skipped check is never evidence
        for o in f.interventions:
            outcomes.setdefault(o.hypothesis, []).append(o)
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
        tried = tuple(sorted(outcomes.get(hid, ()), key=_proof_order))
        status, score = judge_status(refs, tried)
        agree, disagree = votes.get(hid, [0, 0])
        if disagree > agree:
            score -= 1.0  # reviewers rejected it: demote, keep the evidence visible
        override = overrides.get(hid)
        description = False
        if hid in users:
            title, explanation = users[hid].title, users[hid].explanation
        else:
            info = describe(hid)
            title, explanation, description = info.title, info.explanation, info.description
        if description and status is HypothesisStatus.SUPPORTED:
            status = HypothesisStatus.INCONCLUSIVE  # a description is never a verified cause
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
                interventions=tried,
                description=description,
            )
        )
    order = {h: i for i, h in enumerate(evidence)}
    entries.sort(key=lambda e: (*rank_key(e), order[e.hypothesis_id]))
    return _attach_descriptions(_causes_first(entries))


# A cause explains a description when its intervention recovers at least half of the gap.
EXPLAINS_SHARE = 0.5


def _causes_first(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    """A proven cause that explains at least half of the gap, or whose intervention removed the
    symptom's own marker, ranks above a proven symptom it produces (hypotheses.CAUSED_BY), even
    when a generic fix of the symptom recovers more; among
    unproven entries, a cause with net support ranks above the symptom it would produce."""
    out = list(entries)
    for consequence in entries:
        if consequence.status not in (HypothesisStatus.SUPPORTED, HypothesisStatus.INCONCLUSIVE):
            continue
        causes = CAUSED_BY.get(consequence.hypothesis_id, frozenset())
        at = out.index(consequence)
        movers = [
            e for e in out[at + 1:]
            if e.hypothesis_id in causes and e.status is consequence.status
            and (
                (e.gap_share or 0.0) >= EXPLAINS_SHARE
                or _removes(e, consequence.hypothesis_id)
                if e.status is HypothesisStatus.SUPPORTED
                # Neither proven: the specific cause with net support is the lead to follow.
                else e.score > 0 and not e.review_disagree > e.review_agree
            )
        ]
        for e in movers:
            out.remove(e)
        out[at:at] = movers
    return out


def _removes(cause: LedgerEntry, consequence: str) -> bool:
    """The cause's recovering intervention also removed what the consequence looks like (the
    LR fix that recovers val also revives the dead units): mediation, whatever the share."""
    return any(
        o.effect is Moved.RECOVERS and consequence in o.removes for o in cause.interventions
    )


def _attach_descriptions(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    from dataclasses import replace

    causes = [
        e for e in entries
        if e.status is HypothesisStatus.SUPPORTED and (e.gap_share or 0.0) >= EXPLAINS_SHARE
    ]
    if not causes:
        return entries
    return [
        replace(e, explained_by=causes[0].hypothesis_id)
        if e.description and e.evidence and e.status is not HypothesisStatus.REFUTED
        else e
        for e in entries
    ]


def session_ledger(session) -> list[LedgerEntry]:  # noqa: ANN001 - Session, imported lazily
    fingerprint = session.latest_fingerprint()
    return build_ledger(
        session.findings(fingerprint=fingerprint),
        session.status_overrides(),
        session.user_hypotheses(),
        session.notes(),
        session.reviews(),
    )
