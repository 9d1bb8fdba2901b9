"""What a full investigation costs on a real network at a real size, against one training epoch.

Builds, offline, a case of the size the issue names: a torchvision ResNet-18 (weights=None) at
64×64 on 7,000 train / 2,100 val RGB crops of ten scikit-image photographs and textures (the class
is the source image; train crops come from the left 60 % of each image, val crops from the rest,
so val is a little harder than train, as in real data). Then, in this one process:

1. trains the model for one epoch with the case's own recipe (a DataLoader over the train
   Dataset, AdamW, batch 64): the *epoch* every cost is compared with;
2. times the collection pass against a bare `torch.no_grad()` loop over the same val loader
   (interleaved, best of three each);
3. runs the default investigation (`detective run`, default playbook, no symptom, its default
   budget of about one epoch, or `--budget MIN|none`) and prints the per-check table: planned
   seconds (the cost model's estimate, made before the first check) beside measured seconds.

    python benchmarks/scale.py                  # about 10-15 min on a 2-core CPU
    python benchmarks/scale.py --budget 2       # the same case under `--budget 2`

Goals (issue 18): investigation ≤ 2× one epoch; collection pass ≤ 1.1× the bare loop.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time
from pathlib import Path

SOURCES = (  # RGB photographs, then grey photographs and textures (stacked to RGB)
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina",
    "hubble_deep_field", "camera", "brick", "grass",
)  # fmt: skip

CASE = '''
"""The scale benchmark's case (written by benchmarks/scale.py)."""
import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from detective.casekit import safe_load

CLASSES = {classes!r}
NORMALIZATION = {{"mean": [0.45, 0.43, 0.40], "std": [0.25, 0.25, 0.25]}}
TRAIN = {{"epochs": 10, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0, "seed": 0}}
EVAL = {{"batch_size": 128}}
DATA = {data!r}
WEIGHTS = {weights!r}


class Crops(Dataset):
    def __init__(self, split, transform=None):
        d = np.load(DATA)
        self.x, self.y, self.transform = d[f"{{split}}_x"], d[f"{{split}}_y"], transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        image = Image.fromarray(self.x[i])
        return (self.transform(image) if self.transform else image), int(self.y[i])


def transforms():
    norm = T.Normalize(NORMALIZATION["mean"], NORMALIZATION["std"])
    return {{"train": T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]),
             "eval": T.Compose([T.ToTensor(), norm])}}


def raw_datasets():
    return {{"train": Crops("train"), "val": Crops("val")}}


def datasets():
    tf = transforms()
    return {{"train": Crops("train", tf["train"]), "val": Crops("val", tf["eval"])}}


def fresh_model():
    return torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))


def model():
    net = fresh_model()
    net.load_state_dict(safe_load(WEIGHTS))
    return net


def optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"], weight_decay=TRAIN["weight_decay"])
'''


def source_image(name: str, height: int = 256, width: int = 384):
    import numpy as np
    import skimage.data
    from PIL import Image

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3].astype(np.uint8)
    return np.asarray(Image.fromarray(img).resize((width, height), Image.BILINEAR))


def build_data(path: Path, train_per_class: int, val_per_class: int, size: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        xs, ys = [], []
        for label, name in enumerate(SOURCES):
            src = source_image(name)
            h, w, _ = src.shape
            edge = int(w * 0.6)
            lo, hi = (0, edge - size) if split == "train" else (edge, w - size)
            for _ in range(per_class):
                y0, x0 = rng.integers(0, h - size + 1), rng.integers(lo, hi + 1)
                xs.append(src[y0 : y0 + size, x0 : x0 + size])
                ys.append(label)
        order = rng.permutation(len(ys))
        out[f"{split}_x"] = np.stack(xs)[order]
        out[f"{split}_y"] = np.asarray(ys, np.int64)[order]
    np.savez(path, **out)


def train_one_epoch(case, weights: Path) -> float:
    """One epoch of the case's recipe from scratch, as the user's training script would: the
    seconds it takes are the unit of this benchmark."""
    import torch

    torch.manual_seed(0)
    model = case.call("fresh_model")
    data = case.datasets()["train"]
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True)
    opt = case.call("optimizer", model)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    seconds = time.perf_counter() - start
    torch.save(model.state_dict(), weights)
    return seconds


def bare_loop(ctx, batch_size: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    model = ctx.model()
    loader = DataLoader(ctx.dataset("val"), batch_size=batch_size, shuffle=False)
    start = time.perf_counter()
    with torch.no_grad():
        for x, _y in loader:
            model(x.to(ctx.device))
    return time.perf_counter() - start


def collection_pass(ctx, batch_size: int) -> float:
    from detective.analysis.collect import ShardSpec, _run_pass  # the pass itself, no disk cache

    idx = list(range(len(ctx.dataset("val"))))
    start = time.perf_counter()
    part = _run_pass(ctx, "val", idx, ShardSpec(), None, batch_size, 2048)
    elapsed = time.perf_counter() - start
    assert len(part["index"]) == len(idx)
    return elapsed


def investigate(case_path: Path, session: Path, budget: float | None, sample: int):
    from detective.core.context import RunOptions
    from detective.core.engine import CheckFinished, RunFinished, RunPlanned, run_playbook
    from detective.ui.headless import prepare

    options = RunOptions(device="cpu", sample=sample, budget_min=budget)
    plan, measured, verdicts = None, {}, {}
    start = time.perf_counter()
    prep = prepare(case_path, session, options, None, existing=False)
    with prep.session:
        for event in run_playbook(prep.session, prep.playbook, prep.ctx):
            if isinstance(event, RunPlanned):
                plan = event.plan
                print(f"plan: {plan.describe()}", flush=True)
                for s in plan.shortened:
                    print(f"  shortened: {s.describe()}")
            elif isinstance(event, CheckFinished):
                measured[event.check_id] = event.finding.duration_s
                verdicts[event.check_id] = event.finding.verdict.value
                print(f"  {event.check_id:<24} {event.finding.duration_s:7.1f} s  "
                      f"{event.finding.verdict.value}", flush=True)  # fmt: skip
            elif isinstance(event, RunFinished):
                print(f"run finished: {event.status.value} {event.message}")
    return time.perf_counter() - start, plan, measured, verdicts


def main() -> None:
    from detective.ui import cliargs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-class", type=int, default=700)
    parser.add_argument("--val-per-class", type=int, default=210)
    parser.add_argument("--image", type=int, default=64)
    parser.add_argument("--budget", type=cliargs.budget, default=None,
                        help="run with --budget MIN (none: no bound; default: the run's default, "
                        "one epoch)")  # fmt: skip
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--workdir", default=None, help="keep the case here (default: a temp dir)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()

    import torch

    from detective.core.case import load_case
    from detective.core.context import RunContext, RunOptions

    torch.set_num_threads(max(1, min(args.threads, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        data, weights, case_path = work / "crops.npz", work / "resnet18.pt", work / "scale_case.py"
        t0 = time.perf_counter()
        build_data(data, args.train_per_class, args.val_per_class, args.image)
        case_path.write_text(textwrap.dedent(CASE.format(
            classes=list(SOURCES), data=str(data), weights=str(weights))))  # fmt: skip
        n_train, n_val = args.train_per_class * len(SOURCES), args.val_per_class * len(SOURCES)
        built, threads = time.perf_counter() - t0, torch.get_num_threads()
        print(f"case: ResNet-18 (weights=None), {args.image}x{args.image} RGB, {n_train} train / "
              f"{n_val} val crops of {len(SOURCES)} scikit-image sources "
              f"(built in {built:.0f} s); {threads} threads")  # fmt: skip
        case = load_case(case_path)
        epoch = train_one_epoch(case, weights)
        print(f"one training epoch of the recipe: {epoch:.1f} s", flush=True)

        ctx = RunContext(load_case(case_path), RunOptions(device="cpu", sample=n_val),
                         work / "a", work / "c")  # fmt: skip
        bs = ctx.case.eval_settings.batch_size
        bare_loop(ctx, bs)  # warm-up
        bare, ours = [], []
        for _ in range(3):  # best of three each: the machine may be shared
            bare.append(bare_loop(ctx, bs))
            ours.append(collection_pass(ctx, bs))
        print(f"val pass over {n_val} items: bare no_grad loop {min(bare):.1f} s, collection "
              f"pass {min(ours):.1f} s", flush=True)  # fmt: skip

        total, plan, measured, verdicts = investigate(
            case_path, work / "session", args.budget, args.sample
        )
    planned = {e.check_id: e.seconds for e in plan.estimates} if plan else {}
    print()
    print(f"{'check':<26}{'planned s':>10}{'measured s':>11}  verdict")
    for cid in sorted(measured, key=lambda c: -measured[c]):
        print(f"{cid:<26}{planned.get(cid, float('nan')):>10.1f}{measured[cid]:>11.1f}  "
              f"{verdicts[cid]}")  # fmt: skip
    print(f"{'total (checks)':<26}{sum(planned.values()):>10.1f}{sum(measured.values()):>11.1f}")
    print()
    budget = f" under --budget {args.budget:g}" if args.budget else " (default budget)"
    print(f"investigation{budget}: {total:.0f} s wall = {total / epoch:.2f}× one training epoch "
          f"({epoch:.0f} s) (goal ≤ 2×)")  # fmt: skip
    if plan is not None:
        # On a shared machine the load moves between the epoch above and the run: the plan's
        # epoch (its step timed at the start of the run) is the same-moment yardstick.
        print(f"  the plan's epoch (timed at the run's start): {plan.epoch_s:.0f} s → "
              f"{total / plan.epoch_s:.2f}×; budget {plan.budget_s or float('nan'):.0f} s, "
              f"check work {sum(measured.values()):.0f} s; skipped to fit: "
              f"{', '.join(plan.dropped) or 'nothing'}")  # fmt: skip
    print(f"collection pass / bare no_grad loop: {min(ours) / min(bare):.2f}× (goal ≤ 1.1×)")


if __name__ == "__main__":
    main()
