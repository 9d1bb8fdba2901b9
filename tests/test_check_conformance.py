"""One conformance test for every registered check (cf. sklearn parametrize_with_checks)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from helpers import CASES, context_for

from detective.core.engine import run_one
from detective.core.findings import Finding, Verdict
from detective.core.hypotheses import VOCABULARY, Stage
from detective.core.progress import Cancelled, Progress
from detective.core.registry import all_checks
from detective.core.serde import from_jsonable, to_jsonable

CHECKS = sorted(all_checks())
OPTIONAL_NEEDS = ("raw_datasets", "transforms", "NORMALIZATION", "split:test", "reported_metric",
                  "logs", "llm")


@pytest.mark.parametrize("check_id", CHECKS)
def test_declaration(check_id: str) -> None:
    cls = all_checks()[check_id]
    assert cls.id == check_id and cls.title and len(cls.description) > 20
    assert isinstance(cls.stage, Stage)
    assert all(h in VOCABULARY for h in cls.hypotheses)
    assert cls.measurement_type is not None


@pytest.mark.parametrize("check_id", CHECKS)
def test_lives_at_checks_stage_id(check_id: str) -> None:
    """The layout shows the architecture: checks/<stage>/<check_id>.py, one check a file."""
    import inspect

    path = Path(inspect.getfile(all_checks()[check_id]))
    assert (path.parent.name, path.stem) == (all_checks()[check_id].stage.value, check_id)
    assert path.parent.parent.name == "checks"


class _Tripwire:
    """Stands in for a check's thresholds while it measures: reading one is a bug (measure
    reads settings; judge applies thresholds to unfiltered statistics)."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"measure() read thresholds.{name}")


def _measure_without_thresholds(cls):  # noqa: ANN001, ANN202
    class Checked(cls):  # type: ignore[misc, valid-type]
        def run(self, ctx, progress):  # noqa: ANN001, ANN202
            real, self.thresholds = self.thresholds, _Tripwire()
            try:
                measurement = self.measure(ctx, progress)
            finally:
                self.thresholds = real
            return measurement, self.judge(measurement)

    return Checked


def test_the_tripwire_catches_a_measure_that_reads_thresholds(tmp_path: Path) -> None:
    from detective.checks.error_analysis.worst_examples import WorstExamples

    class Leaky(WorstExamples):
        def measure(self, ctx, progress):  # noqa: ANN001, ANN202
            assert self.thresholds.confident > 0  # the planted bug
            return super().measure(ctx, progress)

    ctx = context_for(CASES / "tiny_tensor.py", tmp_path)
    _, finding = run_one(_measure_without_thresholds(Leaky), ctx, Progress())
    assert finding.verdict is Verdict.ERROR and "read thresholds.confident" in finding.summary
    _, clean = run_one(_measure_without_thresholds(WorstExamples), ctx, Progress())
    assert clean.verdict is not Verdict.ERROR, clean.summary


@pytest.mark.parametrize("check_id", CHECKS)
def test_runs_on_the_smallest_case_and_rejudges_from_the_store(check_id: str,
                                                               tmp_path: Path) -> None:
    """Needs are honoured (missing hook → not applicable, never a crash); the measurement
    round-trips through the store and re-judging gives the same finding; progress is monotonic."""
    cls = all_checks()[check_id]
    ctx = context_for(CASES / "tiny_tensor.py", tmp_path)
    fractions: list[float] = []
    progress = Progress(lambda u: fractions.append(u.fraction))
    measurement, finding = run_one(_measure_without_thresholds(cls), ctx, progress)
    lacking = [n for n in cls.needs if n in OPTIONAL_NEEDS]
    if lacking:
        assert finding.verdict is Verdict.NOT_APPLICABLE, finding.summary
        assert "not applicable: needs" in finding.summary
        return
    assert finding.verdict is not Verdict.ERROR, finding.error or finding.summary
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
    stored = json.loads(json.dumps(to_jsonable(measurement)))
    rebuilt = from_jsonable(cls.measurement_type, stored)
    again = cls().judge(rebuilt)
    assert isinstance(again, Finding)
    assert (again.verdict, again.summary, again.effects) == (
        finding.verdict, finding.summary, finding.effects)
    for artifact in finding.artifacts:
        assert (ctx.artifacts_dir / artifact.path).is_file()
    # A clean-but-untrained tiny model is not evidence an expert would act on for most checks;
    # what matters here is that nothing crashed and the result re-judges identically.


@pytest.mark.parametrize("check_id", CHECKS)
def test_cancel_is_honoured(check_id: str, tmp_path: Path) -> None:
    cls = all_checks()[check_id]
    case = "tiny_tensor.py"
    if any(n in OPTIONAL_NEEDS for n in cls.needs):
        case = "digits_clean.py"  # has raw_datasets, transforms and NORMALIZATION
    ctx = context_for(CASES / case, tmp_path)
    if ctx.missing(cls.needs):
        pytest.skip(f"no test case provides {ctx.missing(cls.needs)}")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run_one(cls, ctx, Progress(cancel=cancel))
