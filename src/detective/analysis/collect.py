"""One streaming inference pass over a split, recorded per example and reused by every check.

API (stable; other checks build on it)::

    from detective.analysis.collect import collect
    col = collect(ctx, "val", progress)        # once per run (ctx.cache), stored in ctx.cache_dir
    col.label, col.pred, col.confidence, col.loss, col.correct                # [N]
    col.log_probs, col.probs                                                  # [N, K]
    col.topk_classes, col.topk_probs                                          # [N, 3]
    col.properties["brightness"]  # also contrast, sharpness, saturation; width/height/aspect
                                  # (raw size, NaN where unknown) when the case has raw_datasets
    col.features, col.feature_rows  # penultimate features [F, D] and the rows they belong to:
                                    # every failure plus a fixed-seed uniform sample of rows
    col.feature_in_sample           # [F] bool: the row is in the uniform sample (unbiased subset)

Rows are sorted by dataset index (`col.index`). Items the case cannot produce are skipped and
recorded in `ctx.item_problems` (see `RunContext.batches`); `col.skipped` counts them.

Which examples: `ctx.sample_indices(split)` by default (the user's `--sample`; raise it to cover a
whole 50k split), or any `indices`.

Penultimate features: a forward pre-hook on the *last* `nn.Linear` of the model captures its
input during the same forward pass (no second pass). A case whose head is not a final Linear, or
that wants another layer, defines an optional hook in the case file::

    def features(model, x):        # x: a batch on the device, model in eval mode
        return model.backbone(x)   # [B, D] (flattened if it has more dims)

which is then called on each batch (an extra forward of whatever it runs).

Storage and invalidation: records live in `ctx.cache_dir / "collect" / <fingerprint>/`, one
`shard-RRRR-of-WWWW.npz` per shard, and `index.json` beside them maps fingerprints to
(split, rows, shards). The fingerprint hashes the case file, the model weights, the split, the
split's length and the chosen indices, so a new checkpoint or changed data is a new entry; old
entries of the same case and split are deleted when a new one is written.

Sharding / torchrun: shard r of W processes `indices[r::W]` and writes its own file; a collection
is complete when all W files of one W exist, and `collect()` then merges them (sorted by index)
and says so in the check's log ("collection: merged 2 shards from torchrun (world 2), 450 items").
Across GPUs (or machines, over a shared session folder), `detective collect` under torchrun::

    torchrun --nproc_per_node=4 -m detective collect my_case.py --session SESSION_DIR \
        --split val --sample 50000

(each rank reads RANK / WORLD_SIZE / LOCAL_RANK, runs on cuda:LOCAL_RANK and writes its shard
into SESSION_DIR/cache; no collective is needed); a later `detective run` in that session with the
same --sample and --seed finds the complete shards and merges them instead of recomputing.

Memory grows with the batch, not the dataset: only the per-row records (a few numbers, K
probabilities, and features for failures + the sample) are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detective.analysis.imageprops import PROPERTIES, SIZE_PROPERTIES
from detective.core.ports import CacheKey, seeded, stable_seed

if TYPE_CHECKING:
    import numpy as np

    from detective.core.context import RunContext
    from detective.core.progress import Progress

COLLECT_VERSION = 2  # bump when the stored format or what is recorded changes
TOP_K = 3
FEATURE_SAMPLE = 2048  # uniform sample of rows whose features are kept besides the failures
SIZE_SAMPLE = 2048  # rows whose raw image is re-read for its width/height (it costs a decode)
_SEED = 20240917


@dataclass(frozen=True)
class ShardSpec:
    rank: int = 0
    world: int = 1

    @staticmethod
    def from_env() -> ShardSpec:
        """RANK / WORLD_SIZE as set by torchrun; a single shard otherwise."""
        return ShardSpec(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))

    def filename(self) -> str:
        return f"shard-{self.rank:04d}-of-{self.world:04d}.npz"


@dataclass(frozen=True, eq=False)
class Collection:
    """Per-example records of one inference pass over `split` (numpy arrays, rows by index)."""

    split: str
    fingerprint: str
    classes: tuple[str, ...]
    index: np.ndarray  # [N] int64 dataset indices
    label: np.ndarray  # [N] int64 given labels
    topk_classes: np.ndarray  # [N, k] int64, k = min(3, K)
    topk_probs: np.ndarray  # [N, k] float32
    log_probs: np.ndarray  # [N, K] float32 log-softmax (logits up to a per-row constant)
    loss: np.ndarray  # [N] float32 cross-entropy of the given label
    properties: dict[str, np.ndarray]  # name -> [N] float32 (see imageprops)
    feature_rows: np.ndarray  # [F] int64 row positions (into the [N] arrays)
    features: np.ndarray  # [F, D] float32 penultimate features
    feature_in_sample: np.ndarray  # [F] bool: in the fixed-seed uniform sample
    requested: int = 0  # indices asked for (N + skipped)
    seconds: float = 0.0
    outputs_were_probabilities: bool = False  # the model returns softmax outputs, not logits
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n(self) -> int:
        return int(len(self.index))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def probs(self) -> np.ndarray:
        """[N, K] softmax probabilities."""
        import numpy as np

        return np.exp(self.log_probs)

    @property
    def pred(self) -> np.ndarray:
        return self.topk_classes[:, 0]

    @property
    def confidence(self) -> np.ndarray:
        return self.topk_probs[:, 0]

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.label

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if self.n else float("nan")

    @property
    def skipped(self) -> int:
        return max(0, self.requested - self.n)

    def rows_of(self, indices: np.ndarray) -> np.ndarray:
        """Row positions of dataset indices (which must be in the collection)."""
        import numpy as np

        return np.searchsorted(self.index, indices)

    def sample_features(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, features) of the uniform sample only: an unbiased subset for probes."""
        keep = self.feature_in_sample
        return self.feature_rows[keep], self.features[keep]


# --- fingerprint and storage -----------------------------------------------------------------


def _model_hash(ctx: RunContext) -> str:
    from detective.analysis.torchutil import model_hash

    return ctx.cache.get(CacheKey[str]("collect:model_hash"), lambda: model_hash(ctx.model()))


def fingerprint(ctx: RunContext, split: str, indices: list[int]) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                COLLECT_VERSION,
                ctx.case.file_hash,
                _model_hash(ctx),
                split,
                len(ctx.dataset(split)),
                ctx.case.has("features"),
            ]
        ).encode()
    )
    h.update(",".join(map(str, indices)).encode())
    return h.hexdigest()[:20]


def _root(ctx: RunContext) -> Path:
    return Path(ctx.cache_dir) / "collect"


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    tmp.replace(path)


def _read_index(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / "index.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _update_index(root: Path, key: str, entry: dict[str, Any]) -> None:
    """Record a collection; drop stale ones (same case file path, split and row count: the
    weights or the case changed)."""
    import shutil

    index = _read_index(root)
    for old, meta in list(index.items()):
        same = all(meta.get(f) == entry[f] for f in ("case", "split", "rows"))
        if old != key and same:
            shutil.rmtree(root / old, ignore_errors=True)
            del index[old]
    index[key] = entry
    _atomic_write(root / "index.json", lambda f: f.write(json.dumps(index, indent=1).encode()))


_ARRAYS = ("index", "label", "topk_classes", "topk_probs", "log_probs", "loss")


def _save_shard(path: Path, part: dict[str, Any]) -> None:
    import numpy as np

    arrays = {k: part[k] for k in _ARRAYS}
    arrays.update({f"prop_{k}": v for k, v in part["properties"].items()})
    arrays["feature_index"] = part["feature_index"]
    arrays["features"] = part["features"]
    arrays["feature_in_sample"] = part["feature_in_sample"]
    arrays["meta"] = np.array(
        json.dumps(
            {
                "requested": part["requested"],
                "seconds": part["seconds"],
                "probs_out": part["outputs_were_probabilities"],
                "notes": list(part["notes"]),
            }
        )
    )
    _atomic_write(path, lambda f: np.savez(f, **arrays))


def _load_shard(path: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        part = {k: z[k] for k in _ARRAYS}
        part["properties"] = {
            k.removeprefix("prop_"): z[k] for k in z.files if k.startswith("prop_")
        }
        part["feature_index"] = z["feature_index"]
        part["features"] = z["features"]
        part["feature_in_sample"] = z["feature_in_sample"]
        meta = json.loads(str(z["meta"]))
    part["requested"] = meta["requested"]
    part["seconds"] = meta["seconds"]
    part["outputs_were_probabilities"] = meta["probs_out"]
    part["notes"] = tuple(meta["notes"])
    return part


def _complete_shards(folder: Path) -> list[Path] | None:
    """The shard files of one complete sharding (any world size), or None."""
    if not folder.is_dir():
        return None
    worlds: dict[int, list[Path]] = {}
    for p in folder.glob("shard-*-of-*.npz"):
        try:
            world = int(p.stem.rsplit("-", 1)[1])
        except ValueError:
            continue
        worlds.setdefault(world, []).append(p)
    for world, files in sorted(worlds.items()):
        if len(files) == world:
            return sorted(files)
    return None


def _merge(ctx: RunContext, split: str, key: str, parts: list[dict[str, Any]]) -> Collection:
    import numpy as np

    def cat(name: str) -> np.ndarray:
        return np.concatenate([p[name] for p in parts])

    index = cat("index")
    order = np.argsort(index, kind="stable")
    index = index[order]
    f_index = cat("feature_index")
    f_order = np.argsort(f_index, kind="stable")
    f_index = f_index[f_order]
    names = sorted(set().union(*(p["properties"] for p in parts)))
    props = {n: np.concatenate([p["properties"][n] for p in parts])[order] for n in names}
    notes: list[str] = []
    for p in parts:
        notes.extend(n for n in p["notes"] if n not in notes)
    k = ctx.case.num_classes
    return Collection(
        split=split,
        fingerprint=key,
        classes=ctx.case.classes,
        index=index,
        label=cat("label")[order],
        topk_classes=cat("topk_classes")[order],
        topk_probs=cat("topk_probs")[order],
        log_probs=cat("log_probs")[order].reshape(-1, k),
        loss=cat("loss")[order],
        properties=props,
        feature_rows=np.searchsorted(index, f_index).astype(np.int64),
        features=cat("features")[f_order] if len(f_index) else np.zeros((0, 0), np.float32),
        feature_in_sample=cat("feature_in_sample")[f_order].astype(bool),
        requested=sum(p["requested"] for p in parts),
        seconds=sum(p["seconds"] for p in parts),
        outputs_were_probabilities=any(p["outputs_were_probabilities"] for p in parts),
        notes=tuple(notes),
    )


# --- the pass --------------------------------------------------------------------------------


def _feature_sample(indices: list[int], n: int) -> set[int]:
    """A fixed-seed uniform sample of the indices, independent of how they are sharded."""
    import numpy as np

    if len(indices) <= n:
        return set(indices)
    rng = np.random.default_rng(_SEED)
    return set(np.asarray(indices)[rng.choice(len(indices), n, replace=False)].tolist())


# The autocast dtype of the pass: None picks bf16/fp16 on CUDA and fp32 on the CPU
# (`torchutil.inference_dtype`); tests set torch.bfloat16 to run CPU autocast.
AMP_DTYPE: list[Any] = [None]


def _run_pass(
    ctx: RunContext,
    split: str,
    indices: list[int],
    shard: ShardSpec,
    progress: Progress | None,
    batch_size: int | None,
    feature_sample: int,
) -> dict[str, Any]:
    import numpy as np
    import torch

    start = time.monotonic()
    mine = indices[shard.rank :: shard.world]
    sampled = _feature_sample(indices, feature_sample)
    size_rows = _feature_sample(indices, SIZE_SAMPLE)
    model = ctx.model()
    was_training = model.training
    model.eval()
    raw = None
    notes: list[str] = []
    if ctx.case.has("raw_datasets"):
        try:
            raw = ctx.raw_dataset(split)
        except Exception as e:  # a broken raw hook only costs the size properties
            notes.append(f"raw sizes unavailable: {e}")
    use_hook = ctx.case.has("features")
    captured: list[torch.Tensor] = []
    handle = None
    if not use_hook:
        from detective.analysis.torchutil import last_linear

        head = last_linear(model)
        if head is None:
            notes.append("no nn.Linear in the model and no features() hook: features not recorded")
        else:
            handle = head.register_forward_pre_hook(
                lambda _m, args: captured.append(args[0].detach())
            )
    k = ctx.case.num_classes
    top = min(TOP_K, k)
    out: dict[str, list[np.ndarray]] = {
        n: [] for n in (*_ARRAYS, "feature_index", "features", "feature_in_sample")
    }
    props: dict[str, list[np.ndarray]] = {p: [] for p in PROPERTIES}
    if raw is not None:
        props.update({p: [] for p in SIZE_PROPERTIES})
    probs_out = False
    from detective.analysis.imageprops import raw_size, tensor_properties

    chunk = [0]  # images per forward after an out-of-memory error (0: the whole batch)
    from detective.analysis.torchutil import inference_autocast

    def forward(x: torch.Tensor) -> torch.Tensor:
        """The model on a batch, split into smaller chunks after a CUDA out-of-memory error
        (the chunk size then sticks for the rest of the pass)."""
        while True:
            size = chunk[0] or len(x)
            captured.clear()
            try:
                parts = []
                for start in range(0, len(x), size):
                    with inference_autocast(ctx.device, AMP_DTYPE[0]):
                        out = model(x[start : start + size])
                    out = out[0] if isinstance(out, tuple | list) else out
                    parts.append(out.float())
                if len(captured) > 1:
                    captured[:] = [torch.cat(captured)]
                return torch.cat(parts) if len(parts) > 1 else parts[0]
            except RuntimeError as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
                if "out of memory" not in str(e).lower() or size <= 1:
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                chunk[0] = max(1, size // 2)
                if progress is not None:
                    progress.log(
                        f"CUDA out of memory on a batch of {size}; retrying in batches of "
                        f"{chunk[0]}"
                    )

    try:
        with torch.no_grad():
            for batch in ctx.batches(split, mine, batch_size, progress):
                outputs = forward(batch.x).float()
                if outputs.ndim != 2 or outputs.shape[1] != k:
                    raise ValueError(
                        f"the model returned shape {tuple(outputs.shape)} for a batch of "
                        f"{len(batch.y)}; expected [batch, {k}] (one score per class in CLASSES)"
                    )
                if not probs_out and _looks_like_probabilities(outputs):
                    probs_out = True
                logp = outputs.clamp_min(1e-12).log() if probs_out else outputs.log_softmax(1)
                p = logp.exp()
                loss = -logp.gather(1, batch.y.view(-1, 1)).squeeze(1)
                tp, tc = p.topk(top, dim=1)
                pr = tensor_properties(batch.x, ctx.case.normalization)
                ids = batch.indices.numpy()
                correct = (tc[:, 0] == batch.y).cpu().numpy()
                in_sample = np.fromiter((i in sampled for i in ids.tolist()), bool, len(ids))
                keep = ~correct | in_sample
                feats = None
                if keep.any():
                    if use_hook:
                        feats = ctx.case.call("features", model, batch.x)
                    elif captured:
                        feats = captured[-1]
                if feats is not None:
                    feats = feats.float().flatten(1)
                    sel = torch.as_tensor(np.flatnonzero(keep), device=feats.device)
                    out["features"].append(feats.index_select(0, sel).cpu().numpy())
                    out["feature_index"].append(ids[keep])
                    out["feature_in_sample"].append(in_sample[keep])
                out["index"].append(ids)
                out["label"].append(batch.y.cpu().numpy())
                out["topk_classes"].append(tc.cpu().numpy().astype(np.int64))
                out["topk_probs"].append(tp.cpu().numpy())
                out["log_probs"].append(logp.cpu().numpy())
                out["loss"].append(loss.cpu().numpy())
                for name, values in pr.as_dict().items():
                    props[name].append(values.astype(np.float32))
                if raw is not None:
                    props_sizes = _raw_sizes(raw, ids, size_rows, raw_size)
                    for name, values in zip(SIZE_PROPERTIES, props_sizes, strict=True):
                        props[name].append(values)
    finally:
        if handle is not None:
            handle.remove()
        if was_training:
            model.train()

    def cat(name: str, dtype: Any, shape: tuple[int, ...] = (0,)) -> np.ndarray:
        return np.concatenate(out[name]).astype(dtype) if out[name] else np.zeros(shape, dtype)

    return {
        "index": cat("index", np.int64),
        "label": cat("label", np.int64),
        "topk_classes": cat("topk_classes", np.int64, (0, top)),
        "topk_probs": cat("topk_probs", np.float32, (0, top)),
        "log_probs": cat("log_probs", np.float32, (0, k)),
        "loss": cat("loss", np.float32),
        "properties": {
            n: np.concatenate(v) if v else np.zeros(0, np.float32) for n, v in props.items()
        },
        "feature_index": cat("feature_index", np.int64),
        "features": cat("features", np.float32, (0, 0)),
        "feature_in_sample": cat("feature_in_sample", bool),
        "requested": len(mine),
        "seconds": time.monotonic() - start,
        "outputs_were_probabilities": probs_out,
        "notes": tuple(notes),
    }


def _looks_like_probabilities(outputs: Any) -> bool:
    """A model ending in softmax: non-negative rows summing to 1 (logits almost never do)."""
    if outputs.numel() == 0 or outputs.shape[1] < 2:
        return False
    return bool((outputs >= 0).all()) and bool(((outputs.sum(1) - 1).abs() < 1e-3).all())


def _raw_sizes(raw: Any, ids: Any, rows: set[int], raw_size: Any) -> tuple[Any, Any, Any]:
    import numpy as np

    w = np.full(len(ids), np.nan, np.float32)
    h = np.full(len(ids), np.nan, np.float32)
    for n, i in enumerate(ids.tolist()):
        if i not in rows:
            continue
        try:
            width, height = raw_size(raw[i][0])
        except Exception:  # the size is a nice-to-have; the item itself loaded fine
            continue
        if width and height:
            w[n], h[n] = width, height
    with np.errstate(invalid="ignore", divide="ignore"):
        return w, h, (w / h).astype(np.float32)


# --- entry points ----------------------------------------------------------------------------


def collect(
    ctx: RunContext,
    split: str = "val",
    progress: Progress | None = None,
    *,
    indices: list[int] | None = None,
    shard: ShardSpec | None = None,
    batch_size: int | None = None,
    feature_sample: int = FEATURE_SAMPLE,
) -> Collection:
    """The collection for `split`: from the run cache, else complete shards on disk, else computed.

    With a `shard` other than (0, 1) this computes and stores only that shard and returns the
    merged collection if all shards are now present, else a Collection of this shard alone.
    """
    idx = sorted(ctx.sample_indices(split) if indices is None else indices)
    key = fingerprint(ctx, split, idx)
    run_key = CacheKey[Collection]("collect", (key,))
    cached = ctx.cache.peek(run_key)
    if cached is not None:
        return cached
    shard = shard or ShardSpec()
    root = _root(ctx)
    folder = root / key
    files = _complete_shards(folder)
    if files is None:
        target = folder / shard.filename()
        part = _load_shard(target) if target.is_file() else None
        if part is None:
            # Seeded from the key: a random train transform draws the same whoever collects.
            with seeded(stable_seed(key, shard.rank, shard.world)):
                part = _run_pass(ctx, split, idx, shard, progress, batch_size, feature_sample)
            try:
                _save_shard(target, part)
                _update_index(
                    root,
                    key,
                    {
                        "case": str(ctx.case.path),
                        "split": split,
                        "rows": len(idx),
                        "world": shard.world,
                        "created": time.time(),
                    },
                )
            except OSError as e:  # a read-only cache costs reuse, not the result
                part["notes"] = (*part["notes"], f"could not store the collection: {e}")
        files = _complete_shards(folder)
        if files is None:
            return _merge(ctx, split, key, [part])  # this shard only; others still running
        if len(files) == 1 and files[0] == target:
            result = _merge(ctx, split, key, [part])
            return ctx.cache.get(run_key, lambda: result)
    if progress is not None:
        progress.update(1.0, None, "reusing stored predictions")
    result = _merge(ctx, split, key, [_load_shard(p) for p in files])
    if progress is not None and len(files) > 1:
        # Said once per run (the run cache answers later calls): the pass was not recomputed.
        progress.log(
            f"collection: merged {len(files)} shards from torchrun (world {len(files)}), "
            f"{result.n} items of {split!r}"
        )
    return ctx.cache.get(run_key, lambda: result)


def shards_present(
    ctx: RunContext, split: str, world: int, indices: list[int] | None = None
) -> int:
    """How many of the `world` shard files of this collection are stored (a waiting rank 0 polls
    this; the files appear atomically)."""
    idx = sorted(ctx.sample_indices(split) if indices is None else indices)
    folder = _root(ctx) / fingerprint(ctx, split, idx)
    return sum((folder / ShardSpec(r, world).filename()).is_file() for r in range(world))


if __name__ == "__main__":  # the entry point before `detective collect`: point there
    import sys

    sys.stderr.write(
        "error: run the pass with `detective collect CASE --session DIR` (under torchrun: "
        "`torchrun --nproc_per_node=N -m detective collect ...`)\n"
    )
    raise SystemExit(2)
