"""`detective checks` at 80 columns: every hypothesis id whole, every line within the width."""

from __future__ import annotations

import re

import pytest

from detective.core.registry import all_checks
from detective.ui.cli import main


@pytest.mark.parametrize("width", [80, 60, 200])
def test_checks_never_cut_an_id(
    width: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    words = set(re.findall(r"[\w]+", out))
    for check in all_checks().values():
        assert check.id in words
        missing = [h for h in check.hypotheses if h not in words]
        assert not missing, (check.id, missing)
