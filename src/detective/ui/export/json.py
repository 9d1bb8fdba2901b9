"""Machine-readable report; its schema is `report.schema.json` beside this file (versioned)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from detective.core.report import Report
from detective.core.serde import to_jsonable


def report_dict(report: Report) -> dict[str, Any]:
    data = to_jsonable(report)
    # Convenience for machines: the ranked hypotheses' ids, strongest first.
    data["ranking"] = [h["hypothesis_id"] for h in data["hypotheses"]]
    # What proves each supported cause, as fields: the change and what moved (schema 1.x).
    for h, entry in zip(data["hypotheses"], report.hypotheses, strict=True):
        proof = entry.proof if entry.status.value == "supported" else None
        h["proof"] = None if proof is None else {
            **to_jsonable(proof), "delta": proof.delta, "sentence": proof.sentence,
        }
    return data


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


def schema() -> dict[str, Any]:
    text = (resources.files("detective") / "ui" / "export" / "report.schema.json").read_text(
        "utf-8"
    )
    return json.loads(text)
