"""Reviewed snapshots of the main screens at 80×24 and 120×40.

The session is built from fixed findings (no torch, no timings, a fixed two-check playbook), and
the working folder is a temp dir, so every pixel is deterministic.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    image_ref,
    pair_ref,
    refutes,
    supports,
)
from detective.core.session import Session, SessionInfo

SIZES = [(80, 24), (120, 40)]
PLAYBOOK = """
name = "two-checks"
[[stages]]
id = "intake"
checks = ["case_contract"]
[[stages]]
id = "pipeline"
checks = ["preprocessing_parity"]
"""


def gallery_png(path: Path) -> None:
    """A small deterministic image grid: four 8×8 'digits' on a dark background."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (40, 12), (20, 20, 30))
    draw = ImageDraw.Draw(image)
    for i, colour in enumerate([(230, 230, 230), (200, 80, 80), (80, 200, 120), (90, 120, 220)]):
        x = 2 + 10 * i
        draw.rectangle([x, 2, x + 7, 9], outline=colour)
        draw.line([x, 2, x + 7, 9], fill=colour)
    image.save(path)


def build_session(root: Path, name: str = "digits", with_failures: bool = True) -> Path:
    """A session with the demo's two findings, plus (optionally) an error gallery."""
    path = root / name
    root.mkdir(parents=True, exist_ok=True)
    playbook = root / "two-checks.toml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    options = RunOptions(device="cpu", symptom="train_high_val_low")
    info = SessionInfo(
        name, "cases/digits_case.py", "0" * 16, options.symptom, str(playbook), options, 0.0
    )
    with Session.create(path, info) as s:
        s.save_finding(
            Finding(
                "case_contract",
                Verdict.PASS,
                "10 classes; train 1347, val 450; items [1, 8, 8]; model output [2, 10].",
                metrics=(Metric("classes", 10), Metric("parameters", 28970)),
                tables=(
                    Table(
                        "splits",
                        ("split", "items", "item shape", "problems"),
                        (("train", 1347, "[1, 8, 8]", 0), ("val", 450, "[1, 8, 8]", 0)),
                    ),
                ),
            ),
            "fp",
        )
        s.save_finding(
            Finding(
                "preprocessing_parity",
                Verdict.FAIL,
                "The eval transform shifts inputs by 1.3 train σ: accuracy drops from 0.98 to "
                "0.41 on the same images.",
                metrics=(
                    Metric("max mean shift", 1.31, "train σ"),
                    Metric("accuracy, train-time transform", 0.98),
                    Metric("accuracy, eval-time transform", 0.41),
                ),
                tables=(
                    Table(
                        "threshold sweep",
                        ("shift", "accuracy", "disagreement"),
                        tuple((s / 4, 0.98 - 0.45 * s / 4, 0.4 * s / 4) for s in range(6)),
                    ),
                ),
                effects=(
                    supports(
                        "preprocessing_parity",
                        Strength.STRONG,
                        "the same images score 0.98 vs 0.41 under the two transforms",
                    ),
                    refutes("normalization_mismatch", Strength.WEAK, "train inputs match"),
                ),
                next_step="Use the training Normalize constants in the eval transform.",
            ),
            "fp",
        )
        proof = InterventionOutcome(
            "preprocessing_parity", "eval.transform=train", Side.EVAL,
            "evaluating with the train transform", "val_acc", 0.41, 0.97, 0.51, 0.61, 1e-9,
            "exact McNemar", Moved.RECOVERS, n=450, gap_share=0.98,
        )
        s.save_finding(
            Finding(
                "interventions",
                Verdict.FAIL,
                "Proven by intervention: preprocessing_parity.",
                effects=(supports("preprocessing_parity", Strength.STRONG, proof.sentence),),
                interventions=(proof,),
            ),
            "fp",
        )
        if with_failures:
            s.artifacts_dir.mkdir(parents=True, exist_ok=True)
            gallery_png(s.artifacts_dir / "errors-grid.png")
            s.save_finding(
                Finding(
                    "error_gallery",
                    Verdict.WARN,
                    "The most confidently wrong predictions.",
                    tables=(
                        Table(
                            "most confidently wrong",
                            ("index", "true", "pred", "confidence"),
                            ((12, "3", "8", 0.97), (40, "7", "1", 0.91), (77, "9", "4", 0.88)),
                        ),
                        Table(
                            "failure clusters",
                            ("cluster", "size", "pattern"),
                            ((0, 21, "3 → 8, thin strokes"), (1, 9, "7 → 1, no crossbar")),
                        ),
                    ),
                    artifacts=(Artifact("errors", "errors-grid.png", "Confidently wrong"),),
                    failures=(
                        image_ref("val", 12, "3", "8", 0.97, "errors-grid.png"),
                        image_ref("val", 40, "7", "1", 0.91, "errors-grid.png"),
                        image_ref("val", 77, "9", "4", 0.88, "errors-grid.png"),
                        pair_ref("3", "8", 6),
                    ),
                ),
                "fp",
            )
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    return tmp_path


def make_app(workdir: Path, screen: str | None = None):  # noqa: ANN201
    from detective.ui.tui.app import DetectiveApp

    path = build_session(workdir / "sessions")
    if screen is not None:
        with Session.open(path) as s:
            s.kv_set("ui.screen", screen)
            s.kv_set("ui.finding", "preprocessing_parity")
    return DetectiveApp(None if screen is None else Path("sessions/digits"), "sessions")


@pytest.mark.parametrize("size", SIZES)
def test_start_screen(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    async def settle(pilot) -> None:  # noqa: ANN001
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(workdir), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", ["playbook", "finding", "ledger", "failures", "export"])
def test_session_screen(snap_compare, workdir: Path, screen: str, size: tuple[int, int]) -> None:
    async def settle(pilot) -> None:  # noqa: ANN001
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(workdir, screen), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_intake_screen(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    async def new_investigation(pilot) -> None:  # noqa: ANN001
        await pilot.app.workers.wait_for_complete()
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("ctrl+s")  # the empty form shows what is missing
        await pilot.pause()

    assert snap_compare(make_app(workdir), terminal_size=size, run_before=new_investigation)
