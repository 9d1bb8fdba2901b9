"""The recipe runner's step loop on a GPU user's terms: autocast (bf16, or fp16 with a gradient
scaler), channels_last for conv nets, and an out-of-memory batch split in halves whose gradients
add up to the same step. Exercised on CPU autocast here; the CUDA tests run where CUDA exists."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detective.analysis.training import FP32, Precision, fit_batches, short_run_precision


def _data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes told apart by the brightness of a 3×8×8 image, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 3, 8, 8, generator=g) * 0.5 + (y.float() * 2 - 1).view(-1, 1, 1, 1)
    return x, y


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 2))  # fmt: skip


def _train(precision: Precision, steps: int = 40) -> tuple[nn.Module, list[float], set]:
    x, y = _data()
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses: list[float] = []
    dtypes: set = set()
    conv = model[0]
    handle = conv.register_forward_hook(lambda _m, _i, out: dtypes.add(out.dtype))
    batches = ((x[i % 8 * 32 : i % 8 * 32 + 32], y[i % 8 * 32 : i % 8 * 32 + 32])
               for i in range(steps))  # fmt: skip
    fit_batches(model, batches, opt, nn.CrossEntropyLoss(),
                lambda _s, loss, _o, _y: losses.append(loss), precision=precision)  # fmt: skip
    handle.remove()
    return model, losses, dtypes


def _accuracy(model: nn.Module) -> float:
    x, y = _data(512, seed=1)
    with torch.no_grad():
        return float((model.eval()(x).argmax(1) == y).float().mean())


def _cpu_autocast(dtype: torch.dtype) -> bool:
    try:
        with torch.autocast("cpu", dtype=dtype):
            return nn.Linear(4, 4)(torch.randn(2, 4)).dtype == dtype
    except (RuntimeError, AssertionError):
        return False


@pytest.mark.skipif(not _cpu_autocast(torch.bfloat16), reason="no CPU bf16 autocast")
def test_bf16_autocast_computes_in_bf16_and_learns_what_fp32_learns() -> None:
    ref, ref_losses, ref_dtypes = _train(FP32)
    amp, amp_losses, amp_dtypes = _train(Precision(dtype=torch.bfloat16))
    assert ref_dtypes == {torch.float32}  # clean: the default is plain fp32
    assert amp_dtypes == {torch.bfloat16}  # the conv really ran in bf16
    # Learning moved the same way: both from ~0.69 to far lower, and the same accuracy.
    assert ref_losses[-1] < 0.3 and amp_losses[-1] < 0.3
    assert amp_losses[-1] == pytest.approx(ref_losses[-1], rel=0.2)  # ~0.014 both
    assert abs(_accuracy(ref) - _accuracy(amp)) < 0.03
    assert _accuracy(amp) > 0.9


@pytest.mark.skipif(not _cpu_autocast(torch.float16), reason="no CPU fp16 autocast")
def test_fp16_runs_with_a_grad_scaler_and_learns_what_fp32_learns() -> None:
    ref, _, _ = _train(FP32)
    amp, losses, dtypes = _train(Precision(dtype=torch.float16, scaler=True))
    assert dtypes == {torch.float16}
    assert all(map(lambda v: v == v, losses))  # no nan: the scaler skips inf steps
    assert abs(_accuracy(ref) - _accuracy(amp)) < 0.03


def test_channels_last_puts_a_conv_net_in_nhwc_and_changes_nothing_else() -> None:
    ref, ref_losses, _ = _train(FP32, steps=10)
    cl, cl_losses, _ = _train(Precision(channels_last=True), steps=10)
    assert cl[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not ref[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert cl_losses == pytest.approx(ref_losses, rel=1e-4, abs=1e-5)


class _SmallMemory(nn.Module):
    """Planted: a 'GPU' that runs out of memory on more than 8 items per forward."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > 8:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


def test_an_out_of_memory_batch_is_halved_and_gives_the_same_step() -> None:
    x, y = _data(32)
    small = _SmallMemory()
    plain = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    plain.load_state_dict(small.net.state_dict())
    notes: list[str] = []
    for model, log in ((small, notes.append), (plain, None)):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        assert fit_batches(model, [(x, y), (x, y)], opt, nn.CrossEntropyLoss(), log=log) == 2
    # 32 → 16 → 8 items per forward, then it sticks: two notes, one step per batch
    assert len(notes) == 2 and "chunks of 8" in notes[-1]
    for a, b in zip(small.net.parameters(), plain.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_another_runtime_error_is_not_taken_for_out_of_memory() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    x, y = _data(16)
    model = Broken()
    with pytest.raises(RuntimeError, match="shapes cannot"):
        fit_batches(model, [(x, y)], torch.optim.SGD(model.parameters(), lr=0.1),
                    nn.CrossEntropyLoss())  # fmt: skip


def test_short_runs_are_fp32_on_the_cpu() -> None:
    assert short_run_precision(_net()) == FP32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_short_runs_on_cuda_use_amp_and_channels_last() -> None:
    model = _net().cuda()
    p = short_run_precision(model)
    assert p.dtype in (torch.bfloat16, torch.float16) and p.channels_last
    assert p.scaler == (p.dtype == torch.float16)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses: list[float] = []
    fit_batches(model, [(x.cuda(), y.cuda())] * 20, opt, nn.CrossEntropyLoss(),
                lambda _s, loss, _o, _y: losses.append(loss), precision=p)  # fmt: skip
    assert losses[-1] < losses[0]
