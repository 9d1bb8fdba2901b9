"""Loading a case: the user's model, data and recipe, as a Python file of module-level hooks.

Every call into user code goes through `Case.call`, which turns an exception into a `HookError`
naming the hook, the file and the line, with the traceback kept for the report.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from detective.core.progress import Cancelled

REQUIRED_HOOKS = ("CLASSES", "model", "datasets")
OPTIONAL_HOOKS = (
    "raw_datasets",
    "transforms",
    "NORMALIZATION",
    "optimizer",
    "loss",
    "train",
    "fresh_model",
    "TRAIN",
    "EVAL",
    "object_mask",
)


class CaseError(Exception):
    """A problem with the user's case, worded for the user; `details` holds a traceback if any."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class HookError(CaseError):
    """A user hook raised."""

    def __init__(self, hook: str, message: str, details: str) -> None:
        super().__init__(message, details)
        self.hook = hook


class HookTimeout(CaseError):
    """A hook did not return within the run's --hook-timeout; the run cannot go on."""

    def __init__(self, hook: str, seconds: float) -> None:
        super().__init__(
            f"your {hook}() hook did not return within {seconds:g} s (--hook-timeout); "
            "it may be waiting on a lock, a download or a stuck data loader"
        )
        self.hook = hook


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class EvalSettings:
    batch_size: int = 256
    split: str = "val"


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _settings(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f.type for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise CaseError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    default = cls()
    out = {}
    for key, value in values.items():
        kind = type(getattr(default, key))
        try:
            out[key] = kind(value)
        except (TypeError, ValueError) as e:
            raise CaseError(f"{where}: {key} = {value!r} is not a valid {kind.__name__}") from e
    return replace(default, **out)


def user_frame(exc: BaseException, path: Path) -> traceback.FrameSummary | None:
    """The innermost traceback frame in the user's code: the case file, else a file beside it
    (a model module the case imports); None when the error arose elsewhere."""
    frames = traceback.extract_tb(exc.__traceback__)
    case = path.resolve()
    in_case = [f for f in frames if Path(f.filename).resolve() == case]
    if in_case:
        return in_case[-1]
    beside = [
        f
        for f in frames
        if Path(f.filename).resolve().parent == case.parent and "site-packages" not in f.filename
    ]
    return beside[-1] if beside else None


def where(frame: traceback.FrameSummary | None, path: Path) -> str:
    """'at case.py line 12' (or 'in case.py' when no frame in the user's code is known)."""
    return f"at {Path(frame.filename).name} line {frame.lineno}" if frame else f"in {path.name}"


def _hook_error(hook: str, path: Path, exc: BaseException) -> HookError:
    at = where(user_frame(exc, path), path)
    if isinstance(exc, CaseError):
        return HookError(hook, f"your {hook}() hook {at}: {exc.message}", exc.details)
    what = f"importing {path.name}" if hook == "import" else f"your {hook}() hook"
    message = f"{what} raised {type(exc).__name__}: {exc} {at}"
    return HookError(hook, message, "".join(traceback.format_exception(exc)))


IN_MEMORY_PREFIX = "<python:"  # the "path" of a case built in Python (detective.investigate)


class Case:
    def __init__(
        self,
        path: Path,
        module: ModuleType,
        settings_file: Path | None,
        *,
        fingerprint: str | None = None,
    ) -> None:
        self.path = path
        self.module = module
        self.name = path.stem
        # A case built in Python has no file to hash: the caller fingerprints its recipe.
        self.in_memory = fingerprint is not None
        self._cache: dict[str, Any] = {}
        from detective.core.hookwatch import HookWatch

        self.watch = HookWatch()  # the engine sets the run's timeout, cancel flag and notices
        classes = getattr(module, "CLASSES", None)
        if (
            not isinstance(classes, list | tuple)
            or not classes
            or not all(isinstance(c, str) for c in classes)
        ):
            raise CaseError(
                f"{path.name}: CLASSES must be a non-empty list of class names (strings)"
            )
        self.classes: tuple[str, ...] = tuple(classes)
        toml: dict[str, Any] = {}
        if settings_file is not None:
            try:
                toml = tomllib.loads(settings_file.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as e:
                raise CaseError(f"{settings_file.name}: {e}") from e
        self.train_settings: TrainSettings = _settings(
            TrainSettings,
            {**getattr(module, "TRAIN", {}), **toml.get("train", {})},
            f"{path.name} [train]",
        )
        self.eval_settings: EvalSettings = _settings(
            EvalSettings,
            {**getattr(module, "EVAL", {}), **toml.get("eval", {})},
            f"{path.name} [eval]",
        )
        self.normalization = self._normalization(getattr(module, "NORMALIZATION", None))
        self.file_hash = fingerprint or file_hash(path, settings_file)

    @classmethod
    def from_hooks(
        cls,
        name: str,
        classes: list[str] | tuple[str, ...],
        hooks: dict[str, Callable[..., Any]],
        *,
        normalization: Normalization | None = None,
        train: TrainSettings | None = None,
        evaluation: EvalSettings | None = None,
    ) -> Case:
        """A case from Python objects instead of a file: the same hooks, held in memory.

        `hooks` maps hook names (model, datasets, and any optional hook) to callables. The
        case's fingerprint covers the names, classes and settings; the engine adds the
        model's weights, so resuming the same session skips what was measured on them.
        """
        unknown = sorted(set(hooks) - {"model", "datasets", *OPTIONAL_HOOKS})
        if unknown:
            raise CaseError(f"unknown hook(s) {', '.join(unknown)}")
        for hook in ("model", "datasets"):
            if not callable(hooks.get(hook)):
                raise CaseError(f"a case needs a {hook}() hook")
        module = ModuleType(f"detective_inline_{name}")
        values: dict[str, Any] = {"CLASSES": list(classes), **hooks}
        if normalization is not None:
            values["NORMALIZATION"] = {
                "mean": list(normalization.mean),
                "std": list(normalization.std),
            }
        if train is not None:
            values["TRAIN"] = asdict(train)
        if evaluation is not None:
            values["EVAL"] = asdict(evaluation)
        for key, value in values.items():
            setattr(module, key, value)
        recipe = repr(
            (
                name,
                list(classes),
                sorted(hooks),
                values.get("NORMALIZATION"),
                values.get("TRAIN"),
                values.get("EVAL"),
            )
        )
        digest = hashlib.sha256(recipe.encode()).hexdigest()[:16]
        label = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)  # the "path" is one component
        return cls(Path(f"{IN_MEMORY_PREFIX}{label}>"), module, None, fingerprint=digest)

    def _normalization(self, value: Any) -> Normalization | None:
        if value is None:
            return None
        try:
            mean = tuple(float(v) for v in value["mean"])
            std = tuple(float(v) for v in value["std"])
        except (KeyError, TypeError, ValueError) as e:
            raise CaseError(
                f"{self.path.name}: NORMALIZATION must be {{'mean': [...], 'std': [...]}}"
            ) from e
        if len(mean) != len(std) or not mean or any(s <= 0 for s in std):
            raise CaseError(f"{self.path.name}: NORMALIZATION needs equal-length mean/std, std > 0")
        return Normalization(mean, std)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def has(self, hook: str) -> bool:
        return callable(getattr(self.module, hook, None))

    def call(self, hook: str, *args: Any, **kwargs: Any) -> Any:
        """Call a hook under `self.watch`: a slow hook is announced, a hung one times out
        (HookTimeout), and a cancel request stops the wait at once (see
        detective.core.hookwatch)."""
        from detective.core.hookwatch import call_watched

        fn: Callable[..., Any] | None = getattr(self.module, hook, None)
        if not callable(fn):
            raise CaseError(f"{self.path.name} has no {hook}() hook")
        try:
            return call_watched(self.watch, hook, fn, *args, **kwargs)
        except (Cancelled, HookTimeout):
            raise  # a stop request, or a hung hook: the run ends (engine), not the check
        except Exception as e:  # user code: anything can come out
            raise _hook_error(hook, self.path, e) from e

    def _cached(self, hook: str) -> Any:
        if hook not in self._cache:
            self._cache[hook] = self.call(hook)
        return self._cache[hook]

    def model(self) -> Any:
        """A new instance of the model under investigation (the user's checkpoint loaded)."""
        return self.call("model")

    def datasets(self) -> dict[str, Any]:
        data = self._cached("datasets")
        _check_splits(self.path.name, "datasets", data)
        return data

    def raw_datasets(self) -> dict[str, Any]:
        data = self._cached("raw_datasets")
        _check_splits(self.path.name, "raw_datasets", data)
        return data

    def transforms(self) -> dict[str, Any]:
        data = self._cached("transforms")
        if not isinstance(data, dict) or not {"train", "eval"} <= set(data):
            raise CaseError(
                f"{self.path.name}: transforms() must return {{'train': fn, 'eval': fn}}"
            )
        return data


def _check_splits(file: str, hook: str, data: Any) -> None:
    if not isinstance(data, dict) or "train" not in data or "val" not in data:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise CaseError(f"{file}: {hook}() must return a dict with 'train' and 'val' (got {got})")


def file_hash(path: Path, settings_file: Path | None = None) -> str:
    h = hashlib.sha256(path.read_bytes())
    if settings_file is not None:
        h.update(settings_file.read_bytes())
    return h.hexdigest()[:16]


def settings_file_for(path: Path) -> Path | None:
    beside = path.with_suffix(".toml")
    return beside if beside.is_file() else None


def load_case(path: str | Path) -> Case:
    """Import a case file. Any error in user code becomes a CaseError naming the file and line."""
    if str(path).startswith(IN_MEMORY_PREFIX):
        raise CaseError(
            f"{path} was built in Python (detective.investigate), not read from a file: call "
            "investigate() again with the same session to continue it"
        )
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise CaseError(f"case file not found: {path}")
    if path.suffix != ".py":
        raise CaseError(f"a case is a Python file (.py): {path}")
    module_name = f"detective_case_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CaseError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    # The case may import modules that sit beside it.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise _hook_error("import", path, e) from e
    missing = [name for name in REQUIRED_HOOKS if not hasattr(module, name)]
    if missing:
        raise CaseError(
            f"{path.name} is missing required name(s): {', '.join(missing)} "
            f"(a case defines CLASSES, model() and datasets())"
        )
    return Case(path, module, settings_file_for(path))
