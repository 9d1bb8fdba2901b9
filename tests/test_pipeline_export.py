"""Pipeline findings reach the exported report with their PNG artifacts and tables."""

import json
import time
from pathlib import Path

import jsonschema
from helpers import CASES

from detective.core.case import load_case
from detective.core.context import RunContext, RunOptions
from detective.core.engine import run_one
from detective.core.progress import Progress
from detective.core.registry import get_check
from detective.core.report import build_report
from detective.core.session import Session, SessionInfo
from detective.ui.export import Format, render
from detective.ui.export.json import schema


def test_grids_and_tables_are_exported(tmp_path: Path) -> None:
    options = RunOptions(device="cpu")
    case = load_case(CASES / "digits_clean.py")
    s = Session.create(
        tmp_path / "s",
        SessionInfo(
            "s", str(case.path), case.file_hash, None, "vision-classification", options, time.time()
        ),
    )
    ctx = RunContext(case, options, s.artifacts_dir, tmp_path / "cache")
    for check_id in ("visualize_batch", "data_health"):
        measurement, finding = run_one(get_check(check_id), ctx, Progress())
        s.save_finding(finding, "fp", measurement)
    report = build_report(s)

    html = render(report, Format.HTML, s.artifacts_dir)
    assert html.count("data:image/png;base64,") == 2  # batch grid and raw grid, embedded
    assert "class counts" in html and "image properties, train vs val" in html

    md = render(report, Format.MD, s.artifacts_dir, tmp_path / "out" / "report.md")
    for name in ("visualize_batch-batch.png", "visualize_batch-raw.png"):
        assert f"../s/artifacts/{name})" in md
        assert (s.artifacts_dir / name).is_file()

    data = json.loads(render(report, Format.JSON, s.artifacts_dir))
    jsonschema.validate(data, schema())
    by_check = {f["finding"]["check_id"]: f["finding"] for f in data["findings"]}
    assert [a["name"] for a in by_check["visualize_batch"]["artifacts"]] == ["batch", "raw"]
    s.close()
