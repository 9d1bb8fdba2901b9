"""Bring your own model, the building blocks: checkpoints, architectures, data, the written case.

Each behaviour has a planted problem it must catch and a clean input it must accept.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from byo_data import CLASSES, folder_rows, make_image_folder, resnet18_state, write_csv

from detective.casekit import (
    ArchError,
    CheckpointError,
    DataError,
    build_arch,
    csv_split,
    image_folder,
    inspect_checkpoint,
    load_checkpoint,
)
from detective.casekit.scan import scan_csv, scan_image_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("byo") / "data", {"train": 6, "val": 3})


def _logits(model: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(1)
    with torch.no_grad():
        return model.eval()(torch.randn(2, 3, 32, 32))


# --- checkpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrap", "note"),
    [
        (lambda sd: sd, None),
        (lambda sd: {"epoch": 3, "model": sd}, "'model' entry"),
        (lambda sd: {"state_dict": sd, "best_acc": 0.9}, "'state_dict' entry"),
        (lambda sd: {"model_state_dict": sd}, "'model_state_dict' entry"),
        (lambda sd: {f"module.{k}": v for k, v in sd.items()}, "'module.' prefix DDP"),
        (lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()}, "torch.compile"),
        (lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}}, "'module.' prefix"),
        (lambda sd: {f"model.{k}": v for k, v in sd.items()}, "'model.' prefix every key had"),
    ],
)
def test_checkpoint_formats_load_the_real_weights(tmp_path: Path, wrap, note) -> None:  # noqa: ANN001
    source = torchvision.models.resnet18(num_classes=3)
    path = tmp_path / "best.pt"
    torch.save(wrap(source.state_dict()), path)
    fresh = torchvision.models.resnet18(num_classes=3)
    assert not torch.allclose(_logits(fresh), _logits(source))  # the load has work to do
    notes = inspect_checkpoint(fresh, path).notes
    loaded = load_checkpoint(fresh, path)
    assert torch.allclose(_logits(loaded), _logits(source))
    assert not loaded.training
    if note is None:
        assert notes == ()
    else:
        assert any(note in n for n in notes), notes


def test_safetensors_checkpoint_loads(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = torchvision.models.resnet18(num_classes=3)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = load_checkpoint(torchvision.models.resnet18(num_classes=3), path)
    assert torch.allclose(_logits(loaded), _logits(source))


def test_wrong_number_of_classes_is_named_with_the_likely_cause(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    torch.save(resnet18_state(num_classes=5), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(torchvision.models.resnet18(num_classes=3), path)
    msg = info.value.message
    assert "wrong number of classes" in msg
    assert "fc.weight is [5, 512]" in msg and "trained for 5 classes" in msg
    assert "[3, 512] in the model (3 classes in CLASSES)" in msg
    assert "class folder missing or extra" in msg
    assert "missing from the checkpoint" not in msg  # only the head differs


def test_another_architecture_lists_the_first_keys(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=3).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(torchvision.models.resnet18(num_classes=3), path)
    msg = info.value.message
    assert "key(s) missing from the checkpoint: bn1.bias, bn1.num_batches_tracked" in msg
    assert "unexpected key(s) in the checkpoint: classifier." in msg
    assert "(+" in msg  # long lists are cut, with the count of the rest
    assert "another architecture" in msg


def test_checkpoint_that_needs_arbitrary_pickles_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    torch.save({"model": resnet18_state(), "args": _Opaque()}, path)
    with pytest.raises(CheckpointError, match="refused to load.*DETECTIVE_UNSAFE_LOAD"):
        load_checkpoint(torchvision.models.resnet18(num_classes=3), path)


class _Opaque:
    pass


def test_unreadable_and_missing_checkpoints(tmp_path: Path) -> None:
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="torch.load cannot read it"):
        load_checkpoint(torchvision.models.resnet18(num_classes=3), bad)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(torchvision.models.resnet18(num_classes=3), tmp_path / "none.pt")
    torch.save({"epoch": 1, "optimizer": {"lr": 0.1}}, bad)
    with pytest.raises(CheckpointError, match="without model weights.*its keys: epoch"):
        load_checkpoint(torchvision.models.resnet18(num_classes=3), bad)


# --- architectures -------------------------------------------------------------------------------


def test_torchvision_arch_by_name_without_downloading() -> None:
    net = build_arch("resnet18", 7)
    assert net.fc.out_features == 7
    with pytest.raises(ArchError, match="did you mean resnet18"):
        build_arch("resnet-18", 3)


def test_timm_arch_when_installed() -> None:
    pytest.importorskip("timm")
    net = build_arch("timm:resnet10t", 4)
    assert _logits(net).shape == (2, 4)
    with pytest.raises(ArchError, match="unknown timm architecture 'resnet10x'.*resnet10t"):
        build_arch("timm:resnet10x", 4)


def test_timm_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    with pytest.raises(ArchError, match=r"pip install 'detective\[timm\]'"):
        build_arch("timm:convnext_tiny", 3)


# --- data ----------------------------------------------------------------------------------------


def test_split_missing_a_class_keeps_the_indices(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", {"train": 2, "val": 2}, skip={"val": ("hstripes",)})
    scan = scan_image_folder(root)
    assert scan.classes == CLASSES
    assert any("val split has no item of 1 class(es): hstripes" in w for w in scan.warnings)
    val = image_folder(root / "val", list(scan.classes))
    assert sorted(set(val.targets)) == [0, 2]  # vstripes is still class 2
    # The planted bug this prevents: the val folder read on its own shifts vstripes to 1.
    shifted = torchvision.datasets.ImageFolder(str(root / "val"))
    assert shifted.class_to_idx["vstripes"] == 1


def test_clean_folder_scans_without_warnings(data: Path) -> None:
    scan = scan_image_folder(data)
    assert scan.warnings == ()
    assert [(s.name, s.size) for s in scan.splits] == [("train", 18), ("val", 9)]


def test_val_class_that_train_lacks_is_an_error(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", {"train": 2, "val": 2}, skip={"train": ("checks",)})
    with pytest.raises(DataError, match="class\\(es\\) the train split does not: checks"):
        scan_image_folder(root)
    with pytest.raises(DataError, match="not in CLASSES: checks"):
        image_folder(root / "val", ["hstripes", "vstripes"])


def test_folder_without_splits_says_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    with pytest.raises(DataError, match="needs train/ and val/ sub-folders.*found folders: cats"):
        scan_image_folder(tmp_path)


def test_csv_with_missing_files_lists_the_first_rows(data: Path, tmp_path: Path) -> None:
    rows = folder_rows(data)
    rows[1] = ("train/checks/gone.png", "checks", "train")
    rows[4] = ("nowhere/x.png", "checks", "train")
    csv = write_csv(tmp_path / "all.csv", rows)
    with pytest.raises(DataError) as info:
        scan_csv(csv=csv, root=data)
    msg = info.value.message
    assert "2 of 18 listed image file(s) do not exist" in msg
    assert "line 3: " in msg and "gone.png" in msg and "line 6: " in msg
    assert "is the root right?" in msg
    # Clean: the same CSV without the planted rows scans.
    clean = write_csv(tmp_path / "clean.csv", folder_rows(data))
    assert scan_csv(csv=clean, root=data).classes == CLASSES


def test_csv_splits_integer_labels_and_split_aliases(data: Path, tmp_path: Path) -> None:
    rows = [
        (p, str(CLASSES.index(lab)), "valid" if s == "val" else s)
        for p, lab, s in folder_rows(data)
    ]
    csv = write_csv(tmp_path / "all.csv", rows)
    scan = scan_csv(csv=csv, root=data)
    assert scan.classes == ("0", "1", "2") and [s.name for s in scan.splits] == ["train", "val"]
    val = csv_split(csv, list(scan.classes), root=data, split="val")
    assert len(val) == 9 and sorted(set(val.targets)) == [0, 1, 2]
    image, label = val[0]
    assert image.size == (32, 32) and label == 0


def test_csv_label_not_in_classes_is_named(data: Path, tmp_path: Path) -> None:
    rows = [(p, lab, None) for p, lab, _ in folder_rows(data)]
    rows[2] = (rows[2][0], "zebra", None)
    csv = write_csv(tmp_path / "val.csv", rows)
    with pytest.raises(DataError, match=r"not in CLASSES: 'zebra' \(1 rows, first at line 4"):
        csv_split(csv, list(CLASSES), root=data)


def test_byo_modules_stay_headless_and_light() -> None:
    code = (
        "import sys, detective.casekit.init, detective.api, detective.ui.init_cli\n"
        "assert 'textual' not in sys.modules, 'the headless core imported textual'\n"
        "assert 'torch' not in sys.modules, 'torch must load inside the functions'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_detective_does_not_import_torch() -> None:
    code = (
        "import sys, detective\n"
        "assert 'torch' not in sys.modules and 'detective.api' not in sys.modules\n"
        "assert callable(detective.investigate) and 'investigate' in dir(detective)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_measured_statistics_are_the_pixels(tmp_path: Path) -> None:
    from PIL import Image

    from detective.casekit.stats import measure

    files = []
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)] * 4):
        files.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 48), colour).save(files[-1])
    stats = measure(files, image_size=32, resize=36)
    assert stats.sampled == 8 and stats.median_size == (40, 48)
    assert stats.mean == pytest.approx((0.5, 0.0, 0.5), abs=1e-3)
    assert stats.std[0] == pytest.approx(0.5, abs=1e-3) and stats.std[1] < 1e-3


def test_eval_resize_crops_large_images_and_keeps_small_ones(tmp_path: Path) -> None:
    from detective.casekit.init import InitSpec, plan_case, render_case

    large = make_image_folder(tmp_path / "large", {"train": 2, "val": 1})
    from PIL import Image

    for f in large.rglob("*.png"):  # 32 px patterns saved at 80 px
        Image.open(f).resize((80, 80)).save(f)
    spec = InitSpec(output=tmp_path / "case.py", arch="resnet18", data=large, image_size=64)
    plan = plan_case(spec)
    assert plan.resize == 73  # 64 / 0.875: the usual crop margin
    assert "T.Resize(73), T.CenterCrop(IMAGE_SIZE)" in render_case(spec, plan)
    small = make_image_folder(tmp_path / "small", {"train": 2, "val": 1})
    spec = InitSpec(output=tmp_path / "case.py", arch="resnet18", data=small, image_size=32)
    assert plan_case(spec).resize == 32  # CIFAR-like: nothing cropped away


def test_unreadable_or_headerless_csv_is_a_clear_error(data: Path, tmp_path: Path) -> None:
    binary = tmp_path / "labels.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(DataError, match="not a readable UTF-8 CSV"):
        scan_csv(csv=binary)
    headerless = tmp_path / "plain.csv"
    headerless.write_text("train/checks/000.png,checks\ntrain/checks/001.png,checks\n")
    with pytest.raises(DataError, match="cannot tell which column holds the path"):
        scan_csv(train_csv=headerless, val_csv=headerless, root=data)
