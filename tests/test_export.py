import json
import re
import time
from pathlib import Path

import jsonschema
import pytest

from detective.core.context import RunOptions
from detective.core.findings import (
    Artifact,
    Finding,
    InterventionOutcome,
    Metric,
    Moved,
    Side,
    Strength,
    Table,
    Verdict,
    supports,
)
from detective.core.report import build_report
from detective.core.session import Experiment, ReviewVerdict, Session, SessionInfo
from detective.ui.export import Format, render
from detective.ui.export.json import schema

EVIL = "<script>alert(1)</script> **bold** [x](javascript:alert(1)) \x1b[31mred\x1b[0m | pipe"


@pytest.fixture
def session(tmp_path: Path) -> Session:
    info = SessionInfo(
        EVIL,
        f"/cases/{EVIL}.py",
        "abc",
        "one_class_bad",
        "vision-classification",
        RunOptions(),
        time.time(),
    )
    s = Session.create(tmp_path / "s", info)
    s.artifacts_dir.mkdir(parents=True)
    png = s.artifacts_dir / "grid.png"
    from PIL import Image

    Image.new("RGB", (4, 4), (255, 0, 0)).save(png)
    s.save_finding(
        Finding(
            "preprocessing_parity",
            Verdict.FAIL,
            f"class {EVIL} is bad",
            metrics=(Metric("shift", 0.39, "σ"), Metric("nan metric", float("nan"))),
            tables=(Table("t", ("class", "n"), ((EVIL, 3), ("ok", None))),),
            artifacts=(Artifact("grid", "grid.png", EVIL), Artifact("escape", "../../etc/passwd")),
            effects=(supports("preprocessing_parity", Strength.STRONG, EVIL),),
            next_step=EVIL,
            error=f"Traceback {EVIL}\n```\nmore",
        ),
        "fp",
    )
    proof = InterventionOutcome(
        "preprocessing_parity", "eval.transform=train", Side.EVAL, f"evaluating with {EVIL}",
        "val_acc", 0.6, 0.9, 0.25, 0.35, 1e-9, "exact McNemar", Moved.RECOVERS, n=400,
        gap_share=0.8, notes=(EVIL,),
    )
    s.save_finding(
        Finding("interventions", Verdict.FAIL, "proven",
                effects=(supports("preprocessing_parity", Strength.STRONG, proof.sentence),),
                interventions=(proof,)),
        "fp",
    )
    s.add_experiment(Experiment("fix", (EVIL,), "val_acc", 0.9, 0.95, confounded=False))
    s.add_review("hypothesis", "preprocessing_parity", ReviewVerdict.AGREE, EVIL)
    s.add_note("preprocessing_parity", EVIL)
    yield s
    s.close()


def test_json_schema_knows_every_intervention_outcome() -> None:
    from detective.core.findings import Moved

    effect = schema()["$defs"]["intervention"]["properties"]["effect"]["enum"]
    assert set(effect) == {m.value for m in Moved}


def test_json_export_validates_against_its_schema(session: Session) -> None:
    data = json.loads(render(build_report(session), Format.JSON, session.artifacts_dir))
    jsonschema.validate(data, schema())
    assert data["ranking"][0] == "preprocessing_parity"
    assert data["hypotheses"][0]["status"] == "supported"
    proof = data["hypotheses"][0]["proof"]
    assert proof["label"] == "eval.transform=train" and proof["delta"] == pytest.approx(0.3)
    assert proof["gap_share"] == 0.8 and "moves val accuracy 60.0% → 90.0%" in proof["sentence"]
    assert data["experiments"][0]["after"] == 0.95
    assert data["findings"][0]["finding"]["metrics"][1]["value"] is None  # NaN → null


def test_html_is_self_contained_and_escaped(session: Session) -> None:
    out = render(build_report(session), Format.HTML, session.artifacts_dir)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "\x1b" not in out
    assert "data:image/png;base64," in out  # embedded, no external file needed
    assert "missing artifact ../../etc/passwd" in out  # never reads outside the session


def test_markdown_is_escaped(session: Session, tmp_path: Path) -> None:
    out = render(build_report(session), Format.MD, session.artifacts_dir, tmp_path / "out" / "r.md")
    assert "\x1b" not in out
    prose = re.sub(r"```.*?```", "", out, flags=re.S)  # code blocks render literally
    prose = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", prose)  # and so do code spans
    assert "<script>" not in prose
    assert out.count("```") == 2, "a user string must not close the code fence"
    assert "\\*\\*bold\\*\\*" in out and "\\[x\\](javascript" in out
    # In a code span the path shows as it is: no backslashes that would show up literally.
    assert "`/cases/<script>alert(1)</script> **bold**" in out
    assert "(../s/artifacts/grid.png)" in out  # relative to where the report is written
    assert "| class \\<script" in out or "\\<script\\>" in out


def test_markdown_escapes_only_what_would_become_markup() -> None:
    from detective.ui.export.text import md_escape, md_span

    assert md_escape("accuracy 0.39 at train-time (val)!") == "accuracy 0.39 at train-time (val)!"
    assert md_escape("# a heading? - no") == "\\# a heading? - no"
    assert md_escape("- a list item") == "\\- a list item"
    assert md_escape("3. third") == "3\\. third"
    assert md_escape("a_b *c* `d` <e> | ~f~") == "a\\_b \\*c\\* \\`d\\` \\<e\\> \\| \\~f\\~"
    assert md_span("per_class_report") == "`per_class_report`"
    assert md_span("a`b") == "``a`b``"


def test_exports_carry_the_intake_model_and_what_was_tried(
    session: Session, tmp_path: Path
) -> None:
    from detective.core.intake import IntakeForm, save_form
    from detective.ui.export.json import report_dict

    save_form(
        session,
        IntakeForm(
            "case.py",
            "s",
            "one_class_bad",
            model_notes="ResNet-18, AdamW 1e-3",
            tried="lowered the LR to 0.39e-3",
        ),
    )
    report = build_report(session)
    md = render(report, Format.MD, session.artifacts_dir, tmp_path / "r.md")
    assert "- Model / config: ResNet-18, AdamW 1e-3" in md
    assert "- Already tried: lowered the LR to 0.39e-3" in md
    html = render(report, Format.HTML, session.artifacts_dir, tmp_path / "r.html")
    assert "ResNet-18, AdamW 1e-3" in html and "lowered the LR" in html
    data = report_dict(report)["session"]
    assert (data["model_notes"], data["tried"]) == (
        "ResNet-18, AdamW 1e-3",
        "lowered the LR to 0.39e-3",
    )


def test_cli_export_writes_all_formats(session: Session, tmp_path: Path) -> None:
    from detective.ui.cli import main

    for fmt in ("md", "html", "json"):
        out = tmp_path / f"r.{fmt}"
        assert main(["export", str(session.path), "--format", fmt, "-o", str(out)]) == 0
        assert out.stat().st_size > 500
