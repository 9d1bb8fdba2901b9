"""`detective.investigate`: the README's example runs as written, on data made from scratch."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import pytest
import torch
from byo_data import make_image_folder, resnet18_state

ROOT = Path(__file__).resolve().parent.parent
# The default playbook runs end to end in test_init_cli; here a few checks keep the test fast.
FEW = ["case_contract", "per_class_report", "baselines", "normalization_mismatch"]


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- api-example:begin -->", 1)[1].split("<!-- api-example:end -->")[0]
    return block.split("```python", 1)[1].rsplit("```", 1)[0]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_image_folder(tmp_path / "data", {"train": 12, "val": 6})
    torch.save(resnet18_state(), tmp_path / "best.pt")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_api_example_runs(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import detective.api

    real = detective.api.investigate
    monkeypatch.setattr(
        detective.api, "investigate", functools.partial(real, only=FEW, device="cpu", sample=64)
    )
    scope: dict[str, object] = {}
    exec(compile(readme_example(), "README.md", "exec"), scope)  # noqa: S102
    printed = capsys.readouterr().out
    report = scope["report"]
    assert isinstance(report, detective.api.Investigation)
    # An untrained resnet18 is at chance: the baselines check says it underfits. On 6 val
    # images a class no intervention can prove anything, so it is evidence near the top, and
    # whatever is supported carries the intervention that proved it.
    ranked = [h.hypothesis_id for h in report.hypotheses if h.evidence]
    assert "underfitting" in ranked[:3]
    assert report.hypotheses[0].evidence
    assert all(h.proof is not None and h.hypothesis_id in printed for h in report.supported)
    saved = (workspace / "sessions/exp7/report.md").read_text()
    assert "# Findings: exp7" in saved and "`underfitting`" in saved
    assert {f.finding.check_id for f in report.findings} == {*FEW, "interventions"}
    # Same session, same weights: nothing is measured again.
    again = real(
        scope["model"],
        train=scope["train_ds"],
        val=scope["val_ds"],
        classes=scope["classes"],
        optimizer=lambda m: torch.optim.AdamW(m.parameters(), 1e-3),
        symptom="train_high_val_low",
        session="sessions/exp7",
        only=FEW,
        device="cpu",
        sample=64,
        verbose=False,
    )
    assert [f.id for f in again.findings] == [f.id for f in report.findings]


@pytest.mark.usefixtures("workspace")
def test_the_callers_model_is_not_modified() -> None:
    import torchvision

    import detective
    from detective.casekit import image_folder

    model = torchvision.models.resnet18(num_classes=3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tf = torchvision.transforms.ToTensor()
    classes = ["checks", "hstripes", "vstripes"]
    result = detective.investigate(
        model,
        train=image_folder("data/train", classes, tf),
        val=image_folder("data/val", classes, tf),
        classes=classes,
        session="s",
        only=["case_contract", "overfit_one_batch"],
        device="cpu",
        sample=32,
        verbose=False,
    )
    assert result.status.value == "completed" and result.crashed_checks == 0
    assert model.training  # not switched to eval
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.usefixtures("workspace")
def test_bad_arguments_and_a_broken_model_are_clear() -> None:
    import torchvision

    import detective
    from detective.casekit import image_folder
    from detective.core.case import CaseError

    classes = ["checks", "hstripes", "vstripes"]
    tf = torchvision.transforms.ToTensor()
    data = {
        "train": image_folder("data/train", classes, tf),
        "val": image_folder("data/val", classes, tf),
    }
    model = torchvision.models.resnet18(num_classes=3)
    with pytest.raises(ValueError, match="unknown symptom 'slow'"):
        detective.investigate(model, **data, classes=classes, symptom="slow")
    with pytest.raises(ValueError, match="only names checks not in the playbook: nope"):
        detective.investigate(model, **data, classes=classes, only=["nope"])
    # Planted: 5 outputs for 3 classes. The contract fails, nothing can be measured: the run
    # stops with a CaseError that says why (the CLI's exit 4).
    wide = torchvision.models.resnet18(num_classes=5)
    with pytest.raises(CaseError, match=r"expected \[batch, 3\]"):
        detective.investigate(
            wide,
            **data,
            classes=classes,
            session="w",
            only=["case_contract", "baselines"],
            device="cpu",
            verbose=False,
        )

    # A forward that raises fails the contract, naming the error.
    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom in forward")

    with pytest.raises(CaseError, match="boom in forward"):
        detective.investigate(
            Broken(),
            **data,
            classes=classes,
            session="b",
            only=["case_contract"],
            device="cpu",
            verbose=False,
        )

    # A model that cannot even be copied breaks the run: a CaseError naming the hook.
    class Locked(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lock = threading.Lock()

    with pytest.raises(
        CaseError, match=r"the run stopped: your model\(\) hook raised .* in <python:locked>"
    ):
        detective.investigate(
            Locked(),
            **data,
            classes=classes,
            session="l",
            only=["case_contract"],
            device="cpu",
            verbose=False,
        )
