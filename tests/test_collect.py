"""The collection pass: records match a direct forward pass, are cached and invalidated by
fingerprint, shard and merge to the same result, and honour a case's features() hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CASES, context_for, write_case

from detective.analysis.collect import Collection, ShardSpec, collect
from detective.core.progress import Progress

TINY = CASES / "tiny_tensor.py"


def _direct(ctx, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model = ctx.model()
    data = ctx.dataset(split)
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.tensor([data[i][1] for i in range(len(data))])
    with torch.no_grad():
        logits = model(x)
        feats = torch.flatten(model.features(x), 1)
    logp = logits.log_softmax(1)
    return logp.numpy(), (-logp.gather(1, y.view(-1, 1)).squeeze(1)).numpy(), feats.numpy()


def test_records_match_a_direct_forward_pass(tmp_path: Path) -> None:
    ctx = context_for(TINY, tmp_path)
    fractions: list[float] = []
    col = collect(ctx, "val", Progress(lambda u: fractions.append(u.fraction)))
    logp, loss, feats = _direct(ctx, "val")
    assert isinstance(col, Collection) and col.n == 16 and col.split == "val"
    assert np.array_equal(col.index, np.arange(16))
    np.testing.assert_allclose(col.log_probs, logp, atol=1e-5)
    np.testing.assert_allclose(col.loss, loss, atol=1e-5)
    assert np.array_equal(col.pred, logp.argmax(1))
    assert col.topk_classes.shape == (16, 2)  # k = min(3, K) with two classes
    np.testing.assert_allclose(col.probs.sum(1), 1, atol=1e-5)
    # Small split: every row is in the uniform sample, so every row has its features.
    assert np.array_equal(col.feature_rows, np.arange(16)) and col.feature_in_sample.all()
    np.testing.assert_allclose(col.features, feats, atol=1e-5)
    assert set(col.properties) == {"brightness", "contrast", "sharpness", "saturation"}
    assert fractions and fractions[-1] == 1.0


def test_failures_always_keep_features_and_successes_are_sampled(tmp_path: Path) -> None:
    ctx = context_for(TINY, tmp_path)
    col = collect(ctx, "train", Progress(), feature_sample=5)
    failures = np.flatnonzero(~col.correct)
    assert set(failures) <= set(col.feature_rows.tolist())
    assert col.feature_in_sample.sum() == 5
    sampled = set(col.feature_rows[col.feature_in_sample])
    assert len(col.feature_rows) == len(set(failures) | sampled)


def test_cached_on_disk_reused_and_invalidated_when_the_model_changes(tmp_path: Path) -> None:
    case = write_case(
        tmp_path,
        f"""
        import torch
        exec(open({str(TINY)!r}).read())
        SEED = 0
        def model():
            torch.manual_seed(SEED)
            return kit.SmallCNN(num_classes=2, width=4)
        """,
    )
    first = collect(context_for(case, tmp_path), "val", Progress())
    again = collect(context_for(case, tmp_path), "val", Progress())
    assert again.fingerprint == first.fingerprint
    assert np.array_equal(again.log_probs, first.log_probs)
    stored = list((tmp_path / "cache" / "collect").glob("*/shard-*.npz"))
    assert len(stored) == 1
    case.write_text(case.read_text().replace("SEED = 0", "SEED = 1"))
    changed = collect(context_for(case, tmp_path), "val", Progress())
    assert changed.fingerprint != first.fingerprint
    assert not np.allclose(changed.log_probs, first.log_probs)
    # the stale entry of the same case and split was removed
    assert len(list((tmp_path / "cache" / "collect").glob("*/shard-*.npz"))) == 1


def test_memoized_within_a_run(tmp_path: Path) -> None:
    ctx = context_for(TINY, tmp_path)
    assert collect(ctx, "val", Progress()) is collect(ctx, "val", Progress())


def test_shards_merge_to_the_single_pass_result(tmp_path: Path) -> None:
    whole = collect(context_for(TINY, tmp_path / "a"), "train", Progress(), feature_sample=7)
    parts = []
    for rank in range(3):
        ctx = context_for(TINY, tmp_path / "b")
        parts.append(collect(ctx, "train", Progress(), shard=ShardSpec(rank, 3), feature_sample=7))
    assert parts[0].n < whole.n  # the first shard alone, others not yet written
    merged = parts[-1]
    assert merged.n == whole.n
    for name in ("index", "label", "topk_classes", "loss", "feature_rows", "feature_in_sample"):
        assert np.array_equal(getattr(merged, name), getattr(whole, name)), name
    np.testing.assert_allclose(merged.features, whole.features, atol=1e-6)


def test_features_hook_overrides_the_last_linear(tmp_path: Path) -> None:
    case = write_case(
        tmp_path,
        f"""
        exec(open({str(TINY)!r}).read())
        def features(model, x):
            return x.mean((2, 3)) * 0 + 7.0
        """,
    )
    col = collect(context_for(case, tmp_path), "val", Progress())
    assert col.features.shape == (16, 1) and (col.features == 7.0).all()


def test_bad_items_are_skipped_and_counted(tmp_path: Path) -> None:
    case = write_case(
        tmp_path,
        f"""
        exec(open({str(TINY)!r}).read())
        _datasets = datasets
        class Broken(torch.utils.data.Dataset):
            def __init__(self, inner): self.inner = inner
            def __len__(self): return len(self.inner)
            def __getitem__(self, i):
                if i == 3: raise OSError("truncated file")
                return self.inner[i]
        def datasets():
            d = _datasets()
            return {{"train": d["train"], "val": Broken(d["val"])}}
        """,
    )
    ctx = context_for(case, tmp_path)
    col = collect(ctx, "val", Progress())
    assert col.n == 15 and col.skipped == 1 and 3 not in col.index
    assert "truncated" in ctx.item_problems["val"][3]


def test_raw_sizes_when_raw_datasets_exist(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    ctx = context_for(CASES / "digits_clean.py", tmp_path)
    # Do not train the clean model here: an untrained one of the same architecture will do.
    ctx._model = ctx.fresh_model().eval()
    col = collect(ctx, "val", Progress(), indices=list(range(40)))
    assert col.n == 40
    assert (col.properties["width"] == 8).all() and (col.properties["aspect"] == 1).all()
