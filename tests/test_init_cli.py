"""`detective init` then `detective run`, through the real CLI, on data made from scratch.

An ImageFolder of small PNGs (3 classes of synthetic patterns), the same files as CSVs, and a
torchvision resnet18 state_dict in the formats users have (.pt, nested/DDP-prefixed, safetensors).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from byo_data import CLASSES, folder_rows, make_image_folder, resnet18_state, write_csv

from detective.core.case import load_case
from detective.ui.cli import main

FEW_CHECKS = "case_contract,per_class_report,normalization_mismatch,data_health"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/{train,val,test}/<class>/*.png and best.pt (a resnet18 state_dict for 3 classes)."""
    root = tmp_path_factory.mktemp("byo")
    make_image_folder(root / "data", {"train": 20, "val": 8, "test": 4})
    torch.save(resnet18_state(), root / "best.pt")
    return root


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())  # the console wraps long lines


def _init(*args: str) -> int:
    return main(["init", "--arch", "resnet18", "--image-size", "32", *args])


def _run(case: Path, session: Path, *extra: str) -> int:
    return main(
        [
            "run",
            str(case),
            "--headless",
            "--session",
            str(session),
            "--device",
            "cpu",
            "--sample",
            "64",
            *extra,
        ]
    )


def test_init_image_folder_writes_a_case_that_loads(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "case.py"
    code = _init(
        "--data", str(workspace / "data"), "--weights", str(workspace / "best.pt"), "-o", str(case)
    )
    out = _out(capsys)
    assert code == 0, out
    assert "train 60 · val 24 · test 12" in out
    assert "contract ✓ 3 classes" in out and "items [3, 32, 32]" in out
    assert "CHECK THIS" in case.read_text() and "Check these before you trust" in out
    loaded = load_case(case)
    assert loaded.classes == CLASSES
    assert loaded.normalization is not None and len(loaded.normalization.mean) == 3
    assert sorted(loaded.datasets()) == ["test", "train", "val"]
    # Nothing is overwritten without --force: exit 2, the file untouched.
    case.write_text(case.read_text() + "# my edit\n")
    code = _init(
        "--data", str(workspace / "data"), "--weights", str(workspace / "best.pt"), "-o", str(case)
    )
    assert code == 2 and "exists; pass --force" in _out(capsys)
    assert case.read_text().endswith("# my edit\n")
    assert (
        _init(
            "--data",
            str(workspace / "data"),
            "--weights",
            str(workspace / "best.pt"),
            "-o",
            str(case),
            "--force",
        )
        == 0
    )
    assert "# my edit" not in case.read_text()


@pytest.mark.slow
def test_init_then_run_the_default_playbook_end_to_end(workspace: Path, tmp_path: Path) -> None:
    """Through the installed command, as a user types it: exit 0 and a report."""
    case = tmp_path / "case.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "detective"]
    init = subprocess.run(
        [
            *cli,
            "init",
            "--data",
            str(workspace / "data"),
            "--arch",
            "resnet18",
            "--weights",
            str(workspace / "best.pt"),
            "--image-size",
            "32",
            "--lr",
            "0.001",
            "--optimizer",
            "adamw",
            "-o",
            str(case),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    session = tmp_path / "s"
    run = subprocess.run(
        [
            *cli,
            "run",
            str(case),
            "--headless",
            "--session",
            str(session),
            "--device",
            "cpu",
            "--sample",
            "64",
            "--symptom",
            "train_high_val_low",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Hypotheses: causes proven by intervention first" in run.stdout
    report = tmp_path / "report.md"
    export = subprocess.run(
        [*cli, "export", str(session), "-o", str(report)], capture_output=True, text=True, env=env
    )
    assert export.returncode == 0, export.stdout + export.stderr
    text = report.read_text()
    # The untrained resnet is at chance on val: the report names the underfit among the
    # hypotheses with evidence; it is in the verdict only if an intervention proved it.
    verdict, hypotheses = text.split("## Hypotheses")[:2]
    assert "## Verdict" in verdict and "`underfitting`" in hypotheses.split("## ")[0]
    if "`underfitting`" in verdict:  # supported: then with what moved the metric
        assert "What moved the metric" in verdict


def test_init_with_train_and_val_csvs_then_run(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = workspace / "data"
    rows = folder_rows(data, split_column=False)
    train = write_csv(tmp_path / "train.csv", [r for r in rows if r[0].startswith("train/")])
    val = write_csv(tmp_path / "val.csv", [r for r in rows if r[0].startswith("val/")])
    case = tmp_path / "case.py"
    code = _init(
        "--train-csv",
        str(train),
        "--val-csv",
        str(val),
        "--root",
        str(data),
        "--weights",
        str(workspace / "best.pt"),
        "--normalization",
        "imagenet",
        "-o",
        str(case),
    )
    out = _out(capsys)
    assert code == 0, out
    assert "CSV: train 60 · val 24" in out
    text = case.read_text()
    assert "csv_split(TRAIN_CSV, CLASSES, root=ROOT)" in text
    assert '"mean": [0.485, 0.456, 0.406]' in text
    assert _run(case, tmp_path / "s", "--only", FEW_CHECKS) == 0, _out(capsys)


def test_init_with_one_split_csv_and_safetensors_then_run(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import save_file

    data = workspace / "data"
    # Paths relative to the CSV's own folder (no --root): the CSV sits in data/.
    csv = write_csv(data / "all.csv", folder_rows(data))
    weights = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in resnet18_state().items()}, str(weights))
    case = tmp_path / "case.py"
    code = _init("--csv", str(csv), "--weights", str(weights), "-o", str(case))
    out = _out(capsys)
    csv.unlink()
    assert code == 0, out
    assert "CSV: train 60 · val 24 · test 12" in out
    assert 'csv_split(CSV, CLASSES, tf["eval"], split="val")' in case.read_text()
    write_csv(data / "all.csv", folder_rows(data))
    try:
        assert _run(case, tmp_path / "s", "--only", FEW_CHECKS) == 0, _out(capsys)
    finally:
        csv.unlink()


def test_wrong_number_of_classes_exits_2_and_writes_nothing(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "best.pt"
    torch.save(resnet18_state(num_classes=10), weights)
    case = tmp_path / "case.py"
    code = _init("--data", str(workspace / "data"), "--weights", str(weights), "-o", str(case))
    out = _out(capsys)
    assert code == 2, out
    assert "wrong number of classes" in out and "trained for 10 classes" in out
    assert "Nothing was written" in out and not case.exists()


def test_ddp_prefixed_checkpoint_loads_with_a_note(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "ddp.pt"
    torch.save(
        {"epoch": 9, "state_dict": {f"module.{k}": v for k, v in resnet18_state().items()}}, weights
    )
    code = _init(
        "--data",
        str(workspace / "data"),
        "--weights",
        str(weights),
        "-o",
        str(tmp_path / "case.py"),
    )
    out = _out(capsys)
    assert code == 0, out
    assert "note: weights read from the checkpoint's 'state_dict' entry" in out
    assert "note: removed the 'module.' prefix DDP/DataParallel adds" in out


def test_csv_with_missing_files_exits_2_listing_them(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = workspace / "data"
    rows = folder_rows(data)
    first_train = next(i for i, r in enumerate(rows) if r[2] == "train")
    rows[first_train] = ("train/checks/lost.png", "checks", "train")
    csv = write_csv(tmp_path / "all.csv", rows)
    code = _init("--csv", str(csv), "--root", str(data), "-o", str(tmp_path / "case.py"))
    out = _out(capsys)
    assert code == 2, out
    assert "1 of 60 listed image file(s) do not exist" in out and "lost.png" in out
    assert not (tmp_path / "case.py").exists()


def test_val_folder_missing_a_class_warns_and_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_image_folder(tmp_path / "data", {"train": 6, "val": 4}, skip={"val": ("hstripes",)})
    torch.save(resnet18_state(), tmp_path / "best.pt")
    case = tmp_path / "case.py"
    code = _init("--data", str(data), "--weights", str(tmp_path / "best.pt"), "-o", str(case))
    out = _out(capsys)
    assert code == 0, out
    assert "warning: the val split has no item of 1 class(es): hstripes" in out
    assert "nothing shifts" in out
    val = load_case(case).datasets()["val"]
    assert sorted(set(val.targets)) == [0, 2]
    assert _run(case, tmp_path / "s", "--only", "case_contract,per_class_report") == 0


def test_val_class_missing_from_train_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_image_folder(
        tmp_path / "data", {"train": 2, "val": 2}, skip={"train": ("vstripes",)}
    )
    code = _init("--data", str(data), "-o", str(tmp_path / "case.py"))
    out = _out(capsys)
    assert code == 2 and "the train split does not: vstripes" in out


def test_run_with_a_checkpoint_that_does_not_fit_exits_4(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "case.py"
    assert (
        _init(
            "--data",
            str(workspace / "data"),
            "--weights",
            str(workspace / "best.pt"),
            "-o",
            str(case),
        )
        == 0
    )
    other = tmp_path / "other.pt"
    torch.save(resnet18_state(num_classes=5), other)
    # The user points the case at another checkpoint (trained for 5 classes).
    text = re.sub(r"^WEIGHTS = .*$", f'WEIGHTS = Path("{other}")', case.read_text(), flags=re.M)
    case.write_text(text)
    capsys.readouterr()
    code = _run(case, tmp_path / "s")
    out = _out(capsys)
    assert code == 4, out
    assert "The run stopped" in out and "wrong number of classes" in out


def test_init_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init("-o", str(tmp_path / "c.py")) == 2
    assert "where is the data?" in _out(capsys)
    assert _init("--data", str(tmp_path / "nope"), "-o", str(tmp_path / "c.py")) == 2
    assert "data folder not found" in _out(capsys)
    make_image_folder(tmp_path / "d", {"train": 1, "val": 1})
    assert (
        main(
            [
                "init",
                "--data",
                str(tmp_path / "d"),
                "--arch",
                "resnet_18",
                "-o",
                str(tmp_path / "c.py"),
            ]
        )
        == 2
    )
    assert "unknown torchvision architecture 'resnet_18'" in _out(capsys)


def test_intake_given_a_data_folder_says_how_to_init(workspace: Path, tmp_path: Path) -> None:
    from detective.workflows.investigation import IntakeForm, validate

    data = workspace / "data"
    errors = {e.field: e.message for e in validate(IntakeForm(str(data), str(tmp_path / "s")))}
    assert f"detective init --data {data} --arch NAME" in errors["case_path"]
    csv = write_csv(tmp_path / "labels.csv", folder_rows(data))
    errors = {e.field: e.message for e in validate(IntakeForm(str(csv), str(tmp_path / "s")))}
    assert f"detective init --csv {csv}" in errors["case_path"]
    # A real case file is no such error.
    errors = {e.field: e.message for e in validate(IntakeForm(str(Path(__file__)), "x"))}
    assert "case_path" not in errors
