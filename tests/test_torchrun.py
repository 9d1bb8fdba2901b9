"""The collection pass past one process: `detective collect` under a real 2-process torchrun on CPU
writes one shard per rank, and the next `detective run` in that session merges them (saying so)
into findings equal to a single-process run's. Cheaper in-process tests cover the merge log line,
a missing shard (no merge, recomputed), rank 0's bounded wait and the per-rank device."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CASES, context_for, write_case

import detective
from detective.analysis.collect import ShardSpec, collect, shards_present
from detective.core.progress import Progress
from detective.ui.cli import main
from detective.ui.collect_cli import rank_device

DEMO = Path(detective.__file__).parent / "casekit" / "demo" / "digits_case.py"
TINY = CASES / "tiny_tensor.py"
CHECKS = "per_class_report,calibration"
MERGED = re.compile(r"collection: merged 2 shards from torchrun \(world 2\), (\d+) items")


def _logs() -> tuple[list[str], Progress]:
    lines: list[str] = []
    return lines, Progress(on_log=lines.append)


def _env() -> dict[str, str]:
    src = str(Path(detective.__file__).parents[1])  # this checkout's source, not an installed one
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return " ".join((done.stdout + done.stderr).split())  # rich wraps long lines


def _findings(session: Path) -> dict[str, tuple[str, dict[str, float], list]]:
    report = json.loads(_run("-m", "detective", "export", str(session), "--format", "json"))
    out = {}
    for entry in report["findings"]:
        f = entry["finding"]
        metrics = {m["name"]: m["value"] for m in f["metrics"]}
        out[f["check_id"]] = (f["summary"], metrics, [t["rows"] for t in f["tables"]])
    return out


@pytest.mark.slow
def test_two_process_torchrun_shards_merge_into_the_single_process_findings(
    tmp_path: Path,
) -> None:
    demo = ["-m", "detective", "run", str(DEMO), "--only", CHECKS, "--sample", "200"]
    # Single process first (it also trains the demo checkpoint the ranks then share).
    single = _run(*demo, "--session", str(tmp_path / "single"), "--headless")
    assert "collection: merged" not in single

    sharded = tmp_path / "sharded"
    out = _run(
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "detective", "collect", str(DEMO), "--session", str(sharded), "--sample", "200",
    )  # fmt: skip
    assert "rank 0/2 on cpu" in out and "rank 1/2 on cpu" in out, out
    assert "collection of 'val': 200 items" in out, out
    shards = sorted(p.name for p in (sharded / "cache" / "collect").glob("*/shard-*.npz"))
    assert shards == ["shard-0000-of-0002.npz", "shard-0001-of-0002.npz"]

    run = _run(*demo, "--session", str(sharded), "--headless")
    merged = MERGED.search(run)
    assert merged and merged.group(1) == "200", run

    a, b = _findings(tmp_path / "single"), _findings(sharded)
    assert set(a) == set(b) == {*CHECKS.split(","), "interventions"}
    for check in a:
        (sum_a, met_a, tab_a), (sum_b, met_b, tab_b) = a[check], b[check]
        assert sum_a == sum_b, check
        assert met_a.keys() == met_b.keys(), check
        for name, value in met_a.items():  # batches differ between ranks: float noise only
            assert met_b[name] == pytest.approx(value, rel=1e-4, abs=1e-6), (check, name)
        assert json.dumps(tab_a) == json.dumps(tab_b), check


def test_a_complete_sharding_is_merged_and_said_once(tmp_path: Path) -> None:
    whole = collect(context_for(TINY, tmp_path / "whole"), "val", Progress())
    for rank in range(2):
        collect(context_for(TINY, tmp_path), "val", Progress(), shard=ShardSpec(rank, 2))
    ctx = context_for(TINY, tmp_path)  # the later `detective run`: a fresh process and cache
    lines, progress = _logs()
    col = collect(ctx, "val", progress)
    said = f"collection: merged 2 shards from torchrun (world 2), {whole.n} items of 'val'"
    assert lines == [said]
    assert (col.index == whole.index).all() and (col.pred == whole.pred).all()
    collect(ctx, "val", progress)  # the run cache answers: nothing merged again
    assert len(lines) == 1


def test_a_missing_shard_is_not_merged_but_recomputed(tmp_path: Path) -> None:
    collect(context_for(TINY, tmp_path), "val", Progress(), shard=ShardSpec(0, 2))
    ctx = context_for(TINY, tmp_path)
    assert shards_present(ctx, "val", 2) == 1
    lines, progress = _logs()
    col = collect(ctx, "val", progress)
    assert lines == [] and col.n == 16  # the whole split, from a fresh single-shard pass


def test_rank_zero_waits_bounded_and_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = ["collect", str(TINY), "--session", str(tmp_path), "--device", "cpu"]
    assert main([*args, "--wait-shards", "0"]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 shards" in out and "the next `detective run`" in out, out
    monkeypatch.setenv("RANK", "1")
    assert main(args) == 0
    monkeypatch.setenv("RANK", "0")
    assert main(args) == 0  # its shard is stored, rank 1's now too: merged, no wait
    out = capsys.readouterr().out
    assert "rank 0/2: collection: merged 2 shards" in out and "16 items" in out, out


def test_bad_case_and_split_exit_4_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = ["collect", str(tmp_path / "nope.py"), "--session", str(tmp_path)]
    assert main(missing) == 4
    split = ["collect", str(TINY), "--session", str(tmp_path), "--split", "test"]
    assert main([*split, "--device", "cpu"]) == 4
    err = capsys.readouterr().err
    assert "Traceback" not in err and "'test'" in err, err


def test_a_shard_that_cannot_be_stored_exits_5_instead_of_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    session = tmp_path / "session"
    (session / "cache").mkdir(parents=True)
    (session / "cache" / "collect").write_text("a file where a folder should be")
    assert main(["collect", str(TINY), "--session", str(session), "--device", "cpu"]) == 5
    assert "could not store the collection" in capsys.readouterr().err


def test_a_forward_that_raises_exits_4_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = write_case(
        tmp_path,
        f"""
        exec(open({str(TINY)!r}).read())
        class Broken(torch.nn.Module):
            def forward(self, x):
                raise RuntimeError("planted")
        def model():
            return Broken()
        """,
    )
    assert main(["collect", str(case), "--session", str(tmp_path / "s"), "--device", "cpu"]) == 4
    err = capsys.readouterr().err
    assert "RuntimeError: planted in forward() at case.py line" in err, err


def test_each_rank_takes_its_local_gpu() -> None:
    assert rank_device("auto", 3, cuda=True) == "cuda:3"
    assert rank_device("cuda", 1, cuda=True) == "cuda:1"
    assert rank_device("auto", 1, cuda=False) == "cpu"
    assert rank_device("cuda:0", 1, cuda=True) == "cuda:0"  # named by the user: kept
