"""Calling the user's hooks under watch: announce a slow one, time out a hung one, stop at once
on cancel.

A Python thread cannot be interrupted, so the hook runs in a daemon thread and the caller waits
on it in short slices, checking the cancel flag and the clock between them. On cancel or timeout
the caller returns at once (within a slice, 0.1 s) and the hook's thread is abandoned: it cannot
block the process from exiting, and its result is dropped. A signal-based alarm would only work
on the main thread, and the engine calls hooks from its worker thread.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from detective.core.progress import Cancelled

DEFAULT_HOOK_TIMEOUT_S = 600.0  # generous: loading a large checkpoint from a slow disk is fine
SLOW_AFTER_S = 2.0  # announce a hook that has not returned after this long
UNTIMED_HOOKS = ("train",)  # the user's training loop is long by design; cancel still stops it
_SLICE_S = 0.1


@dataclass
class HookWatch:
    timeout_s: float = DEFAULT_HOOK_TIMEOUT_S
    cancel: threading.Event | None = None
    on_slow: Callable[[str], None] | None = None  # called once per slow call, with the hook name
    slow_after_s: float = SLOW_AFTER_S


def call_watched(
    watch: HookWatch, hook: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """fn(*args, **kwargs) in a daemon thread; raises what fn raised, `Cancelled`, or
    `HookTimeout`."""
    from detective.core.case import HookTimeout

    box: dict[str, Any] = {}
    enter = _thread_state()

    def target() -> None:
        try:
            with enter():
                box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the caller, re-raised there
            box["error"] = e

    thread = threading.Thread(target=target, name=f"detective-hook-{hook}", daemon=True)
    start = time.monotonic()
    thread.start()
    announced = False
    while True:
        thread.join(_SLICE_S)
        if not thread.is_alive():
            break
        if watch.cancel is not None and watch.cancel.is_set():
            raise Cancelled()
        elapsed = time.monotonic() - start
        if not announced and elapsed >= watch.slow_after_s and watch.on_slow is not None:
            announced = True
            watch.on_slow(hook)
        if hook not in UNTIMED_HOOKS and elapsed >= watch.timeout_s:
            raise HookTimeout(hook, watch.timeout_s)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _thread_state() -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """The caller's thread-local torch state (grad / inference mode, current CUDA device), to
    re-enter in the hook's thread: a `features(model, x)` hook called under `no_grad` must not
    build a graph, nor use inference tensors in a grad-enabled thread."""
    torch = sys.modules.get("torch")
    if torch is None:
        return contextlib.nullcontext
    grad = torch.is_grad_enabled()
    inference = torch.is_inference_mode_enabled()
    device = torch.cuda.current_device() if torch.cuda.is_initialized() else None

    @contextlib.contextmanager
    def enter() -> Iterator[None]:
        if device is not None:
            torch.cuda.set_device(device)
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            yield

    return enter
