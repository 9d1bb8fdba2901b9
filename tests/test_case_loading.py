from pathlib import Path

import pytest
from helpers import CASES, run_check, write_case

from detective.core.case import CaseError, HookError, load_case
from detective.core.findings import Verdict

TINY = """
import torch
from detective.casekit.demo import kit

CLASSES = ["a", "b"]

def datasets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return {"train": kit.TensorImages(x[:30], y[:30]), "val": kit.TensorImages(x[30:], y[30:])}

def model():
    return kit.SmallCNN(num_classes=2)
"""


def test_good_case_loads_with_settings() -> None:
    case = load_case(CASES / "digits_clean.py")
    assert case.classes == tuple(str(d) for d in range(10))
    assert case.train_settings.epochs == 10
    assert case.normalization is not None and case.normalization.mean == (0.305,)
    assert case.has("raw_datasets") and not case.has("train")


def test_toml_beside_the_case_overrides_file_settings(tmp_path: Path) -> None:
    path = write_case(tmp_path, TINY + "\nTRAIN = {'epochs': 3}\n")
    (tmp_path / "case.toml").write_text("[train]\nepochs = 7\nlr = 0.01\n[eval]\nbatch_size = 8\n")
    case = load_case(path)
    assert (case.train_settings.epochs, case.train_settings.lr) == (7, 0.01)
    assert case.eval_settings.batch_size == 8


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    path = write_case(tmp_path, TINY + "\nTRAIN = {'epoch': 3}\n")
    with pytest.raises(CaseError, match="unknown setting.*epoch"):
        load_case(path)


def test_missing_required_hook(tmp_path: Path) -> None:
    path = write_case(tmp_path, "CLASSES = ['a']\ndef model():\n    return None\n")
    with pytest.raises(CaseError, match="missing required name.*datasets"):
        load_case(path)


def test_import_error_names_file_and_line(tmp_path: Path) -> None:
    path = write_case(tmp_path, "CLASSES = ['a']\n\nraise RuntimeError('boom at import')\n")
    with pytest.raises(HookError) as info:
        load_case(path)
    assert "at case.py line 3" in info.value.message
    assert "boom at import" in info.value.message
    assert "Traceback" in info.value.details


def test_hook_that_raises_becomes_an_error_finding(tmp_path: Path) -> None:
    path = write_case(tmp_path, TINY.replace("def datasets():", "def datasets():\n    1 / 0"))
    _, finding = run_check("case_contract", path, tmp_path)
    assert finding.verdict is Verdict.ERROR
    assert "your datasets() hook raised" in finding.summary and "at case.py line" in finding.summary
    assert "ZeroDivisionError" in finding.summary and "Traceback" in finding.error


def test_wrong_item_shape_fails_the_contract(tmp_path: Path) -> None:
    src = TINY.replace("kit.TensorImages(x[30:], y[30:])", "kit.TensorImages(x[30:, 0], y[30:])")
    _, finding = run_check("case_contract", write_case(tmp_path, src), tmp_path)
    assert finding.verdict is Verdict.FAIL
    assert "expected [C, H, W]" in finding.summary


def test_model_with_wrong_output_width_fails_the_contract(tmp_path: Path) -> None:
    src = TINY.replace("kit.SmallCNN(num_classes=2)", "kit.SmallCNN(num_classes=5)")
    _, finding = run_check("case_contract", write_case(tmp_path, src), tmp_path)
    assert finding.verdict is Verdict.FAIL
    assert "expected [batch, 2]" in finding.summary


def test_good_tiny_case_passes_the_contract(tmp_path: Path) -> None:
    _, finding = run_check("case_contract", write_case(tmp_path, TINY), tmp_path)
    assert finding.verdict is Verdict.PASS, finding.summary
    assert finding.metric("train items") == 30


def test_bad_normalization_declaration(tmp_path: Path) -> None:
    path = write_case(tmp_path, TINY + "\nNORMALIZATION = {'mean': [0.5], 'std': [0]}\n")
    with pytest.raises(CaseError, match="std > 0"):
        load_case(path)


def test_different_shapes_between_splits_warn_and_do_not_block(tmp_path: Path) -> None:
    src = TINY.replace(
        "kit.TensorImages(x[30:], y[30:])",
        "kit.TensorImages(torch.nn.functional.interpolate(x[30:], size=12), y[30:])",
    )
    _, finding = run_check("case_contract", write_case(tmp_path, src), tmp_path)
    assert finding.verdict is Verdict.WARN
    assert "preprocessing_parity" in finding.summary and "[1, 12, 12]" in finding.summary


def test_one_bad_item_among_the_probed_warns_and_does_not_block(tmp_path: Path) -> None:
    src = TINY + '''
_base = datasets

def datasets():
    d = _base()

    class Bad(type(d["train"])):
        def __getitem__(self, i):
            if i == 3:
                raise OSError("truncated file 3.png")
            return super().__getitem__(i)

    d["train"] = Bad(d["train"].x, d["train"].y)
    return d
'''
    _, finding = run_check("case_contract", write_case(tmp_path, src), tmp_path)
    assert finding.verdict is Verdict.WARN
    assert "item 3: OSError: truncated file 3.png" in finding.summary
