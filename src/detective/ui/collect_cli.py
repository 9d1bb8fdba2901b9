"""`detective collect`: the streaming inference pass alone, one shard per process under torchrun.

    torchrun --nproc_per_node=2 -m detective collect CASE --session DIR --sample 50000

Each rank reads RANK / WORLD_SIZE / LOCAL_RANK (torchrun sets them; without torchrun it is the one
shard 0 of 1), runs on cuda:LOCAL_RANK when CUDA exists (else the CPU) and writes its own shard into
DIR/cache. No process group is created: the shards meet on disk, so the same command works across
machines over a shared session folder. Rank 0 waits (bounded by --wait-shards) for the others and
reports the merged collection; a later `detective run` in DIR with the same --sample and --seed
merges the shards instead of recomputing them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from detective.ui import cliargs
from detective.ui.exitcodes import ExitCode


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "collect",
        help="the inference pass over a split, stored in a session (one shard per torchrun rank)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("case", help="path to the case file (.py)")
    p.add_argument("--session", required=True, help="the session folder (shared across nodes)")
    p.add_argument("--split", default="val", help="the split to collect (default val)")
    p.add_argument(
        "--sample",
        type=cliargs.positive_int,
        default=2000,
        help="items, at most (default 2000); use the same value for the `detective run` after",
    )
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (as `detective run`)")
    p.add_argument(
        "--device",
        type=cliargs.device,
        default="auto",
        help="auto (default: cuda:LOCAL_RANK when CUDA exists, else cpu), cpu, cuda or cuda:N",
    )
    p.add_argument("--batch-size", type=cliargs.positive_int, default=None)
    p.add_argument(
        "--wait-shards",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long rank 0 waits for the other ranks' shards (default 600; 0: do not wait)",
    )
    p.set_defaults(handler=cmd_collect)


def rank_device(requested: str, local_rank: int, cuda: bool) -> str:
    """The device of one rank: torchrun's LOCAL_RANK picks the GPU unless one was named."""
    if requested == "auto":
        return f"cuda:{local_rank}" if cuda else "cpu"
    if requested == "cuda":
        return f"cuda:{local_rank}"
    return requested


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def cmd_collect(args: argparse.Namespace) -> ExitCode:
    import torch

    from detective.analysis.collect import ShardSpec, collect, shards_present
    from detective.analysis.torchutil import DeviceError, resolve_device
    from detective.core.case import CaseError, load_case, user_frame, where
    from detective.core.context import RunContext, RunOptions
    from detective.core.progress import Progress

    shard = ShardSpec.from_env()
    tag = f"rank {shard.rank}/{shard.world}"
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = rank_device(args.device, local, torch.cuda.is_available())
    try:
        resolve_device(device)
    except DeviceError as e:
        sys.stderr.write(f"error: {tag}: {e}\n")
        return ExitCode.USAGE
    session = Path(args.session)
    try:
        case = load_case(args.case)
        ctx = RunContext(
            case,
            RunOptions(device=device, sample=args.sample, seed=args.seed),
            session / "artifacts",
            session / "cache",  # = Session.cache_dir: where `detective run` looks
        )
        total = len(ctx.sample_indices(args.split))
        log = Progress(on_log=lambda m: _say(f"{tag}: {m}"))
        col = collect(ctx, args.split, log, shard=shard, batch_size=args.batch_size)
    except CaseError as e:
        sys.stderr.write(f"error: {tag}: {e.message}\n")
        return ExitCode.CASE_ERROR
    except Exception as e:  # the case's own code (forward, a transform) is the user's: exit 4
        frame = user_frame(e, Path(args.case))
        if frame is None:
            raise  # ours: the CLI's crash report (exit 3)
        sys.stderr.write(
            f"error: {tag}: your code raised {type(e).__name__}: {e} in {frame.name}() "
            f"{where(frame, Path(args.case))}\n"
        )
        return ExitCode.CASE_ERROR
    unstored = [n for n in col.notes if n.startswith("could not store")]
    if unstored:  # nobody could merge it: say so rather than let rank 0 wait for nothing
        sys.stderr.write(f"error: {tag}: {unstored[0]}\n")
        return ExitCode.SESSION_ERROR
    present = shards_present(ctx, args.split, shard.world)
    folder = ctx.cache_dir / "collect" / col.fingerprint
    _say(f"{tag} on {device}: stored {shard.filename()} ({present}/{shard.world} shards present)")
    if shard.rank != 0:
        return ExitCode.OK
    if col.requested < total:  # rank 0 holds only its own shard: wait for the others
        deadline = time.monotonic() + max(0.0, args.wait_shards)
        while present < shard.world and time.monotonic() < deadline:
            time.sleep(1.0)
            present = shards_present(ctx, args.split, shard.world)
        if present < shard.world:
            _say(
                f"{present} of {shard.world} shards in {folder} after {args.wait_shards:g} s; "
                "the next `detective run` in this session merges them once all are there"
            )
            return ExitCode.OK
        col = collect(ctx, args.split, log, shard=shard, batch_size=args.batch_size)
    _say(f"collection of {args.split!r}: {col.n} items, {col.accuracy:.2%} correct, in {folder}")
    return ExitCode.OK
