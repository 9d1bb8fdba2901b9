"""The findings report as one typed value, built from a session; renderers live in `export/`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from detective import __version__
from detective.core.findings import Finding
from detective.core.hypotheses import describe
from detective.core.ledger import LedgerEntry, session_ledger
from detective.core.session import Experiment, Review, Session
from detective.workflows.modelcard import ModelCard, build_model_card
from detective.workflows.review import ClusterReview, session_clusters

REPORT_SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class ReportSession:
    name: str
    case_path: str
    case_hash: str
    symptom: str | None
    playbook: str
    created_at: str
    fingerprint: str | None
    device: str = ""  # the device the checks ran on, e.g. "cpu" or "cuda:0 (NVIDIA A100)"
    # From the intake, in the user's words (schema 1.x additions): the model / training config
    # and what has already been tried — a reader of the report needs both.
    model_notes: str = ""
    tried: str = ""


@dataclass(frozen=True)
class ReportFinding:
    id: int
    title: str
    stage: str
    finding: Finding


@dataclass(frozen=True)
class Report:
    schema_version: str
    generated_at: str
    detective_version: str
    session: ReportSession
    hypotheses: tuple[LedgerEntry, ...]
    findings: tuple[ReportFinding, ...]
    experiments: tuple[Experiment, ...]
    reviews: tuple[Review, ...]
    # Failure clusters with their reviews; rejected ones last (see detective.workflows.review).
    clusters: tuple[ClusterReview, ...] = ()
    # Measured facts in model-card form, with user-to-fill fields (see
    # detective.workflows.modelcard).
    model_card: ModelCard | None = None

    @property
    def supported(self) -> tuple[LedgerEntry, ...]:
        return tuple(h for h in self.hypotheses if h.status.value == "supported")


def build_report(session: Session) -> Report:
    from detective.core.registry import all_checks

    checks = all_checks()
    info = session.info
    fingerprint = session.latest_fingerprint()
    findings = []
    for stored in session.findings(fingerprint=fingerprint):
        cls = checks.get(stored.check_id)
        findings.append(
            ReportFinding(
                stored.id,
                cls.title if cls else stored.check_id,
                cls.stage.value if cls else "",
                stored.finding,
            )
        )
    ledger = tuple(session_ledger(session))
    from detective.core.intake import load_form

    intake = load_form(session)
    card = build_model_card(
        [rf.finding for rf in findings],
        [h.title for h in ledger if h.status.value == "supported"],
    )
    return Report(
        schema_version=REPORT_SCHEMA_VERSION,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        detective_version=__version__,
        session=ReportSession(
            info.name,
            info.case_path,
            info.case_hash,
            info.symptom,
            info.playbook,
            dt.datetime.fromtimestamp(info.created_at, dt.UTC).isoformat(timespec="seconds"),
            fingerprint,
            info.device,
            intake.model_notes if intake else "",
            intake.tried if intake else "",
        ),
        hypotheses=ledger,
        findings=tuple(findings),
        experiments=tuple(session.experiments()),
        reviews=tuple(session.reviews()),
        clusters=session_clusters(session),
        model_card=card,
    )


def hypothesis_title(hypothesis_id: str) -> str:
    return describe(hypothesis_id).title
