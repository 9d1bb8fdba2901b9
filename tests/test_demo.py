"""The demo: real digits, a planted flaw, the whole playbook — the report must name the flaw."""

import json
from pathlib import Path

from detective.casekit.demo import DEMO_FLAW
from detective.ui.cli import main


def test_demo_names_its_planted_flaw_first(tmp_path: Path) -> None:
    session = tmp_path / "demo"
    assert main(["demo", "--session", str(session), "--device", "cpu"]) == 0
    assert (session / "report.md").is_file() and (session / "report.html").is_file()
    out = tmp_path / "r.json"
    assert main(["export", str(session), "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    supported = [h["hypothesis_id"] for h in data["hypotheses"] if h["status"] == "supported"]
    assert supported and supported[0] == DEMO_FLAW, supported
    # Running the demo again starts afresh instead of failing on the existing session.
    assert main(["demo", "--session", str(session), "--device", "cpu"]) == 0
