"""What a check gets to work with: the case, the device, robust data access, artifacts, caches.

Data access is robust by construction: `batches()` catches an item whose `__getitem__` raises,
returns the wrong shape, or holds NaN/Inf, records it in `item_problems` (split → index → reason)
and carries on with the rest, so one bad file never kills a check.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from detective.core.case import Case, CaseError
from detective.core.ports import CacheKey, ExperimentQueue, KeyValueStore, RunCache
from detective.core.progress import Cancelled
from detective.core.shared import SharedMeasurements

if TYPE_CHECKING:
    import torch

    from detective.core.budget import BudgetClock, RunPlan
    from detective.core.findings import Finding
    from detective.core.progress import Progress

S = TypeVar("S")

@dataclass(frozen=True)
class RunOptions:
    device: str = "auto"
    sample: int = 2000  # items a streaming check looks at, at most; --sample raises it
    seed: int = 0
    symptom: str | None = None
    reported_metric: float | None = None  # the metric the user sees (accuracy on eval split, 0..1)
    logs: str | None = None  # a CSV or TensorBoard log folder of the user's own training run
    llm: str | None = None  # path to a GGUF file
    llm_gpu_layers: int | None = None  # layers offloaded to the GPU (None: all on CUDA, else 0)
    num_workers: int = 0
    hook_timeout: float = 600.0  # seconds a hook of the case may take (see
    # detective.core.hookwatch)
    # --budget: minutes of measured work; None: the default (about one epoch), inf: no bound
    # (detective.core.budget.resolve_budget)
    budget_min: float | None = None


def default_workers(device: str) -> int:
    """DataLoader processes when the user does not say: none on a CPU run (they would take the
    cores the model computes on), min(8, CPUs - 1) when a GPU computes."""
    import os

    if not device.startswith("cuda") and device != "auto":
        return 0
    if device == "auto":
        from detective.analysis.torchutil import resolve_device

        try:
            if resolve_device("auto").type != "cuda":
                return 0
        except Exception:  # noqa: BLE001 - the device error is reported where it is resolved
            return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class Batch:
    indices: torch.Tensor  # dataset indices of the rows in this batch
    x: torch.Tensor
    y: torch.Tensor


_BAD = object()


class _SafeItems:
    """Wraps a dataset: an item that raises or misbehaves becomes a recorded problem."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[int, Any, Any, str]:
        import torch

        from detective.core.itemerrors import bomb_guard, describe_item_error

        index = self.indices[i]
        try:
            with bomb_guard():
                item = self.dataset[index]
            image, label = item[0], item[1]
            if not isinstance(image, torch.Tensor):
                return index, _BAD, None, f"image is {type(image).__name__}, expected a tensor"
            if image.ndim != 3:
                return (
                    index,
                    _BAD,
                    None,
                    f"image has shape {tuple(image.shape)}, expected [C, H, W]",
                )
            if not image.is_floating_point():
                return index, _BAD, None, f"image dtype is {image.dtype}, expected a float tensor"
            if not torch.isfinite(image).all():
                return index, _BAD, None, "image holds NaN or Inf values"
            return index, image, int(label), ""
        except Exception as e:  # user data: anything can come out
            return index, _BAD, None, describe_item_error(e)


class RunContext:
    def __init__(
        self,
        case: Case,
        options: RunOptions,
        artifacts_dir: Path,
        cache_dir: Path,
    ) -> None:
        self.case = case
        self.options = options
        self.artifacts_dir = artifacts_dir
        self.cache_dir = cache_dir
        self.item_problems: dict[str, dict[int, str]] = {}
        self._device: torch.device | None = None
        self._model: torch.nn.Module | None = None
        self._model_error: Exception | None = None
        self._expected_shape: dict[str, tuple[int, ...]] = {}
        # Explicit ports instead of a shared dict: the session's key/value store (attached by
        # the engine), experiments waiting for their finding, per-run caches, and the typed
        # measurements shared between checks (`shared`).
        self.kv: KeyValueStore | None = None
        self.experiments = ExperimentQueue()
        self.cache = RunCache(options.seed)
        self.measurements = SharedMeasurements()
        # The findings of this run so far, handed by the engine to a check that judges them
        # (`Check.reads_findings`): the interventions run on the causes they found evidence for.
        self.prior_findings: tuple[Finding, ...] = ()
        # The run's cost plan and budget clock (set by the engine before the first check):
        # work after the checks (interventions) asks `budget.seconds_remaining()`.
        self.plan: RunPlan | None = None
        self.budget: BudgetClock | None = None

    # --- device and model -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        if self._device is None:
            from detective.analysis.torchutil import resolve_device

            self._device = resolve_device(self.options.device)
        return self._device

    def model(self) -> torch.nn.Module:
        """The model under investigation, on the device, in eval mode. Do not modify it."""
        if self._model_error is not None:
            # A failing hook fails the same way for every check: calling it again (a slow
            # checkpoint read, a hook that trains) would only spend the budget again.
            raise self._model_error
        if self._model is None:
            import torch

            try:
                model = self.case.model()
                if not isinstance(model, torch.nn.Module):
                    raise CaseError(
                        f"model() returned {type(model).__name__}, expected torch.nn.Module"
                    )
                self._model = model.to(self.device).eval()
            except Cancelled:
                raise
            except Exception as e:
                self._model_error = e
                raise
        return self._model

    def model_copy(self) -> torch.nn.Module:
        """A private copy of the trained model that a check may train or modify."""
        return copy.deepcopy(self.model())

    def fresh_model(self) -> torch.nn.Module:
        """An untrained model of the same architecture: the case's fresh_model() hook, else the
        model with every layer's reset_parameters() called."""
        from detective.analysis.torchutil import reset_parameters

        if self.case.has("fresh_model"):
            return self.case.call("fresh_model").to(self.device)
        return reset_parameters(copy.deepcopy(self.model())).to(self.device)

    def shared(self, tp: type[S], progress: Progress | None = None) -> S:
        """The shared measurement of type `tp` (declared in the check's `uses`), computed by its
        provider on first use and identical whichever checks ran before."""
        return self.measurements.get(tp, self, progress)

    # --- data -------------------------------------------------------------------------------
    def has_split(self, split: str) -> bool:
        return split in self.case.datasets()

    def dataset(self, split: str) -> Any:
        data = self.case.datasets()
        if split not in data:
            raise CaseError(f"the case has no {split!r} split")
        return data[split]

    def raw_dataset(self, split: str) -> Any:
        return self.case.raw_datasets()[split]

    def sample_indices(
        self, split: str, n: int | None = None, seed: int | None = None
    ) -> list[int]:
        """A deterministic sample of at most n (default --sample) indices of a split, sorted."""
        import numpy as np

        size = len(self.dataset(split))
        n = self.options.sample if n is None else n
        if n >= size:
            return list(range(size))
        rng = np.random.default_rng(self.options.seed if seed is None else seed)
        return sorted(rng.choice(size, size=n, replace=False).tolist())

    def batches(
        self,
        split: str,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        progress: Progress | None = None,
        to_device: bool = True,
    ) -> Iterator[Batch]:
        """Robust batches of (indices, x, y); bad items are recorded in `item_problems`."""
        import torch
        from torch.utils.data import DataLoader

        dataset = self.dataset(split)
        idx = list(range(len(dataset))) if indices is None else list(indices)
        bs = batch_size or self.case.eval_settings.batch_size
        loader: DataLoader[Any] = DataLoader(
            _SafeItems(dataset, idx),  # type: ignore[arg-type]  # map-style, duck-typed
            batch_size=bs,
            shuffle=False,
            num_workers=self.options.num_workers,
            collate_fn=list,
        )
        problems = self.item_problems.setdefault(split, {})
        done = 0
        for rows in loader:
            if progress is not None:
                progress.check_cancelled()
            good = []
            for index, image, label, problem in rows:
                if problem:
                    problems[index] = problem
                    continue
                shape = tuple(image.shape)
                expected = self._expected_shape.setdefault(split, shape)
                if shape != expected:
                    problems[index] = (
                        f"image has shape {shape}, the split's first item has {expected}"
                    )
                    continue
                if not 0 <= label < self.case.num_classes:
                    problems[index] = f"label {label} is outside 0..{self.case.num_classes - 1}"
                    continue
                good.append((index, image, label))
            done += len(rows)
            if progress is not None:
                progress.update(done, len(idx))
            if not good:
                continue
            x = torch.stack([g[1] for g in good])
            y = torch.tensor([g[2] for g in good], dtype=torch.long)
            ids = torch.tensor([g[0] for g in good], dtype=torch.long)
            if to_device:
                if self.device.type == "cuda":  # page-locked: the copy overlaps compute
                    x, y = x.pin_memory(), y.pin_memory()
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield Batch(ids, x, y)

    def tensors(
        self, split: str, indices: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """(x, y, kept indices) for a bounded sample, on the device, loaded once per run.

        For checks that pass over the same sample many times (short training probes): the
        case's transforms run once, so random augmentation is frozen to one draw.
        """
        import torch

        def load() -> tuple[torch.Tensor, torch.Tensor, list[int]]:
            xs, ys, kept = [], [], []
            for batch in self.batches(split, indices):
                xs.append(batch.x)
                ys.append(batch.y)
                kept.extend(batch.indices.tolist())
            if not xs:
                raise CaseError(f"no usable item among the {len(indices)} sampled from {split!r}")
            return torch.cat(xs), torch.cat(ys), kept

        return self.cache.get(CacheKey("tensors", (split, tuple(indices))), load)

    # --- files ------------------------------------------------------------------------------
    def artifact(self, check_id: str, name: str) -> tuple[Path, str]:
        """(absolute path to write, path relative to the artifacts folder for the Artifact)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{check_id}-{name}")
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        return self.artifacts_dir / safe, safe

    def missing(self, needs: Sequence[str]) -> list[str]:
        """Which declared needs this case cannot satisfy (the check is then not applicable)."""
        out = []
        for need in needs:
            if need in ("model", "datasets"):
                continue  # required hooks: a case without them does not load
            if need == "NORMALIZATION":
                if self.case.normalization is None:
                    out.append("NORMALIZATION")
            elif need.startswith("split:"):
                if not self.has_split(need.split(":", 1)[1]):
                    out.append(f"a {need.split(':', 1)[1]!r} split in datasets()")
            elif need == "reported_metric":
                if self.options.reported_metric is None:
                    out.append("the reported metric (--reported-metric)")
            elif need == "logs":
                if not self.options.logs:
                    out.append("training logs (--logs)")
            elif need == "llm":
                if not self.options.llm:
                    out.append("a GGUF model (--llm)")
            elif not self.case.has(need):
                out.append(f"{need}()")
        return out
