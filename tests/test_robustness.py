"""Robustness: bad files, bad items, bad models, bad checkpoints, bad sessions.

Every test ends the same way: a clear message naming the cause, a session that still opens, and
no finished work lost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import write_case
from PIL import Image
from test_imageio import write_huge_png

from detective.core.case import load_case
from detective.core.context import RunContext, RunOptions
from detective.core.engine import CheckFinished, CheckSkipped, RunFinished, RunStatus, run_playbook
from detective.core.findings import Finding, Verdict
from detective.core.ledger import session_ledger
from detective.core.playbook import Playbook, StageSpec
from detective.core.registry import all_checks
from detective.core.session import Session, SessionInfo
from detective.ui.cli import main


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
from detective.casekit.demo import kit
from detective.casekit.imageio import ImageFolder

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
    assert reopen(tmp_path / "session") == ["case_contract", "data_health", "interventions"]


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
from detective.casekit.demo import kit

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
    assert reopen(tmp_path / "session") == ["case_contract", "data_health", "interventions"]


# --- training and models that break ------------------------------------------------------------

NAN_LOSS_CASE = """
import torch
from detective.casekit.demo import kit

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
    from detective.analysis.learning.recipe import run_recipe

    case = write_case(tmp_path, NAN_LOSS_CASE)
    ctx = RunContext(load_case(case), RunOptions(device="cpu"), tmp_path / "a", tmp_path / "c")
    x, y, _ = ctx.tensors("train", list(range(64)))
    result = run_recipe(ctx, ctx.model_copy(), x, y, steps=24)  # 3 epochs of 8 batches
    assert result.diverged
    assert len(result.losses) == 6, result.losses  # stopped at the first NaN step
    assert all(np.isfinite(result.losses[:5])) and not np.isfinite(result.losses[5])
    # Through a check and the engine: a finding, not a crash; the session keeps it.
    _, events = run_checks(case, tmp_path, ["case_contract", "loss_curve"])
    curve = finished(events)["loss_curve"]
    assert curve.verdict is not Verdict.ERROR, curve.error
    assert "NaN" in text_of(curve), text_of(curve)  # the finding says the loss went non-finite
    assert reopen(tmp_path / "session") == ["case_contract", "loss_curve", "interventions"]


FORWARD_RAISES_CASE = """
import torch
from detective.casekit.demo import kit

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
from detective.casekit.demo import kit

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
    from detective.analysis.collect import collect
    from detective.core.progress import Progress

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
from detective.casekit.demo import kit
from detective.analysis.torchutil import safe_load

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

    from detective.analysis.torchutil import safe_load

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
from detective.casekit.demo import kit

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


# --- issue 16: every bad input and fault gets a clear message and the right exit code ----------
# Through the real CLI (a subprocess, as a user types it) where the row is about the CLI.

DETECTIVE = [sys.executable, "-m", "detective"]
GUARD_S = 300  # only against a hang: no assert depends on speed


def cli(*args: str, cwd: Path | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(
        [*DETECTIVE, *args],
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        env=env,
        cwd=cwd,
        **kwargs,  # type: ignore[arg-type]
    )


def start(*args: str, log: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    handle = log.open("wb")
    return subprocess.Popen(
        [*DETECTIVE, *args], stdout=handle, stderr=subprocess.STDOUT, env=env, **kwargs
    )  # type: ignore[call-overload]


def wait_for(condition, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert proc is None or proc.poll() is None, f"exited {proc.returncode} before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


SRC = str(Path(__file__).resolve().parents[1] / "src")

# model() blocks while the marker file exists: a hang the test can end.
HANG_CASE = """
import time
from pathlib import Path
import torch
from detective.casekit.demo import kit

CLASSES = [str(d) for d in range(10)]
MARKER = Path({marker!r})

def datasets():
    g = torch.Generator().manual_seed(0)
    data = kit.TensorImages(torch.rand(32, 1, 8, 8, generator=g), torch.arange(32) % 10)
    return {{"train": data, "val": data}}

def model():
    while MARKER.exists():
        time.sleep(0.05)
    torch.manual_seed(0)
    return kit.SmallCNN(width=4)
"""


def hang_case(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "hang"
    marker.touch()
    return write_case(tmp_path, HANG_CASE.format(marker=str(marker))), marker


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--sample", "0"], "expected a whole number ≥ 1"),
        (["--sample", "-5"], "expected a whole number ≥ 1"),
        (["--reported-metric", "nan"], "in [0, 1], or a percentage in (1, 100]"),
        (["--reported-metric", "-0.5"], "in [0, 1], or a percentage in (1, 100]"),
        (["--reported-metric", "150"], "in [0, 1], or a percentage in (1, 100]"),
        (["--device", "gpu"], "expected auto, cpu, cuda or cuda:N"),
        (["--hook-timeout", "0"], "seconds > 0"),
    ],
)
def test_out_of_range_arguments_are_usage_errors(
    tmp_path: Path, argv: list[str], expected: str
) -> None:
    case = write_case(tmp_path, ITEMS_CASE)
    done = cli("run", str(case), "--session", str(tmp_path / "s"), *argv)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()  # refused before anything was created


def test_in_range_arguments_are_accepted_and_a_percentage_is_announced(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from detective.ui.cli import build_parser

    parse = build_parser().parse_args
    args = parse(["run", "c.py", "--sample", "1", "--reported-metric", "0.87"])
    assert (args.sample, args.reported_metric) == (1, 0.87)
    assert "percentage" not in capsys.readouterr().err  # a fraction needs no notice
    for text in ("87", "87%"):
        args = parse(["run", "c.py", "--reported-metric", text])
        assert args.reported_metric == pytest.approx(0.87)
        assert f"--reported-metric {text} read as a percentage: 0.87" in capsys.readouterr().err
    assert parse(["run", "c.py", "--reported-metric", "1"]).reported_metric == 1.0  # not 1 %


def test_session_that_is_a_file_is_refused_with_its_path(tmp_path: Path) -> None:
    case = write_case(tmp_path, ITEMS_CASE)
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    done = cli("run", str(case), "--session", str(target), "--device", "cpu")
    assert done.returncode == 5, done.stdout + done.stderr
    assert str(target) in done.stdout.replace("\n", "") and "not a session folder" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert target.read_text() == "keep me"


def test_the_cli_module_run_as_a_script_is_the_same_cli() -> None:
    """`python -m detective.ui.cli` once crashed on every command (NameError, exit 3): the module
    ran as `__main__` before the rest of it was defined."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    for args in (["--help"], ["checks"]):
        done = subprocess.run(
            [sys.executable, "-m", "detective.ui.cli", *args],
            capture_output=True,
            text=True,
            timeout=GUARD_S,
            env=env,
        )
        text = done.stdout + done.stderr
        assert done.returncode == 0, (args, text)
        assert "Traceback" not in text and "this is a bug" not in text, (args, text)
        assert done.stdout == cli(*args).stdout, args  # what `python -m detective` prints


def _world_dir() -> Path:
    """A folder another user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="detective-ro-"))
    folder.chmod(0o777)
    return folder


# As root, permissions do not bind: the CLI then drops to `nobody` once its modules are loaded
# (the interpreter itself may live where `nobody` cannot read, e.g. under /root).
_DROP_TO_NOBODY = """
import contextlib, io, os, sys
import detective.ui.cli
for warm in (["checks", "--json"],):  # load what the commands import lazily, while we can
    with contextlib.redirect_stdout(io.StringIO()):
        detective.ui.cli.main(warm)
import importlib, pkgutil
import detective
skip = ("detective.ui.tui", "detective.casekit.demo.", "detective.__main__")
for mod in pkgutil.walk_packages(detective.__path__, "detective."):  # every lazy import too
    if not mod.name.startswith(skip):
        importlib.import_module(mod.name)
import rich.progress, rich.table
from rich.console import Console
Console(file=io.StringIO()).print(":warning: [b]markup[/b]")  # rich loads its emoji table lazily
os.setgroups([]); os.setgid(65534); os.setuid(65534)
sys.exit(detective.ui.cli.main(sys.argv[1:]))
"""


def cli_unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0:
        return cli(*args)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", _DROP_TO_NOBODY, *args],
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        env=env,
    )


@pytest.fixture
def shared_dir():  # noqa: ANN201
    folder = _world_dir()
    yield folder
    for p in [folder, *folder.rglob("*")]:
        if p.is_dir():
            p.chmod(0o777)
    shutil.rmtree(folder)


def test_read_only_session_refuses_resume_and_still_reads(shared_dir: Path) -> None:
    path = _session_with_a_finding(shared_dir)
    db = path / "session.sqlite"
    for p in (shared_dir, path):
        p.chmod(0o777)
    db.chmod(0o444)  # the database cannot be written
    before = db.read_bytes()
    done = cli_unprivileged("resume", str(path))
    assert done.returncode == 5, done.stdout + done.stderr
    assert f"session is read-only: {db}" in done.stdout.replace("\n", ""), done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    # A read-only folder (a shared, archived session): readers work, writers are refused.
    db.chmod(0o644)
    path.chmod(0o555)
    for argv in (["ledger", str(path)], ["export", str(path), "--format", "json"]):
        read = cli_unprivileged(*argv)
        assert read.returncode == 0, (argv, read.stdout, read.stderr)
        assert "corrupted" not in read.stdout + read.stderr
    assert '"fine"' in read.stdout or "fine" in read.stdout  # the finding is in the export
    refused = cli_unprivileged("resume", str(path))
    assert refused.returncode == 5 and "session is read-only" in refused.stdout
    assert db.read_bytes() == before, "a read-only session was modified"


@pytest.mark.parametrize("damage", ["empty", "garbage"])
def test_a_failed_open_writes_nothing(tmp_path: Path, damage: str) -> None:
    path = _session_with_a_finding(tmp_path)
    db = path / "session.sqlite"
    db.write_bytes(b"" if damage == "empty" else b"not a database at all\n" * 10)
    before = db.read_bytes()
    write_case(tmp_path, ITEMS_CASE)
    for argv in (
        ["ledger", str(path)],
        ["export", str(path)],
        ["resume", str(path)],
        ["run", str(tmp_path / "case.py"), "--session", str(path), "--device", "cpu"],
    ):
        code = main(argv)
        assert code == 5, argv
        assert db.read_bytes() == before, (argv, "the damaged file was written to")
    assert sorted(p.name for p in path.iterdir()) == ["artifacts", "cache", "session.sqlite"] or (
        sorted(p.name for p in path.iterdir()) == ["session.sqlite"]
    )


def findings_in(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT check_id FROM findings ORDER BY id")]
    finally:
        conn.close()


def test_one_writer_per_session(tmp_path: Path) -> None:
    case, marker = hang_case(tmp_path)
    session = tmp_path / "s"
    run = [
        "run",
        str(case),
        "--session",
        str(session),
        "--device",
        "cpu",
        "--only",
        "case_contract",
    ]
    first_log = tmp_path / "first.log"
    first = start(*run, log=first_log)
    try:
        wait_for(
            lambda: "waiting for your model() hook" in first_log.read_text(), "the hang", first
        )
        # A second writer is refused, naming the holder; a reader is not.
        second = cli(*run)
        text = " ".join(second.stdout.split())
        assert second.returncode == 5, text
        assert f"in use by pid {first.pid} since" in text and "--wait" in text
        assert cli("ledger", str(session)).returncode == 0
        # A writer that waits: it starts once the holder is gone (killed: flock frees the lock).
        waiter_log = tmp_path / "waiter.log"
        waiter = start(*run, "--wait", log=waiter_log)
        wait_for(lambda: "waiting…" in waiter_log.read_text(), "the waiter waiting", waiter)
        first.kill()
        first.wait(GUARD_S)
        marker.unlink()
        assert waiter.wait(GUARD_S) == 0, waiter_log.read_text()
    finally:
        first.kill()
    # measured once
    assert findings_in(session / "session.sqlite") == ["case_contract", "interventions"]


def test_a_stale_lock_from_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    case, marker = hang_case(tmp_path)
    session = tmp_path / "s"
    run = [
        "run",
        str(case),
        "--session",
        str(session),
        "--device",
        "cpu",
        "--only",
        "case_contract",
    ]
    log = tmp_path / "first.log"
    first = start(*run, log=log)
    try:
        wait_for(lambda: "waiting for your model() hook" in log.read_text(), "the hang", first)
    finally:
        first.kill()  # SIGKILL: no cleanup ran; its pid is still in the lock file
        first.wait(GUARD_S)
    assert str(first.pid) in (session / "session.lock").read_text()
    marker.unlink()
    again = cli(*run)
    text = " ".join(again.stdout.split())
    assert again.returncode == 0, text
    assert f"took over session {session} from pid {first.pid}" in text


def test_a_hung_hook_is_announced_and_times_out_naming_the_hook(tmp_path: Path) -> None:
    case, _ = hang_case(tmp_path)
    done = cli(
        "run",
        str(case),
        "--session",
        str(tmp_path / "s"),
        "--device",
        "cpu",
        "--hook-timeout",
        "3",
    )
    out = " ".join(done.stdout.split())
    assert done.returncode == 4, out
    assert out.startswith("waiting for your model() hook…"), out  # the first line says which
    assert "your model() hook did not return within 3 s (--hook-timeout)" in out
    assert "Traceback" not in done.stdout + done.stderr


def test_one_ctrl_c_stops_a_hung_hook(tmp_path: Path) -> None:
    case, _ = hang_case(tmp_path)
    log = tmp_path / "run.log"
    proc = start("run", str(case), "--session", str(tmp_path / "s"), "--device", "cpu", log=log)
    try:
        wait_for(lambda: "waiting for your model() hook" in log.read_text(), "the hang", proc)
        proc.send_signal(signal.SIGINT)
        # The default hook timeout is 600 s: ending at all (the guard is far below it) means
        # the one Ctrl-C stopped the wait, not the timeout.
        assert proc.wait(GUARD_S / 2) == 130, log.read_text()
    finally:
        proc.kill()
    text = log.read_text()
    assert "Traceback" not in text and "detective resume" in text


def test_ctrl_c_while_the_case_imports_is_one_line_and_exit_130(tmp_path: Path) -> None:
    started = tmp_path / "importing"
    case = write_case(
        tmp_path,
        f"import time\nopen({str(started)!r}, 'w').close()\ntime.sleep(1000)\nCLASSES = ['a']\n",
    )
    log = tmp_path / "run.log"
    proc = start("run", str(case), "--session", str(tmp_path / "s"), "--device", "cpu", log=log)
    try:
        wait_for(started.exists, "the import", proc)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(GUARD_S) == 130, log.read_text()
    finally:
        proc.kill()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], lines
    assert not (tmp_path / "s").exists()


def test_model_hook_that_raises_is_exit_4_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = ITEMS_CASE.replace(
        "def model():\n", "def model():\n    raise RuntimeError('checkpoint has 12 classes')\n"
    )
    case = write_case(tmp_path, src)
    line = src.splitlines().index("    raise RuntimeError('checkpoint has 12 classes')") + 1
    code = main(["run", str(case), "--session", str(tmp_path / "s"), "--device", "cpu"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 4, out
    assert (
        f"your model() hook raised RuntimeError: checkpoint has 12 classes at case.py line {line}"
        in out
    )
    assert "the check crashed" not in out and "Traceback" not in out


def test_forward_that_raises_in_a_later_check_is_the_case_not_a_crash(tmp_path: Path) -> None:
    """case_contract passes (2 images); a later check's bigger batch hits the user's bug."""
    src = FORWARD_RAISES_CASE.replace(
        '        raise RuntimeError("mat1',
        '        if x.shape[0] > 2:\n            raise RuntimeError("mat1',
    ).replace("    def forward(self, x):\n", "    def forward(self, x):\n")
    src = src.replace(
        '(2x64 and 128x10)")\n', '(2x64 and 128x10)")\n        return super().forward(x)\n'
    )
    case = write_case(tmp_path, src)
    ctx, events = run_checks(case, tmp_path, ["case_contract", "per_class_report"])
    found = finished(events)
    assert found["case_contract"].verdict is Verdict.PASS, found["case_contract"].summary
    report = found["per_class_report"]
    assert report.verdict is Verdict.ERROR
    assert report.summary.startswith("your model's forward() raised RuntimeError: mat1"), (
        report.summary
    )
    assert "at case.py line" in report.summary
    last = events[-1]
    assert isinstance(last, RunFinished) and (last.errors, last.user_errors) == (1, 1)


def test_every_item_with_the_wrong_shape_blocks_the_run_with_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = ITEMS_CASE.replace("        return x, y\n", "        return x[0], y\n")
    case = write_case(tmp_path, src)
    code = main(["run", str(case), "--session", str(tmp_path / "s"), "--device", "cpu"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 4, out
    assert "Nothing could be measured: case_contract failed" in out
    assert "expected [C, H, W]" in out
    # Resuming the same broken case measures nothing either: still exit 4, not 0.
    assert main(["resume", str(tmp_path / "s")]) == 4


PIL_CASE = """
from pathlib import Path
import torch
from PIL import Image
from torchvision import transforms as T

ROOT = Path({root!r})
CLASSES = ["a", "b"]

class Files:
    # The user's own dataset: Pillow directly, as in many tutorials.
    def __init__(self):
        self.files = sorted(ROOT.glob("*.*"))
        self.tf = T.Compose([T.Resize((8, 8)), T.ToTensor()])
    def __len__(self):
        return len(self.files)
    def __getitem__(self, i):
        return self.tf(Image.open(self.files[i]).convert("L")), i % 2

def datasets():
    return {{"train": Files(), "val": Files()}}

def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
"""


def test_huge_and_truncated_images_are_item_problems_naming_the_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(root / f"{i}.png")
    write_huge_png(root / "scan.png", side=10_392)  # 108 MP: Pillow only warns (limit 89 MP)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        root / "photo.jpg", quality=90
    )
    data = (root / "photo.jpg").read_bytes()
    (root / "photo.jpg").write_bytes(data[: len(data) // 2])
    case = write_case(tmp_path, PIL_CASE.format(root=str(root)))
    ctx, events = run_checks(case, tmp_path, ["case_contract", "data_health"])
    problems = ctx.item_problems["val"]
    files = sorted(root.glob("*.*"))
    huge = problems[files.index(root / "scan.png")]
    assert "image of 108 MP (limit 89 MP" in huge and str(root / "scan.png") in huge, huge
    truncated = problems[files.index(root / "photo.jpg")]
    assert str(root / "photo.jpg") in truncated and "truncated" in truncated, truncated
    assert len(problems) == 2  # the good files are not problems
    captured = capfd.readouterr()
    assert "DecompressionBombWarning" not in captured.out + captured.err  # captured, not printed
    shown = text_of(finished(events)["data_health"])
    assert "photo.jpg" in shown and "108 MP" in shown


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("command", ["compare", "experiment"])
def test_cuda_without_a_gpu_is_a_usage_error_in_every_command(tmp_path: Path, command: str) -> None:
    case = write_case(tmp_path, ITEMS_CASE)
    if command == "compare":
        argv = ["compare", str(case), str(case), "--device", "cuda"]
    else:
        _session_with_a_finding(tmp_path)
        argv = ["experiment", str(tmp_path / "old"), "--set", "train.lr=1e-2", "--device", "cuda"]
    done = cli(*argv)
    text = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, text
    assert len(text.splitlines()) == 1 and "no CUDA device" in text, text


def test_device_auto_says_which_device_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from detective.analysis.torchutil import describe_device

    expected = describe_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    case = write_case(tmp_path, ITEMS_CASE)
    session = tmp_path / "s"
    assert main(["run", str(case), "--session", str(session), "--only", "case_contract"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    first = out.split("case_contract")[0]  # what comes before the first check's line
    assert first.startswith("Session ") and f"device {expected} ·" in first, out
    with Session.open(session, readonly=True) as s:
        assert s.info.device == expected
        assert s.info.options.device == "auto"  # what was asked: resume resolves it afresh
    assert main(["export", str(session), "-o", str(tmp_path / "r.md")]) == 0
    assert f"- Device: {expected}" in (tmp_path / "r.md").read_text().replace("\\", "")


def test_an_unexpected_exception_is_exit_3_with_a_log_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import detective.ui.cli

    def broken(_args: object) -> int:
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(detective.ui.cli, "cmd_ledger", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        code = main(["ledger", str(tmp_path / "nowhere")])
    finally:
        tempfile.tempdir = None
    err = capsys.readouterr().err
    assert code == 3, err
    assert "this is a bug in detective (ZeroDivisionError: planted)" in err
    logs = list(tmp_path.glob("detective-crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    assert "Traceback" in logs[0].read_text() and "Traceback" not in err
    # The clean case: a command that works is untouched by the handler.
    monkeypatch.undo()
    assert main(["checks", "--json"]) == 0


def test_hooks_run_watched_in_the_callers_torch_state(tmp_path: Path) -> None:
    """The hook runs in its own thread: grad mode follows the caller (a `features` hook under
    no_grad must not build a graph); a cancel or a timeout ends the wait, not the process."""
    import threading

    import torch

    from detective.core.case import HookTimeout
    from detective.core.hookwatch import HookWatch
    from detective.core.progress import Cancelled

    release = threading.Event()
    src = ITEMS_CASE + (
        "\nimport threading\nRELEASE = None\n"
        "def grad_enabled():\n    return torch.is_grad_enabled()\n"
        "def stuck():\n    RELEASE.wait(60)\n"
    )
    case = load_case(write_case(tmp_path, src))
    case.module.RELEASE = release
    with torch.no_grad():
        assert case.call("grad_enabled") is False
    assert case.call("grad_enabled") is True
    try:
        case.watch = HookWatch(timeout_s=0.3)
        with pytest.raises(HookTimeout, match=r"your stuck\(\) hook did not return within 0.3 s"):
            case.call("stuck")
        cancel = threading.Event()
        cancel.set()
        case.watch = HookWatch(cancel=cancel)
        with pytest.raises(Cancelled):
            case.call("stuck")
    finally:
        release.set()  # free the abandoned hook threads


def test_a_failing_model_hook_is_called_once_per_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The plan loads the model before the budget's clock; every check after it needs the model
    # too. A hook that fails (after a slow checkpoint read, say) fails once, not per caller.
    calls = tmp_path / "calls"
    src = ITEMS_CASE.replace(
        "def model():\n",
        f"def model():\n    open({str(calls)!r}, 'a').write('x')\n"
        "    raise RuntimeError('checkpoint has 12 classes')\n",
    )
    code = main(["run", str(write_case(tmp_path, src)), "--session", str(tmp_path / "s"),
                 "--device", "cpu"])
    assert code == 4, capsys.readouterr().out
    assert calls.read_text() == "x"
