"""Simple baselines: does the model beat the majority class, a linear model on downsampled
pixels, and a linear probe on its own frozen penultimate features?"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import Finding, Metric, Strength, Table, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class BaselineThresholds:
    margin: float = 0.02  # the model "barely beats" a baseline within this accuracy margin


@dataclass(frozen=True)
class BaselineSettings:
    """How much capacity_baselines measures (read by measure only)."""

    train_samples: int = 1000
    val_samples: int = 1000
    pixels: int = 8  # downsampled side for the pixel model


@dataclass(frozen=True)
class BaselineMeasurement:
    train_n: int
    val_n: int
    model_train_acc: float
    model_val_acc: float
    majority_val_acc: float
    pixels_train_acc: float
    pixels_val_acc: float
    probe_train_acc: float  # nan when the model has no nn.Linear head
    probe_val_acc: float
    feature_dim: int


def _logreg(xtr, ytr, xva, yva) -> tuple[float, float]:  # noqa: ANN001
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=1.0))
    clf.fit(xtr, ytr)
    return float(clf.score(xtr, ytr)), float(clf.score(xva, yva))


def penultimate(model, x, batch: int = 256):  # noqa: ANN001, ANN201
    """Inputs of the model's last nn.Linear (its penultimate features), as a CPU tensor."""
    import torch

    from detective.analysis.torchutil import last_linear
    from detective.workflows.experiments import ExperimentError

    head = last_linear(model)
    if head is None:
        raise ExperimentError("the model has no nn.Linear head")
    feats: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda _m, inp, _o: feats.append(inp[0].detach().cpu()))
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                model(x[i : i + batch])
    finally:
        handle.remove()
    return torch.cat(feats).flatten(1).float()


@register
class Baselines(Check[BaselineMeasurement]):
    id = "baselines"
    title = "Simple baselines"
    stage = Stage.CAPACITY
    description = (
        "Compares the model with the majority class, a logistic regression on downsampled pixels "
        "and a linear probe on the model's own frozen penultimate features."
    )
    needs = ("model", "datasets")
    hypotheses = ("underfitting",)
    measurement_type = BaselineMeasurement
    thresholds_type = BaselineThresholds
    settings_type = BaselineSettings

    shrinkable = (
        Knob("train_samples", 200, group="probe_data"),
        Knob("val_samples", 200, group="probe_data"),
    )

    def cost(self, size: CaseSize) -> Cost:
        from detective.core import budget

        st = self.settings
        return Cost(shared=(budget.probe_sample(size, st.train_samples, st.val_samples),))

    def measure(self, ctx, progress) -> BaselineMeasurement:
        import torch
        import torch.nn.functional as F  # noqa: N812

        from detective.analysis.learning.recipe import probe_data
        from detective.workflows.experiments import ExperimentError, model_fit

        data = probe_data(ctx, self.settings.train_samples, self.settings.val_samples)
        fit = model_fit(ctx, data)
        progress.update(0.2, message="majority class and pixel model")
        xtr = torch.cat([data.x_fit, data.x_held])
        ytr = torch.cat([data.y_fit, data.y_held]).cpu().numpy()
        yva = data.y_val.cpu().numpy()
        majority = int(torch.bincount(torch.as_tensor(ytr)).argmax())
        side = min(self.settings.pixels, xtr.shape[-1], xtr.shape[-2])

        def pixels(x):  # noqa: ANN001, ANN202
            return F.adaptive_avg_pool2d(x.float(), side).flatten(1).cpu().numpy()

        px_tr, px_va = _logreg(pixels(xtr), ytr, pixels(data.x_val), yva)
        progress.update(0.6, message="linear probe on frozen features")
        try:
            model = ctx.model()
            ftr, fva = penultimate(model, xtr), penultimate(model, data.x_val)
            pr_tr, pr_va = _logreg(ftr.numpy(), ytr, fva.numpy(), yva)
            dim = int(ftr.shape[1])
        except ExperimentError:
            pr_tr = pr_va = math.nan
            dim = 0
        progress.update(1.0)
        return BaselineMeasurement(
            train_n=len(ytr),
            val_n=len(yva),
            model_train_acc=fit.train_acc,
            model_val_acc=fit.val_acc,
            majority_val_acc=float((yva == majority).mean()),
            pixels_train_acc=px_tr,
            pixels_val_acc=px_va,
            probe_train_acc=pr_tr,
            probe_val_acc=pr_va,
            feature_dim=dim,
        )

    def judge(self, m: BaselineMeasurement) -> Finding:
        th = self.thresholds
        best = max(m.majority_val_acc, m.pixels_val_acc)
        best_name = "majority class" if m.majority_val_acc >= m.pixels_val_acc else "pixel model"
        margin = m.model_val_acc - best
        table = Table(
            "accuracy (train sample / val sample)",
            ("model", "train acc", "val acc"),
            (
                ("your model", round(m.model_train_acc, 4), round(m.model_val_acc, 4)),
                ("majority class", None, round(m.majority_val_acc, 4)),
                (
                    "logistic regression on downsampled pixels",
                    round(m.pixels_train_acc, 4),
                    round(m.pixels_val_acc, 4),
                ),
                (
                    f"linear probe on frozen features ({m.feature_dim} dims)",
                    None if math.isnan(m.probe_train_acc) else round(m.probe_train_acc, 4),
                    None if math.isnan(m.probe_val_acc) else round(m.probe_val_acc, 4),
                ),
            ),
        )
        metrics = (
            Metric("model val accuracy", m.model_val_acc),
            Metric("best simple baseline val accuracy", best, note=best_name),
            Metric("margin over the best simple baseline", margin),
            Metric("linear probe val accuracy", m.probe_val_acc),
            Metric("images", m.train_n + m.val_n, note=f"{m.train_n} train, {m.val_n} val"),
        )
        nums = (
            f"model {m.model_val_acc:.1%} val vs majority {m.majority_val_acc:.1%}, pixel "
            f"logistic regression {m.pixels_val_acc:.1%}"
        )
        probe_gain = m.probe_val_acc - m.model_val_acc if not math.isnan(m.probe_val_acc) else 0.0
        if margin < th.margin:
            # Barely beating a linear model on val. Underfitting only if the model does not fit
            # the training images better either; otherwise the problem is generalisation.
            fits_no_better = m.model_train_acc - m.pixels_train_acc < th.margin
            if fits_no_better:
                return Finding(
                    self.id,
                    Verdict.FAIL,
                    f"The model barely beats simple baselines and does not fit the training "
                    f"images better than a linear model on pixels: {nums}; train accuracy "
                    f"{m.model_train_acc:.1%} vs {m.pixels_train_acc:.1%}.",
                    metrics=metrics,
                    tables=(table,),
                    effects=(
                        supports(
                            "underfitting",
                            Strength.STRONG,
                            f"{nums}; it fits train no better ({m.model_train_acc:.1%} vs "
                            f"{m.pixels_train_acc:.1%})",
                        ),
                    ),
                    next_step="Train longer or with more capacity, or check the learning stage "
                    "(learning rate, frozen layers) before tuning anything else.",
                )
            return Finding(
                self.id,
                Verdict.WARN,
                f"The model barely beats simple baselines on val ({nums}) although it fits the "
                f"training images ({m.model_train_acc:.1%}): what it learned does not transfer "
                "to the val images.",
                metrics=metrics,
                tables=(table,),
                effects=(
                    refutes(
                        "underfitting",
                        Strength.WEAK,
                        f"train accuracy {m.model_train_acc:.1%} beats the pixel model's "
                        f"{m.pixels_train_acc:.1%}",
                    ),
                ),
                next_step="Look at what differs between train and val (pipeline, distribution "
                "shift) and at overfitting.",
            )
        # The head leaves accuracy on the table only if the model also fits train worse than
        # the probe does; with train fitted, a probe's edge on val is recalibration, not capacity.
        head_underfits = m.model_train_acc < m.probe_train_acc - th.margin
        if probe_gain > th.margin and head_underfits:
            return Finding(
                self.id,
                Verdict.WARN,
                f"A linear probe on the model's own frozen features scores {m.probe_val_acc:.1%} "
                f"on val, {probe_gain:.1%} above the model itself ({m.model_val_acc:.1%}): the "
                "features hold more than the head uses.",
                metrics=metrics,
                tables=(table,),
                effects=(
                    supports(
                        "underfitting",
                        Strength.MODERATE,
                        f"linear probe {m.probe_val_acc:.1%} vs model {m.model_val_acc:.1%}",
                    ),
                ),
                next_step="Train the head longer (or with a better learning rate) on the "
                "frozen features.",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            f"The model clearly beats simple baselines: {nums} (margin {margin:+.1%}).",
            metrics=metrics,
            tables=(table,),
            effects=(
                refutes(
                    "underfitting",
                    Strength.WEAK,
                    f"{margin:+.1%} over the best simple baseline on val",
                ),
            ),
        )
