"""Re-judge a stored session: apply the current judgement code and thresholds to the stored
measurements, without the model, the data or a GPU."""

from __future__ import annotations

from dataclasses import dataclass, replace

from detective.findings import Verdict
from detective.registry import all_checks
from detective.serde import from_jsonable
from detective.session import Session


@dataclass(frozen=True)
class Rejudged:
    check_id: str
    before: Verdict
    after: Verdict
    changed: bool


def rejudge(session: Session) -> list[Rejudged]:
    """Re-judge the latest findings of the latest fingerprint; store a new finding where the
    result changed. Findings without a measurement (not applicable, errors) are left as they are."""
    checks = all_checks()
    fingerprint = session.latest_fingerprint()
    out = []
    for stored in session.findings(fingerprint=fingerprint):
        cls = checks.get(stored.check_id)
        if cls is None or stored.measurement is None:
            continue
        measurement = from_jsonable(cls.measurement_type, stored.measurement)
        finding = replace(
            cls().judge(measurement),
            duration_s=stored.finding.duration_s,
            uses=stored.finding.uses,
        )
        changed = finding != stored.finding
        if changed:
            session.save_finding(finding, stored.fingerprint, measurement)
        out.append(Rejudged(stored.check_id, stored.finding.verdict, finding.verdict, changed))
    return out
