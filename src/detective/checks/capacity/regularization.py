"""Regularization experiments: with a train/val gap, add or remove weight decay, dropout and
augmentation, one at a time, and measure the probe's train/val gap before and after. Each change
is recorded in the session's experiment log.

Regularization fights memorisation, so the experiments run only when the gap is one: the
baseline's seed-0 run (the capacity check's base run, trained once) must score its held-out
train images about as low as val. When held-out train images score far above val, the gap is a
train/val difference (a shift, a shortcut) that no regularizer addresses, and the check says so
instead of spending its runs. A change whose first seed does not raise val stops there: with two
seeds it can no longer come out "improved" (see `_hopeless`)."""

from __future__ import annotations

import math
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
    # ... and only while the base run's held-out train images do not beat val by more than this
    # (capacity's shift_gap): above it the gap is a train/val difference, not memorisation.
    plan_shift_gap: float = 0.10


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
    seeds: int = 0  # seeds run (fewer than asked: stopped after a first seed without gain)


@dataclass(frozen=True)
class RegularizationMeasurement:
    model_train_acc: float
    model_val_acc: float
    experiments: tuple[RegExperiment, ...]
    skipped: tuple[str, ...]  # levers this case does not offer, and why
    budget: str
    # The seed-0 baseline run: held-out train images vs val. nan when it was not trained.
    base_heldout_acc: float = math.nan
    base_val_acc: float = math.nan
    # The plan stopped there: held-out train images beat val by more than plan_shift_gap.
    not_memorisation: bool = False


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
        per_run = st.max_seconds / runs
        # The seed-0 baseline first (the capacity check's base run when the settings coincide):
        # it says whether the gap is memorisation at all.
        first = train_probe(ctx, base, data, st.seeds[0], progress.span(0, 1 / runs),
                            max_seconds=per_run, min_steps=st.min_steps)
        if first.heldout_acc - first.val_acc > st.plan_shift_gap:  # nan (no held-out): run
            progress.update(1.0)
            return RegularizationMeasurement(
                fit.train_acc, fit.val_acc, (), tuple(skipped), "", first.heldout_acc,
                first.val_acc, not_memorisation=True,
            )
        progress.log(f"regularization experiments ({budget.describe()})")
        baseline = [first] + [
            train_probe(ctx, base, data, s, progress.span(i / runs, (i + 1) / runs),
                        max_seconds=per_run, min_steps=st.min_steps)
            for i, s in enumerate(st.seeds) if i > 0
        ]
        done = len(st.seeds)
        out, records = [], []
        for name, change in changes:
            span = progress.span(done / runs, (done + len(st.seeds)) / runs)
            try:
                run = _experiment(ctx, st, base, baseline, name, change, per_run, span)
            except ExperimentError as err:
                skipped.append(f"{name}: {err}")
                continue
            finally:
                done += len(st.seeds)
            e = run.experiment
            records.append(e)
            out.append(RegExperiment(name, change, e.before, e.after, e.gap_before or 0.0,
                                     e.gap_after or 0.0, e.verdict, e.duration_s,
                                     len(e.seeds)))
        for e in records:  # only once every experiment finished: a cancel records nothing
            record(ctx, e)
        progress.update(1.0)
        return RegularizationMeasurement(
            fit.train_acc, fit.val_acc, tuple(out), tuple(skipped), budget.describe(),
            first.heldout_acc, first.val_acc,
        )

    def judge(self, m: RegularizationMeasurement) -> Finding:
        th = self.thresholds
        gap = m.model_train_acc - m.model_val_acc
        metrics = [Metric("model train/val gap", gap)]
        if not m.experiments:
            shift = m.base_heldout_acc - m.base_val_acc
            why = (
                f"no train/val gap to regularize (train {m.model_train_acc:.1%}, val "
                f"{m.model_val_acc:.1%})"
                if gap <= th.max_gap
                else f"the train/val gap ({gap:+.1%}) is not memorisation: a short run scores "
                f"train images it never saw {m.base_heldout_acc:.1%} and val "
                f"{m.base_val_acc:.1%} ({shift:+.1%}), a train/val difference no regularizer "
                "closes"
                if m.not_memorisation
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


def _experiment(ctx, st: RegularizationSettings, base, baseline, name: str, change: str,  # noqa: ANN001, PLR0913
                per_run: float, progress):  # noqa: ANN001, ANN202
    """One change over the seeds, paired with the baseline runs. With two seeds a change whose
    first seed does not raise val stops there (`_hopeless`): it could not come out improved."""
    from dataclasses import replace

    from detective.workflows.experiments import run_experiment

    def run(seeds: tuple[int, ...]):  # noqa: ANN202
        return run_experiment(
            ctx, [change], name=name, seeds=seeds, max_epochs=st.max_epochs,
            train_samples=st.train_samples, val_samples=st.val_samples,
            max_seconds=per_run * len(seeds), min_steps=st.min_steps,
            baseline=base, baseline_results=baseline[: len(seeds)], progress=progress,
        )

    if len(st.seeds) == 2:
        first = run(st.seeds[:1])
        if _hopeless(first.after[0].val_acc - first.before[0].val_acc):
            e = first.experiment
            note = (f"stopped after seed {st.seeds[0]}: val did not rise "
                    f"({e.before:.1%} → {e.after:.1%}), so the pair could not come out improved")
            return replace(first, experiment=replace(e, notes=f"{e.notes}; {note}"))
    return run(st.seeds)  # seed 0's changed run is reused from the cache


def _hopeless(first_delta: float) -> bool:
    """With two seeds, "improved" needs mean(d) > 2·max(binomial noise, stdev(d)/√2) ≥ |d1 − d0|.
    If d0 ≤ 0, either d1 ≤ d0 (mean ≤ 0) or (d0 + d1)/2 > d1 − d0, i.e. d1 < 3·d0 ≤ d0: both
    impossible. So a first seed without gain settles it and the second run is saved."""
    return not first_delta > 0
