"""A model card filled from measured facts only: each value names the check that measured it;
what only the user can know is marked `to_fill` and left blank for them.

Built from a report's findings (no model needed), so it can be regenerated from a stored
session. Sections follow Mitchell et al., "Model Cards for Model Reporting" (2019), restricted
to what detective measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detective.core.findings import Finding, Table

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


def _metric_facts(f: Finding | None, keys: Sequence[tuple[str, str]]) -> list[CardFact]:
    """(metric key in the finding, label on the card) pairs that the finding has: found by the
    stable key, so renaming a metric's label never drops a fact."""
    out = []
    if f is None:
        return out
    for key, label in keys:
        m = f.metric_by_key(key)
        if m is not None:
            out.append(CardFact(label, _fmt(m.value, m.unit), f.check_id))
    return out


def _table(f: Finding | None, key: str) -> Table | None:
    return f.table_by_key(key) if f is not None else None


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
                ("trainable_parameters", "Trainable parameters"),
            ],
        )

    data = [_user("Training data provenance and license"), _user("How the splits were made")]
    if contract is not None:
        data += [
            CardFact(f"{m.key.removeprefix('items.')} examples", f"{m.value:.0f}", "case_contract")
            for m in contract.metrics
            if m.key.startswith("items.")
        ]
    data_tables = [t for t in (_table(shift, "class_proportions"),) if t is not None]
    data += _metric_facts(
        shift,
        [
            ("class_tvd", "Class-balance shift, train vs eval (total variation)"),
            ("max_property_ks", "Largest image-property shift (KS)"),
        ],
    )

    perf = _metric_facts(
        per_class,
        [
            ("examples", "Eval examples"),
            ("accuracy", "Accuracy"),
            ("balanced_accuracy", "Balanced accuracy"),
            ("macro_f1", "Macro F1"),
            ("support_ratio", "Class support ratio (largest/smallest)"),
        ],
    )
    perf += _metric_facts(
        metric,
        [
            ("reported_metric", "Reported metric (user)"),
            ("recomputed_accuracy", "Recomputed accuracy"),
        ],
    )
    perf_tables = [t for t in (_table(per_class, "per_class"),) if t is not None]

    cal = _metric_facts(
        calib,
        [
            ("ece", "ECE (equal-mass bins)"),
            ("mean_confidence", "Mean confidence"),
            ("temperature", "Fitted temperature"),
            ("heldout_ece_after_ts", "ECE after temperature scaling (held out)"),
        ],
    )

    risks = []
    slice_table = _table(slices, "significant_slices")
    if slices is not None:
        n = len(slice_table.rows) if slice_table else 0
        risks.append(
            CardFact("Failure slices (significantly worse than the rest)", str(n), "error_slices")
        )
    if labels is not None:
        risks += [
            CardFact(
                f"Label issues, {m.key.removeprefix('probably_wrong_rate.')}",
                _fmt(m.value, "fraction"),
                "label_issues",
            )
            for m in labels.metrics
            if m.key.startswith("probably_wrong_rate.")
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
