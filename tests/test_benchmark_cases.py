"""The diagnosis benchmark's case files (benchmarks/cases/): each imports, declares what it plants
(FAMILY, EXPECTED from the hypothesis vocabulary or None for a clean control, a known SYMPTOM or
None), and builds nothing at import -- data and models only when a hook is called. The suite has
the size and spread issue 13 asks for, and the CI subset covers every family. No case is run."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from detective.core.case import TrainSettings
from detective.core.hypotheses import VOCABULARY
from detective.core.playbook import Symptom

CASES = Path(__file__).resolve().parents[1] / "benchmarks" / "cases"
BENCH = CASES.parent / "diagnose.py"
CASE_FILES = sorted(p for p in CASES.glob("*.py") if not p.name.startswith("_"))
# What builds data or trains a model: none of it may run while a case file is imported.
BUILDERS = {
    "_synth": ("shapes", "photo", "photo_crops", "scene_crops", "noisy", "tinted"),
    "_textures": ("texture_patches",),
    "detective.casekit.demo.kit": ("digits_splits", "cached_model", "fit"),
}


def _declared(path: Path) -> dict[str, object]:
    """Module-level constants, read from the file's syntax tree."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = node.value.value
    return values


def eager_calls(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Import a case file with every data/model builder replaced by a recorder; the builders
    its import called."""
    calls: list[str] = []
    monkeypatch.syspath_prepend(str(CASES))  # the cases' shared data helpers
    monkeypatch.syspath_prepend(str(path.parent))
    for module_name, names in BUILDERS.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(module, name):

                def record(*_a: object, _n: str = f"{module_name}.{name}", **_k: object) -> None:
                    calls.append(_n)
                    raise RuntimeError(f"{_n} called at import")

                monkeypatch.setattr(module, name, record)
    spec = importlib.util.spec_from_file_location(f"bench_case_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    with contextlib.suppress(RuntimeError):  # the recorder raised: the call is in `calls`
        spec.loader.exec_module(module)
    for hook in ("CLASSES", "model", "datasets"):
        assert hasattr(module, hook) or calls, f"{path.name} lacks {hook}"
    return calls


@pytest.fixture(scope="module")
def diagnose():
    spec = importlib.util.spec_from_file_location("bench_diagnose_cases", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_diagnose_cases"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case_declares_what_it_plants_and_builds_nothing_at_import(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = _declared(path)
    assert isinstance(declared.get("FAMILY"), str), f"{path.name}: FAMILY missing"
    assert "EXPECTED" in declared, f"{path.name}: EXPECTED missing (None for a clean control)"
    expected = declared["EXPECTED"]
    assert expected is None or expected in VOCABULARY, f"{path.name}: unknown {expected!r}"
    symptom = declared.get("SYMPTOM")
    assert symptom is None or symptom in {s.value for s in Symptom}, f"{path.name}: {symptom!r}"
    assert eager_calls(path, monkeypatch) == []
    train = _train_keys(path)
    assert train <= {f.name for f in fields(TrainSettings)}, f"{path.name}: TRAIN has {train}"


def _train_keys(path: Path) -> set[str]:
    """The keys of the case's TRAIN dict (detective refuses a case with an unknown one)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "TRAIN" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return set()


def test_a_case_that_builds_its_data_at_import_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eager = tmp_path / "eager_case.py"
    eager.write_text(
        "from detective.casekit.demo import kit\n"
        "EXPECTED = None\nFAMILY = 'digits'\nCLASSES = list('0123456789')\n"
        "SPLITS = kit.digits_splits()  # built at import: the planted mistake\n"
        "def datasets():\n    return SPLITS\n"
        "def model():\n    return None\n"
    )
    assert eager_calls(eager, monkeypatch) == ["detective.casekit.demo.kit.digits_splits"]
    lazy = tmp_path / "lazy_case.py"
    lazy.write_text(
        "from detective.casekit.demo import kit\n"
        "EXPECTED = None\nFAMILY = 'digits'\nCLASSES = list('0123456789')\n"
        "def datasets():\n    return kit.digits_splits()\n"
        "def model():\n    return None\n"
    )
    assert eager_calls(lazy, monkeypatch) == []


def test_the_suite_has_the_size_and_spread_issue_13_asks_for() -> None:
    declared = [_declared(p) for p in CASE_FILES]
    planted = [d for d in declared if d["EXPECTED"] is not None]
    controls = [d for d in declared if d["EXPECTED"] is None]
    assert len(planted) >= 60 and len(controls) >= 8
    families = {str(d["FAMILY"]) for d in declared}
    assert len(families) >= 4 and "resnet" in families
    for family in families:
        assert any(d["FAMILY"] == family for d in controls), f"{family} has no clean control"
        assert any(d["FAMILY"] == family for d in planted), f"{family} has no planted bug"


def test_resnet_cases_use_torchvision_resnet18_without_downloading() -> None:
    resnet = [p for p in CASE_FILES if _declared(p)["FAMILY"] == "resnet"]
    assert resnet
    for path in resnet:
        text = path.read_text(encoding="utf-8")
        assert "torchvision.models.resnet18(weights=None" in text, path.name


def test_ci_subset_holds_cases_from_every_family(diagnose) -> None:
    by_name = {p.stem: str(_declared(p)["FAMILY"]) for p in CASE_FILES}
    assert set(diagnose.CI_SUBSET) <= set(by_name)
    assert {by_name[n] for n in diagnose.CI_SUBSET} == set(by_name.values())
    controls = [n for n in diagnose.CI_SUBSET if _declared(CASES / f"{n}.py")["EXPECTED"] is None]
    assert controls, "the CI subset needs a clean control"
