"""A model card filled from measured facts only: each value names the check that measured it;
what only the user can know is marked `to_fill` and left blank for them.

Built from a report's findings (no model needed), so it can be regenerated from a stored
session. Sections follow Mitchell et al., "Model Cards for Model Reporting" (2019), restricted
to what detective measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detective.findings import Finding, Table

TO_FILL = "TO FILL (user)"


@dataclass(frozen=True)
class CardFact:
    name: str
    value: str
    source: str  # the check id that measured it, or "user"
    to_fill: bool = False


@dataclass(frozen=True)
class CardSection:
    title: str
    facts: tuple[CardFact, ...] = ()
    tables: tuple[Table, ...] = ()


@dataclass(frozen=True)
class ModelCard:
    sections: tuple[CardSection, ...]


def _user(name: str) -> CardFact:
    return CardFact(name, TO_FILL, "user", True)


def _fmt(value: float, unit: str = "") -> str:
    if unit == "fraction" or 0 < abs(value) < 1 and unit != "raw":
        return f"{value:.3f}"
    return f"{value:.4g}"


def _metric_facts(f: Finding | None, names: Sequence[tuple[str, str]]) -> list[CardFact]:
    """(metric name in the finding, label on the card) pairs that the finding has."""
    out = []
    if f is None:
        return out
    have = {m.name: m for m in f.metrics}
    for metric, label in names:
        if metric in have:
            out.append(CardFact(label, _fmt(have[metric].value, have[metric].unit), f.check_id))
    return out


def _table(f: Finding | None, prefix: str) -> Table | None:
    if f is None:
        return None
    return next((t for t in f.tables if t.name.startswith(prefix)), None)


def build_model_card(findings: Sequence[Finding], supported: Sequence[str] = ()) -> ModelCard:
    """`findings`: the session's latest findings; `supported`: titles of supported hypotheses."""
    by_id = {f.check_id: f for f in findings}
    contract = by_id.get("case_contract")
    per_class = by_id.get("per_class_report")
    calib = by_id.get("calibration")
    slices = by_id.get("error_slices")
    labels = by_id.get("label_issues")
    shift = by_id.get("eval_representativeness")
    metric = by_id.get("metric_recompute")

    details = [
        _user("Intended use"),
        _user("Out-of-scope uses"),
        _user("Owners / contact"),
        _user("Model version and date"),
    ]
    if contract is not None:
        details += _metric_facts(
            contract,
            [
                ("classes", "Classes"),
                ("parameters", "Parameters"),
                ("trainable parameters", "Trainable parameters"),
            ],
        )

    data = [_user("Training data provenance and license"), _user("How the splits were made")]
    if contract is not None:
        data += [
            CardFact(f"{m.name.removesuffix(' items')} examples", f"{m.value:.0f}", "case_contract")
            for m in contract.metrics
            if m.name.endswith(" items")
        ]
    data_tables = [t for t in (_table(shift, "class proportions"),) if t is not None]
    data += _metric_facts(
        shift,
        [
            (
                "class proportions: total variation",
                "Class-balance shift, train vs eval (total variation)",
            ),
            ("largest property KS", "Largest image-property shift (KS)"),
        ],
    )

    perf = _metric_facts(
        per_class,
        [
            ("examples", "Eval examples"),
            ("accuracy", "Accuracy"),
            ("balanced accuracy", "Balanced accuracy"),
            ("macro F1", "Macro F1"),
            ("support ratio (largest/smallest)", "Class support ratio (largest/smallest)"),
        ],
    )
    perf += _metric_facts(
        metric,
        [
            ("reported metric", "Reported metric (user)"),
            ("recomputed accuracy", "Recomputed accuracy"),
        ],
    )
    perf_tables = [t for t in (_table(per_class, "per class"),) if t is not None]

    cal = _metric_facts(
        calib,
        [
            ("ECE (equal-mass)", "ECE (equal-mass bins)"),
            ("mean confidence", "Mean confidence"),
            ("fitted temperature", "Fitted temperature"),
            ("held-out ECE after temperature scaling", "ECE after temperature scaling (held out)"),
        ],
    )

    risks = []
    slice_table = _table(slices, "significant slices")
    if slices is not None:
        n = len(slice_table.rows) if slice_table else 0
        risks.append(
            CardFact("Failure slices (significantly worse than the rest)", str(n), "error_slices")
        )
    if labels is not None:
        risks += [
            CardFact(
                f"Label issues, {m.name.split(':')[0]}", _fmt(m.value, "fraction"), "label_issues"
            )
            for m in labels.metrics
            if m.name.endswith("probably-wrong rate")
        ]
    risks.append(CardFact("Supported failure hypotheses", "; ".join(supported) or "none", "ledger"))
    risks += [_user("Ethical considerations"), _user("Other known limitations")]

    sections = [
        CardSection("Model details", tuple(details)),
        CardSection("Data", tuple(data), tuple(data_tables)),
        CardSection("Performance (eval split)", tuple(perf), tuple(perf_tables)),
        CardSection("Calibration", tuple(cal)),
        CardSection(
            "Known failure modes and limitations",
            tuple(risks),
            tuple(t for t in (slice_table,) if t is not None and t.rows),
        ),
    ]
    return ModelCard(tuple(s for s in sections if s.facts or s.tables))
