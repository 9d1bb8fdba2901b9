"""Re-judge a stored session: apply the current judgement code and thresholds to the stored
measurements, without the model, the data or a GPU.

Thresholds come from the check's defaults, then the session's playbook
(`[checks.<id>.thresholds]`), then `overrides` (`--set check.key=value`), last one winning.
Settings (how much was measured) cannot change here: the measurement is what it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from detective.core.findings import Verdict
from detective.core.overrides import OverrideError, apply, fields_of, parse_assignment
from detective.core.playbook import Playbook
from detective.core.registry import Check, all_checks
from detective.core.serde import from_jsonable
from detective.core.session import Session


@dataclass(frozen=True)
class Rejudged:
    check_id: str
    before: Verdict
    after: Verdict
    changed: bool
    skipped: str = ""  # why the stored measurement could not be re-judged (left as it was)


def parse_overrides(assignments: Sequence[str]) -> dict[str, dict[str, str]]:
    """`check.key=value` texts -> {check: {key: value}}, validated against the registry (an
    unknown check, a key that is not a threshold, or a value of the wrong type raises
    OverrideError before anything is judged)."""
    checks = all_checks()
    out: dict[str, dict[str, str]] = {}
    for text in assignments:
        check_id, key, value = parse_assignment(text)
        cls = checks.get(check_id)
        if cls is None:
            raise OverrideError(f"{text!r}: unknown check {check_id!r} (see `detective checks`)")
        if key not in fields_of(cls.thresholds_type) and key in fields_of(cls.settings_type):
            raise OverrideError(
                f"{text!r}: {key!r} is a setting of {check_id} (how much it measures), not a "
                "threshold; re-run the check to change it"
            )
        out.setdefault(check_id, {})[key] = value
    for check_id, values in out.items():  # unknown keys and wrong types, with the valid keys
        apply(checks[check_id].thresholds_type(), values, check_id)
    return out


def thresholds_for(
    cls: type[Check[Any]], playbook: Playbook | None, overrides: Mapping[str, Mapping[str, Any]]
) -> Any:
    th = cls.thresholds_type()
    config = playbook.settings_for(cls.id) if playbook is not None else None
    if config is not None:
        th = apply(th, dict(config.thresholds), f"{cls.id}.thresholds")
    return apply(th, dict(overrides.get(cls.id, {})), cls.id)


def session_playbook(session: Session) -> Playbook | None:
    """The playbook the session ran with, for its threshold overrides (None if it is gone)."""
    from detective.core.playbook import PlaybookError, resolve_playbook

    try:
        return resolve_playbook(session.info.playbook, set(all_checks()))
    except (PlaybookError, OverrideError):
        return None


def rejudge(
    session: Session,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    playbook: Playbook | None = None,
) -> list[Rejudged]:
    """Re-judge the latest findings of the latest fingerprint; store a new finding where the
    result changed. Findings without a measurement (not applicable, errors) are left as they are."""
    checks = all_checks()
    overrides = overrides or {}
    fingerprint = session.latest_fingerprint()
    out = []
    for stored in session.findings(fingerprint=fingerprint):
        cls = checks.get(stored.check_id)
        if cls is None or stored.measurement is None:
            continue
        try:
            measurement = from_jsonable(cls.measurement_type, stored.measurement)
        except (TypeError, ValueError, KeyError):
            v = stored.finding.verdict
            why = (
                "stored by an older version with another measurement layout; re-run it "
                f"(detective run ... --only {stored.check_id} --rerun)"
            )
            out.append(Rejudged(stored.check_id, v, v, False, why))
            continue
        check = cls(thresholds_for(cls, playbook, overrides))
        finding = replace(
            check.judge(measurement),
            duration_s=stored.finding.duration_s,
            uses=stored.finding.uses,
        )
        changed = finding != stored.finding
        if changed:
            session.save_finding(finding, stored.fingerprint, measurement)
        out.append(Rejudged(stored.check_id, stored.finding.verdict, finding.verdict, changed))
    return out
