"""The model card: measured facts only (each names its check), user fields marked, all formats."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema

from detective.core.context import RunOptions
from detective.core.findings import Finding, Metric, Table, Verdict
from detective.core.report import build_report
from detective.core.session import Session, SessionInfo
from detective.ui.export import Format, render
from detective.ui.export.json import schema
from detective.ui.export.text import md_escape
from detective.workflows.modelcard import TO_FILL, build_model_card


def _findings() -> list[Finding]:
    return [
        Finding(
            "case_contract",
            Verdict.PASS,
            "ok",
            metrics=(
                Metric("classes", 10, key="classes"),
                Metric("train items", 1347, key="items.train"),
                Metric("val items", 450, key="items.val"),
            ),
        ),
        Finding(
            "per_class_report",
            Verdict.PASS,
            "ok",
            metrics=(
                Metric("examples", 450, key="examples"),
                Metric("accuracy", 0.951, key="accuracy"),
                Metric("balanced accuracy", 0.95, key="balanced_accuracy"),
                Metric("macro F1", 0.952, key="macro_f1"),
            ),
            tables=(
                Table("per class", ("class", "support", "recall"), (("0", 45, 1.0),), "per_class"),
            ),
        ),
        Finding(
            "calibration",
            Verdict.WARN,
            "under",
            metrics=(
                Metric("ECE (equal-mass)", 0.111, key="ece"),
                Metric("fitted temperature", 0.54, key="temperature"),
            ),
        ),
        Finding(
            "error_slices",
            Verdict.WARN,
            "slice",
            tables=(
                Table(
                    "significant slices, by share of errors",
                    ("slice", "size"),
                    (("brightness < 0.2", 112),),
                    "significant_slices",
                ),
            ),
        ),
        Finding(
            "label_issues",
            Verdict.PASS,
            "ok",
            metrics=(
                Metric(
                    "val: probably-wrong rate", 0.002, "fraction", key="probably_wrong_rate.val"
                ),
            ),
        ),
    ]


def test_card_holds_measured_facts_and_marks_user_fields() -> None:
    card = build_model_card(_findings(), ["Training and evaluation preprocess images differently"])
    facts = {f.name: f for s in card.sections for f in s.facts}
    assert facts["Accuracy"].value == "0.951" and facts["Accuracy"].source == "per_class_report"
    assert facts["val examples"].value == "450" and facts["train examples"].value == "1347"
    assert facts["ECE (equal-mass bins)"].source == "calibration"
    assert facts["Failure slices (significantly worse than the rest)"].value == "1"
    assert facts["Label issues, val"].value == "0.002"
    assert "preprocess" in facts["Supported failure hypotheses"].value
    user = [f for f in facts.values() if f.to_fill]
    assert {"Intended use", "Ethical considerations"} <= {f.name for f in user}
    assert all(f.value == TO_FILL and f.source == "user" for f in user)
    # nothing invented: a measured fact always names a check that produced it
    measured = {f.source for f in facts.values() if not f.to_fill}
    assert measured <= {
        "case_contract",
        "per_class_report",
        "calibration",
        "error_slices",
        "label_issues",
        "ledger",
    }


def test_card_without_measurements_has_only_user_fields() -> None:
    card = build_model_card([])
    facts = [f for s in card.sections for f in s.facts]
    assert all(f.to_fill or f.source == "ledger" for f in facts)


def test_card_in_every_export_format(tmp_path: Path) -> None:
    info = SessionInfo(
        "s", "/c.py", "abc", None, "vision-classification", RunOptions(), time.time()
    )
    s = Session.create(tmp_path / "s", info)
    for f in _findings():
        s.save_finding(f, "fp")
    report = build_report(s)
    data = json.loads(render(report, Format.JSON, s.artifacts_dir))
    jsonschema.validate(data, schema())
    names = [f["name"] for sec in data["model_card"]["sections"] for f in sec["facts"]]
    assert "Accuracy" in names and "Intended use" in names
    md = render(report, Format.MD, s.artifacts_dir)
    assert "## Model card" in md and f"**{md_escape(TO_FILL)}**" in md
    assert f"| Accuracy | {md_escape('0.951')} | per\\_class\\_report |" in md
    html = render(report, Format.HTML, s.artifacts_dir)
    assert "<h2>Model card</h2>" in html and f"<b>{TO_FILL}</b>" in html
    s.close()


def test_card_finds_facts_by_key_whatever_their_labels_say() -> None:
    """Renaming a metric's or a table's human label never drops a card fact; a finding without
    the key (a label lookup's only hope) gives no fact rather than a wrong one."""
    from dataclasses import replace

    renamed = []
    for f in _findings():
        metrics = tuple(replace(m, name=f"renamed {i}") for i, m in enumerate(f.metrics))
        tables = tuple(replace(t, name=f"renamed table {i}") for i, t in enumerate(f.tables))
        renamed.append(replace(f, metrics=metrics, tables=tables))
    facts = {f.name: f.value for s in build_model_card(renamed).sections for f in s.facts}
    assert facts["Accuracy"] == "0.951" and facts["Label issues, val"] == "0.002"
    assert facts["val examples"] == "450"
    assert facts["Failure slices (significantly worse than the rest)"] == "1"

    unkeyed = [
        replace(f, metrics=tuple(replace(m, key="") for m in f.metrics)) for f in _findings()
    ]
    facts = {f.name for s in build_model_card(unkeyed).sections for f in s.facts}
    assert "Accuracy" not in facts and "Label issues, val" not in facts
