"""Regularization experiments: with a train/val gap, add or remove weight decay, dropout and
augmentation, one at a time, and measure the probe's train/val gap before and after. Each change
is recorded in the session's experiment log."""

from __future__ import annotations

from dataclasses import dataclass

from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import Finding, Metric, Strength, Table, Verdict, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register


@dataclass(frozen=True)
class RegularizationThresholds:
    max_gap: float = 0.08  # the user's model's train − val accuracy that makes this worth running
    min_shrink: float = 0.03  # the gap must shrink by at least this much to count


@dataclass(frozen=True)
class RegularizationSettings:
    """How much capacity_regularization measures (read by measure only)."""

    seeds: tuple[int, ...] = (0, 1)
    add_weight_decay: float = 0.1
    add_dropout: float = 0.5
    shift_fraction: float = 0.0625  # added augmentation: random shift of this share of the side
    train_samples: int = 1000
    val_samples: int = 1000
    max_epochs: int = 5
    min_steps: int = 60
    max_seconds: float = 300.0  # a guard; runs it cuts short are reported inconclusive
    plan_min_gap: float = 0.08  # experiments run only above this train - val gap (a plan)


@dataclass(frozen=True)
class RegExperiment:
    name: str
    change: str
    val_before: float
    val_after: float
    gap_before: float
    gap_after: float
    outcome: str  # improved / worse / within noise (val accuracy, paired over seeds)
    seconds: float


@dataclass(frozen=True)
class RegularizationMeasurement:
    model_train_acc: float
    model_val_acc: float
    experiments: tuple[RegExperiment, ...]
    skipped: tuple[str, ...]  # levers this case does not offer, and why
    budget: str


@register
class Regularization(Check[RegularizationMeasurement]):
    id = "regularization"
    title = "Regularization experiments"
    stage = Stage.CAPACITY
    description = (
        "With a train/val gap, adds or removes weight decay, dropout and augmentation one at a "
        "time in short runs and reports the train/val gap before and after each change."
    )
    needs = ("model", "datasets")
    hypotheses = ("overfitting",)
    measurement_type = RegularizationMeasurement
    thresholds_type = RegularizationThresholds
    settings_type = RegularizationSettings

    shrinkable = (
        Knob("train_samples", 200, group="probe_data"),
        Knob("val_samples", 200, group="probe_data"),
        Knob("max_epochs", 1, group="probe_epochs"),
        Knob("min_steps", 20, group="probe_steps"),
        Knob("seeds", 1),
    )

    def cost(self, size: CaseSize) -> Cost:
        """Worst case: paired seeds × (the baseline + weight decay, dropout, augmentation)."""
        from detective.core import budget

        st = self.settings
        f, s = budget.probe_run(size, st.train_samples, st.val_samples, st.max_epochs,
                                st.min_steps)
        runs = len(st.seeds) * 4
        return Cost(
            f * runs, s * runs, (budget.probe_sample(size, st.train_samples, st.val_samples),),
            conditional="only with a train–val gap",
        )

    def measure(self, ctx, progress) -> RegularizationMeasurement:
        import torch

        from detective.analysis.learning.recipe import probe_data
        from detective.workflows.experiments import (
            Budget,
            ExperimentError,
            base_recipe,
            model_fit,
            model_keywords,
            record,
            run_experiment,
            train_probe,
        )

        st = self.settings
        data = probe_data(ctx, st.train_samples, st.val_samples)
        fit = model_fit(ctx, data)
        if fit.gap <= st.plan_min_gap:
            return RegularizationMeasurement(fit.train_acc, fit.val_acc, (), (), "")
        base = base_recipe(ctx, st.max_epochs)
        changes: list[tuple[str, str]] = []
        skipped: list[str] = []
        changes.append(
            ("remove weight decay", "train.weight_decay=0")
            if base.weight_decay > 0
            else ("add weight decay", f"train.weight_decay={st.add_weight_decay}")
        )
        kw = model_keywords(ctx)
        probe_model = ctx.fresh_model()
        drops = [m for m in probe_model.modules() if isinstance(m, torch.nn.Dropout)]
        current = kw.get("dropout", drops[0].p if drops else None)
        if "dropout" in kw or drops:
            changes.append(
                ("remove dropout", "model.dropout=0.0")
                if current
                else ("add dropout", f"model.dropout={st.add_dropout}")
            )
        else:
            skipped.append("dropout: the model has no Dropout layer and its hook no dropout "
                           "keyword")
        side = min(data.x_fit.shape[-2:])
        shift = max(1, round(side * st.shift_fraction))
        changes.append(("add augmentation", f"aug.shift={shift}"))
        runs = len(st.seeds) * (1 + len(changes))
        budget = Budget(base.epochs, len(data.y_fit), len(data.y_val), runs, st.max_seconds)
        progress.log(f"regularization experiments ({budget.describe()})")
        per_run = st.max_seconds / runs
        baseline = [
            train_probe(ctx, base, data, s, progress.span(i / runs, (i + 1) / runs),
                        max_seconds=per_run, min_steps=st.min_steps)
            for i, s in enumerate(st.seeds)
        ]
        done = len(st.seeds)
        out, records = [], []
        for name, change in changes:
            span = progress.span(done / runs, (done + len(st.seeds)) / runs)
            try:
                run = run_experiment(
                    ctx, [change], name=name, seeds=st.seeds, max_epochs=st.max_epochs,
                    train_samples=st.train_samples, val_samples=st.val_samples,
                    max_seconds=per_run * len(st.seeds), min_steps=st.min_steps,
                    baseline=base, baseline_results=baseline, progress=span,
                )
            except ExperimentError as e:
                skipped.append(f"{name}: {e}")
                continue
            finally:
                done += len(st.seeds)
            e = run.experiment
            records.append(e)
            out.append(RegExperiment(name, change, e.before, e.after, e.gap_before or 0.0,
                                     e.gap_after or 0.0, e.verdict, e.duration_s))
        for e in records:  # only once every experiment finished: a cancel records nothing
            record(ctx, e)
        progress.update(1.0)
        return RegularizationMeasurement(
            fit.train_acc, fit.val_acc, tuple(out), tuple(skipped), budget.describe()
        )

    def judge(self, m: RegularizationMeasurement) -> Finding:
        th = self.thresholds
        gap = m.model_train_acc - m.model_val_acc
        metrics = [Metric("model train/val gap", gap)]
        if not m.experiments:
            why = (
                f"no train/val gap to regularize (train {m.model_train_acc:.1%}, val "
                f"{m.model_val_acc:.1%})"
                if gap <= th.max_gap
                else "no regularization lever could be varied"
            )
            return Finding(
                self.id,
                Verdict.PASS if gap <= th.max_gap else Verdict.NOT_APPLICABLE,
                f"Nothing to run: {why}.",
                metrics=tuple(metrics),
                notes=m.skipped,
            )
        table = Table(
            "one change per experiment (paired seeds, same budget)",
            ("experiment", "change", "val before", "val after", "gap before", "gap after",
             "val change"),
            tuple(
                (e.name, e.change, round(e.val_before, 4), round(e.val_after, 4),
                 round(e.gap_before, 4), round(e.gap_after, 4), e.outcome)
                for e in m.experiments
            ),
        )
        helpful = [
            e for e in m.experiments
            if e.outcome == "improved" and e.gap_before - e.gap_after >= th.min_shrink
        ]
        for e in m.experiments:
            metrics.append(Metric(f"gap change: {e.name}", e.gap_after - e.gap_before))
        notes = (m.budget, *m.skipped,
                 "Each experiment is in the session's experiment log; the case's own "
                 "augmentation is frozen to one draw in these probes.")
        if helpful:
            best = max(helpful, key=lambda e: e.gap_before - e.gap_after)
            return Finding(
                self.id,
                Verdict.WARN,
                f"{best.name.capitalize()} ({best.change}) shrinks the train/val gap "
                f"{best.gap_before:+.1%} → {best.gap_after:+.1%} and raises val accuracy "
                f"{best.val_before:.1%} → {best.val_after:.1%} beyond seed noise.",
                metrics=tuple(metrics),
                tables=(table,),
                notes=notes,
                effects=(
                    supports(
                        "overfitting",
                        Strength.MODERATE,
                        f"{best.name} shrinks the gap {best.gap_before:+.1%} → "
                        f"{best.gap_after:+.1%}, val {best.val_before:.1%} → {best.val_after:.1%}",
                    ),
                ),
                next_step=f"Adopt {best.change} in the real recipe and re-measure val.",
            )
        return Finding(
            self.id,
            Verdict.PASS,
            "No regularization change moves val accuracy beyond seed noise: "
            + "; ".join(f"{e.name} {e.val_before:.1%} → {e.val_after:.1%} ({e.outcome})"
                        for e in m.experiments)
            + ".",
            metrics=tuple(metrics),
            tables=(table,),
            notes=notes,
        )
