"""Robustness: bad files, bad items, bad models, bad checkpoints, bad sessions.

Every test ends the same way: a clear message naming the cause, a session that still opens, and
no finished work lost.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from helpers import write_case
from PIL import Image
from test_imageio import write_huge_png

from detective.case import load_case
from detective.cli import main
from detective.context import RunContext, RunOptions
from detective.engine import CheckFinished, CheckSkipped, RunFinished, RunStatus, run_playbook
from detective.findings import Finding, Verdict
from detective.ledger import session_ledger
from detective.playbook import Playbook, StageSpec
from detective.registry import all_checks
from detective.session import Session, SessionInfo


def run_checks(case_path: Path, tmp_path: Path, only: list[str], **options: object):
    """Run some checks of the default playbook through the engine, as `detective run` does."""
    case = load_case(case_path)
    session = Session.create(
        tmp_path / "session",
        SessionInfo(
            "s", str(case.path), case.file_hash, None, "vision-classification", RunOptions(), 0.0
        ),
    )
    ctx = RunContext(
        case, RunOptions(device="cpu", **options), session.artifacts_dir, session.cache_dir
    )
    # A playbook of just these checks (in this order), run by the engine like any other.
    registry = all_checks()
    playbook = Playbook(
        "robustness",
        Path("robustness.toml"),
        "",
        tuple(StageSpec(registry[c].stage, (c,)) for c in only),
        {},
        {},
    )
    events = list(run_playbook(session, playbook, ctx))
    session.close()
    return ctx, events


def finished(events: list) -> dict[str, Finding]:
    return {e.check_id: e.finding for e in events if isinstance(e, CheckFinished)}


def text_of(f: Finding) -> str:
    """Everything a user reads in a finding."""
    parts = [f.summary, f.next_step or "", *f.notes, f.error or ""]
    for t in f.tables:
        parts += [" ".join(map(str, row)) for row in t.rows]
    return "\n".join(parts)


def reopen(path: Path) -> list[str]:
    """The session opens again and its findings are all there."""
    with Session.open(path) as s:
        session_ledger(s)
        return [sf.finding.check_id for sf in s.findings()]


# --- image files ----------------------------------------------------------------------------

IMAGE_CASE = """
from pathlib import Path
import torch
from torchvision import transforms as T
from detective.demo import kit
from detective.imageio import ImageFolder

ROOT = Path({root!r})
CLASSES = ["a", "b"]
NORMALIZATION = {{"mean": [0.5], "std": [0.25]}}

def _tf():
    return T.Compose([T.Resize((16, 16)), T.ToTensor(), T.Normalize([0.5], [0.25])])

def transforms():
    return {{"train": _tf(), "eval": _tf()}}

def raw_datasets():
    return {{s: ImageFolder(ROOT / s, mode="original") for s in ("train", "val")}}

def datasets():
    return {{s: ImageFolder(ROOT / s, _tf(), mode="L") for s in ("train", "val")}}

def model():
    torch.manual_seed(0)
    return kit.SmallCNN(width=4, num_classes=2)
"""

BAD_FILES = {
    # name: what the user must read about it
    "truncated.png": "truncated",
    "empty.png": "empty (0 bytes)",
    "notes.png": "not an image",
    "huge.png": "100 megapixels",
}
ODD_FILES = {"cmyk.jpg": "CMYK", "scan16.png": "I;16", "palette.png": "P"}


def make_image_tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(12):
                arr = rng.integers(0, 255, (16, 16), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{i:03d}.png")
    odd = root / "train" / "b"
    base = np.zeros((16, 16), np.uint8)
    base[4:12, 4:12] = 200
    Image.fromarray(base).convert("CMYK").save(odd / "cmyk.jpg", quality=95)
    Image.fromarray(base.astype(np.uint16) * 257).save(odd / "scan16.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = (255, 255, 255, 255)
    Image.fromarray(rgba, "RGBA").convert("P").save(odd / "palette.png", transparency=0)
    bad = root / "train" / "a"
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(bad / "truncated.png")
    data = (bad / "truncated.png").read_bytes()
    (bad / "truncated.png").write_bytes(data[: len(data) // 2])
    (bad / "empty.png").write_bytes(b"")
    (bad / "notes.png").write_text("meeting notes, saved with the wrong extension")
    write_huge_png(bad / "huge.png")


def test_bad_image_files_are_named_and_the_run_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "images"
    make_image_tree(root)
    case = write_case(tmp_path, IMAGE_CASE.format(root=str(root)))
    ctx, events = run_checks(case, tmp_path, ["case_contract", "data_health"])
    assert events[-1] == RunFinished(RunStatus.COMPLETED, "", 0)
    # The data itself: every bad file is recorded against its item, with file and cause.
    problems = "\n".join(ctx.item_problems["train"].values())
    for name, cause in BAD_FILES.items():
        assert any(name in p and cause in p for p in ctx.item_problems["train"].values()), (
            name,
            problems,
        )
    assert len(ctx.item_problems["train"]) == len(BAD_FILES)  # the odd modes decode fine
    # The finding a user reads names each bad file and each odd mode.
    health = finished(events)["data_health"]
    assert health.verdict in (Verdict.FAIL, Verdict.WARN)
    shown = text_of(health)
    for name, cause in BAD_FILES.items():
        assert name in shown and cause in shown, name
    for mode in ODD_FILES.values():
        assert f"mode {mode}" in shown, mode
    assert reopen(tmp_path / "session") == ["case_contract", "data_health"]


def test_a_bad_item_among_the_first_ones_does_not_block_the_run(tmp_path: Path) -> None:
    """One truncated file in 50k must not stop an investigation; case_contract probes the first
    8 items and fails (a blocking check) when any of them is bad."""
    root = tmp_path / "images"
    make_image_tree(root)
    (root / "train" / "a" / "000.png").write_bytes(b"")  # the very first item
    case = write_case(tmp_path, IMAGE_CASE.format(root=str(root)))
    ctx, events = run_checks(case, tmp_path, ["case_contract", "data_health"])
    assert "000.png" in ctx.item_problems["train"][0]
    assert not [e for e in events if isinstance(e, CheckSkipped)], "the run was blocked"
    assert "000.png" in text_of(finished(events)["data_health"])


# --- items that raise, have the wrong shape, or hold NaN ---------------------------------------

ITEMS_CASE = """
import torch
from detective.demo import kit

CLASSES = [str(d) for d in range(10)]

class Flaky(kit.TensorImages):
    def __getitem__(self, i):
        if i == 9:
            raise OSError("disk read failed for shard-0009.tar")
        x, y = super().__getitem__(i)
        if i == 10:
            return x[:, :4], y                      # wrong shape
        if i == 11:
            return torch.full_like(x, float("nan")), y  # NaN tensor
        return x, y

def _data(seed):
    g = torch.Generator().manual_seed(seed)
    return Flaky(torch.rand(40, 1, 8, 8, generator=g), torch.arange(40) % 10)

def datasets():
    return {"train": _data(0), "val": _data(1)}

def model():
    torch.manual_seed(0)
    return kit.SmallCNN(width=4)
"""


def test_items_that_raise_are_misshapen_or_nan_are_named(tmp_path: Path) -> None:
    case = write_case(tmp_path, ITEMS_CASE)
    ctx, events = run_checks(case, tmp_path, ["case_contract", "data_health"])
    assert events[-1] == RunFinished(RunStatus.COMPLETED, "", 0)
    for split in ("train", "val"):
        problems = ctx.item_problems[split]
        assert sorted(problems) == [9, 10, 11]
        assert "OSError: disk read failed for shard-0009.tar" in problems[9]
        assert "shape (1, 4, 8)" in problems[10] and "(1, 8, 8)" in problems[10]
        assert "NaN" in problems[11]
    shown = text_of(finished(events)["data_health"])
    for needle in (
        "val 9 OSError: disk read failed for shard-0009.tar",
        "val 10 image has shape (1, 4, 8)",
        "val 11 image holds NaN",
    ):
        assert needle in shown, (needle, shown)  # the bad-items table: split, index, cause
    assert reopen(tmp_path / "session") == ["case_contract", "data_health"]


# --- training and models that break ------------------------------------------------------------

NAN_LOSS_CASE = """
import torch
from detective.demo import kit

CLASSES = [str(d) for d in range(10)]
TRAIN = {"epochs": 3, "batch_size": 8, "lr": 1e-3}

def datasets():
    g = torch.Generator().manual_seed(0)
    data = kit.TensorImages(torch.rand(64, 1, 8, 8, generator=g), torch.arange(64) % 10)
    return {"train": data, "val": data}

def model():
    torch.manual_seed(0)
    return kit.SmallCNN(width=4)

class LogLoss(torch.nn.Module):
    # A hand-written, probability-weighted NLL: 0 * log(0) / 0 is NaN once the probabilities
    # underflow, which happens here from the sixth step on (simulated deterministically).
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, logits, y):
        self.calls += 1
        p = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
        if self.calls > 5:
            p = p * 0.0
        return -(p * torch.log(p)).sum() / p.sum()

def loss():
    return LogLoss()
"""


def test_loss_that_becomes_nan_mid_run_is_reported_as_diverged(tmp_path: Path) -> None:
    from detective.training import train

    case = write_case(tmp_path, NAN_LOSS_CASE)
    ctx = RunContext(load_case(case), RunOptions(device="cpu"), tmp_path / "a", tmp_path / "c")
    result = train(ctx, ctx.model_copy())
    assert result.diverged
    assert len(result.step_losses) == 6, result.step_losses  # stopped at the first NaN step
    assert all(np.isfinite(result.step_losses[:5])) and not np.isfinite(result.step_losses[5])
    # Through a check and the engine: a finding, not a crash; the session keeps it.
    _, events = run_checks(case, tmp_path, ["case_contract", "loss_curve"])
    curve = finished(events)["loss_curve"]
    assert curve.verdict is not Verdict.ERROR, curve.error
    assert "NaN" in text_of(curve), text_of(curve)  # the finding says the loss went non-finite
    assert reopen(tmp_path / "session") == ["case_contract", "loss_curve"]


FORWARD_RAISES_CASE = """
import torch
from detective.demo import kit

CLASSES = [str(d) for d in range(10)]

class Broken(kit.SmallCNN):
    def forward(self, x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x64 and 128x10)")

def datasets():
    g = torch.Generator().manual_seed(0)
    data = kit.TensorImages(torch.rand(32, 1, 8, 8, generator=g), torch.arange(32) % 10)
    return {"train": data, "val": data}

def model():
    return Broken(width=4)
"""


def test_model_whose_forward_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = write_case(tmp_path, FORWARD_RAISES_CASE)
    session = tmp_path / "s"
    code = main(["run", str(case), "--session", str(session), "--device", "cpu", "--headless"])
    out = capsys.readouterr().out
    flat = " ".join(out.split())  # the console wraps long lines
    assert code == 4, out  # the case broke the run: nothing could be measured
    assert (
        "your model's forward() raised RuntimeError: mat1 and mat2 shapes cannot be multiplied "
        "(2x64 and 128x10) at case.py line 9" in flat
    ), flat
    assert "Nothing could be measured" in flat
    assert "Traceback" not in out
    # The session opens, keeps the finding that names the cause, and exports.
    with Session.open(session) as s:
        contract = {f.finding.check_id: f.finding for f in s.findings()}["case_contract"]
        assert contract.verdict is Verdict.FAIL and "mat1 and mat2" in contract.summary
    assert main(["export", str(session), "--format", "md", "-o", str(tmp_path / "r.md")]) == 0
    assert "mat1 and mat2" in (tmp_path / "r.md").read_text()


OOM_CASE = """
import torch
from detective.demo import kit

CLASSES = [str(d) for d in range(10)]
EVAL = {"batch_size": 64}

class Hungry(kit.SmallCNN):
    # Batches above 16 images do not fit in (simulated) GPU memory.
    def forward(self, x):
        if x.shape[0] > 16:
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"
            )
        return super().forward(x)

def datasets():
    g = torch.Generator().manual_seed(0)
    data = kit.TensorImages(torch.rand(100, 1, 8, 8, generator=g), torch.arange(100) % 10)
    return {"train": data, "val": data}

def model():
    torch.manual_seed(0)
    return Hungry(width=4)
"""


def test_cuda_oom_in_the_collection_pass_is_retried_with_smaller_batches(tmp_path: Path) -> None:
    from detective.collect import collect
    from detective.progress import Progress

    case = write_case(tmp_path, OOM_CASE)
    ctx = RunContext(load_case(case), RunOptions(device="cpu"), tmp_path / "a", tmp_path / "c")
    logs: list[str] = []
    col = collect(ctx, "val", Progress(on_log=logs.append))
    assert col.n == 100 and col.skipped == 0
    assert any("out of memory" in m.lower() and "16" in m for m in logs), logs


# --- checkpoints -------------------------------------------------------------------------------


class _Payload:
    """What a malicious checkpoint carries: unpickling it would create a file (or worse)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


CHECKPOINT_CASE = """
import torch
from detective.demo import kit
from detective.torchutil import safe_load

CLASSES = [str(d) for d in range(10)]

def datasets():
    data = kit.TensorImages(torch.rand(16, 1, 8, 8), torch.arange(16) % 10)
    return {{"train": data, "val": data}}

def model():
    net = kit.SmallCNN(width=4)
    net.load_state_dict(safe_load({path!r}))
    return net
"""


def test_malicious_pickle_checkpoint_is_refused_with_the_opt_out_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from detective.torchutil import safe_load

    marker = tmp_path / "pwned"
    ckpt = tmp_path / "model.pt"
    torch.save({"state": _Payload(marker)}, ckpt)
    case = write_case(tmp_path, CHECKPOINT_CASE.format(path=str(ckpt)))
    session = tmp_path / "s"
    code = main(["run", str(case), "--session", str(session), "--device", "cpu", "--headless"])
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert not marker.exists(), "the checkpoint ran code"
    assert code == 4, out  # the case broke the run: its model() could not load its weights
    assert "refused to load a checkpoint" in out and "DETECTIVE_UNSAFE_LOAD=1" in out
    assert "model.pt" in out
    assert reopen(session)[0] == "case_contract"
    # The opt-out is real, and only for files you trust: then the payload runs.
    monkeypatch.setenv("DETECTIVE_UNSAFE_LOAD", "1")
    safe_load(ckpt)
    assert marker.exists()


# --- hostile names in every export -------------------------------------------------------------

EVIL_CLASSES = [
    "<script>alert(1)</script>",
    "**bold** [x](javascript:alert(1))",
    "\x1b[31mred\x1b]0;pwned\x07",
    "a|b`c`",
]

EVIL_CASE = """
import torch
from torchvision import transforms as T
from detective.demo import kit

CLASSES = {classes!r}

def _data(seed):
    g = torch.Generator().manual_seed(seed)
    return kit.TensorImages(torch.rand(48, 1, 8, 8, generator=g), torch.arange(48) % 4)

def datasets():
    return {{"train": _data(0), "val": _data(1)}}

def model():
    torch.manual_seed(0)
    return kit.SmallCNN(width=4, num_classes=4)
"""


def test_hostile_class_names_and_paths_are_escaped_in_every_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "<img src=x onerror=alert(1)> **dir** \x1b[2J"
    folder.mkdir()
    case = write_case(folder, EVIL_CASE.format(classes=EVIL_CLASSES))
    run = ["run", str(case), "--session", str(tmp_path / "s"), "--device", "cpu"]
    assert main([*run, "--only", "case_contract,data_health,per_class_report"]) == 0
    assert "pwned" not in capsys.readouterr().out  # no terminal title/escape reached the console
    out = {}
    for fmt in ("md", "html", "json"):
        target = tmp_path / f"report.{fmt}"
        assert main(["export", str(tmp_path / "s"), "--format", fmt, "-o", str(target)]) == 0
        out[fmt] = target.read_text(encoding="utf-8")
    for fmt, text in out.items():
        assert "\x1b" not in text and "\x07" not in text, fmt
    html = out["html"]
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    md = out["md"]
    # Outside code (where Markdown renders text literally), no tag and no link may survive
    # unescaped: a backslash-escaped "\\<" renders as text.
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", md, flags=re.S))
    assert not re.search(r"(?<!\\)<(script|img)", prose), prose
    assert not re.search(r"(?<!\\)\]\(javascript:", prose), prose
    data = json.loads(out["json"])
    assert "<script>alert(1)</script>" in json.dumps(data["findings"], ensure_ascii=False)


# --- sessions that cannot be read --------------------------------------------------------------


def _session_with_a_finding(tmp_path: Path) -> Path:
    path = tmp_path / "old"
    info = SessionInfo("old", "/x/case.py", "h", None, "vision-classification", RunOptions(), 0.0)
    with Session.create(path, info) as s:
        s.save_finding(Finding("case_contract", Verdict.PASS, "fine"), "fp")
    return path


@pytest.mark.parametrize("damage", ["newer_schema", "corrupt"])
def test_unreadable_session_gives_a_clear_message_and_exit_code_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    path = _session_with_a_finding(tmp_path)
    db = path / "session.sqlite"
    if damage == "newer_schema":
        conn = sqlite3.connect(db)
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        conn.commit()
        conn.close()
        expected = "newer detective"
    else:
        raw = bytearray(db.read_bytes())
        raw[:100] = os.urandom(100)  # the header is gone: not a database any more
        db.write_bytes(bytes(raw))
        expected = "corrupted"
    before = db.read_bytes()
    commands = (
        ["ledger", str(path)],
        ["export", str(path), "--format", "json"],
        ["resume", str(path)],
        ["run", str(tmp_path / "case.py"), "--session", str(path), "--device", "cpu"],
    )
    write_case(tmp_path, ITEMS_CASE)
    for argv in commands:
        code = main(argv)
        out = capsys.readouterr()
        text = out.out + out.err
        assert code == 5, (argv, text)
        assert expected in text and str(path) in text.replace("\n", ""), (argv, text)
        assert "Traceback" not in text, argv
    assert db.read_bytes() == before, "the damaged session was modified"
