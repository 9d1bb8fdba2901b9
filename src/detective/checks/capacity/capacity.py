"""Capacity: would more parameters or more data help? Short training runs from scratch with less
and more capacity (a width-like keyword of the case's model hook, or a frozen backbone) and a
learning curve on 25/50/100 % of the training sample. Probes run only when the user's model shows
a symptom (low train accuracy or a train/val gap); otherwise the check costs two forward passes.
The memorisation probes (less capacity, less data) run only when the base run's gap is one: when
it scores train images it never saw far above val, the gap is a train/val difference and the
check says so after that one run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from detective.core.budget import CaseSize, Cost, Knob
from detective.core.findings import Finding, Metric, Strength, Table, Verdict, refutes, supports
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

WIDTH_KEYWORDS = ("width", "base_width", "channels", "hidden", "hidden_dim", "hidden_size")


@dataclass(frozen=True)
class CapacityThresholds:
    low_train_acc: float = 0.95  # below this the model may underfit: probe capacity
    max_gap: float = 0.08  # train − val accuracy above this may be overfitting: probe data
    min_gain: float = 0.05  # a probe difference smaller than this (or 2× noise) is no signal
    shift_gap: float = 0.10  # held-out train images beat val by this: a shift, not overfitting


@dataclass(frozen=True)
class CapacitySettings:
    """How much capacity_probe measures (read by measure only)."""

    width_factor: int = 4
    train_samples: int = 1000
    val_samples: int = 1000
    max_epochs: int = 5
    min_steps: int = 60
    max_seconds: float = 300.0  # a guard against a huge case; budgets are in steps
    # Which probes to run (a measurement plan, not a verdict): capacity probes below this train
    # accuracy, data probes above this train - val gap. judge applies its own thresholds.
    plan_low_train_acc: float = 0.95
    plan_max_gap: float = 0.08
    # ... and the memorisation probes only while the base run's held-out train images do not
    # beat val by more than this (a shift, not overfitting: judge's shift_gap decides so).
    plan_shift_gap: float = 0.10


@dataclass(frozen=True)
class Probe:
    label: str  # "width=8", "25% data", "frozen backbone"
    lever: str  # "capacity" | "data"
    parameters: int
    train_fraction: float
    train_acc: float
    heldout_acc: float
    val_acc: float
    seconds: float
    stopped: bool = False  # the wall-time guard cut it short


@dataclass(frozen=True)
class CapacityMeasurement:
    model_train_acc: float
    model_val_acc: float
    train_n: int
    heldout_n: int
    val_n: int
    capacity_lever: str  # "width" keyword name, "freeze", or "" when none
    base_label: str
    probes: tuple[Probe, ...]  # base first
    budget: str
    # The base run's held-out train images beat val by more than plan_shift_gap: the less-
    # capacity and less-data probes were not run.
    shift_stop: bool = False


@register
class Capacity(Check[CapacityMeasurement]):
    id = "capacity"
    title = "Capacity and data probes"
    stage = Stage.CAPACITY
    description = (
        "When the model underfits or shows a train/val gap, trains short runs from scratch with "
        "less and more capacity and on 25/50/100 % of the training sample: do more parameters or "
        "more data help?"
    )
    needs = ("model", "datasets")
    hypotheses = ("underfitting", "overfitting")
    measurement_type = CapacityMeasurement
    thresholds_type = CapacityThresholds
    settings_type = CapacitySettings

    shrinkable = (
        Knob("train_samples", 200, group="probe_data"),
        Knob("val_samples", 200, group="probe_data"),
        Knob("max_epochs", 1, group="probe_epochs"),
        Knob("min_steps", 20, group="probe_steps"),
    )

    def cost(self, size: CaseSize) -> Cost:
        """Worst case of the overfitting plan: the base run, a smaller model, 25 % and 50 %
        of the data (an underfitting plan trains a wider model instead)."""
        from detective.core import budget

        st = self.settings
        fwd = steps = 0.0
        for fraction in (1.0, 1.0, 0.25, 0.5):
            f, s = budget.probe_run(size, st.train_samples, st.val_samples, st.max_epochs,
                                    st.min_steps, fraction)
            fwd, steps = fwd + f, steps + s
        return Cost(
            fwd, steps, (budget.probe_sample(size, st.train_samples, st.val_samples),),
            conditional="only with a train–val gap or low train accuracy",
        )

    def measure(self, ctx, progress) -> CapacityMeasurement:
        from detective.analysis.learning.recipe import probe_data
        from detective.workflows.experiments import (
            Budget,
            base_recipe,
            model_fit,
            model_keywords,
            train_probe,
        )

        st = self.settings
        data = probe_data(ctx, st.train_samples, st.val_samples)
        fit = model_fit(ctx, data)
        underfit = fit.train_acc < st.plan_low_train_acc
        overfit = fit.gap > st.plan_max_gap
        base = base_recipe(ctx, st.max_epochs)
        kw = model_keywords(ctx)
        width_kw = next(
            (k for k in WIDTH_KEYWORDS if isinstance(kw.get(k), int) and kw[k] > 0), ""
        )
        lever = width_kw or "freeze"
        plan: list[tuple[str, str, object, float]] = []  # (label, lever, recipe, fraction)
        memorisation: list[tuple[str, str, object, float]] = []  # only if the gap is one
        # The base run is trained only when a probe is compared with it: an underfit model whose
        # hook has no width keyword and no gap has nothing to compare (the judge says so).
        if (underfit and width_kw) or overfit:
            base_label = f"{width_kw}={kw[width_kw]}" if width_kw else "as given"
            plan.append((base_label, "capacity", base, 1.0))
        else:
            base_label = ""
        if underfit and width_kw:
            bigger = base.apply(_change(width_kw, kw[width_kw] * st.width_factor), ctx)
            plan.append((f"{width_kw}={kw[width_kw] * st.width_factor}", "capacity", bigger,
                         1.0))
        if overfit:
            if width_kw:
                smaller = base.apply(
                    _change(width_kw, max(1, kw[width_kw] // st.width_factor)), ctx
                )
                memorisation.append((f"{width_kw}={max(1, kw[width_kw] // st.width_factor)}",
                                     "capacity", smaller, 1.0))
            else:
                memorisation.append(("frozen backbone", "capacity", base.apply(_change(
                    "freeze", "backbone"), ctx), 1.0))
            memorisation += [("25% data", "data", base, 0.25), ("50% data", "data", base, 0.5)]
        plan += memorisation
        budget = Budget(base.epochs, len(data.y_fit), len(data.y_val), len(plan), st.max_seconds)
        if plan:
            progress.log(f"capacity probes ({budget.describe()}, ≥{st.min_steps} steps each)")
        probes: list[Probe] = []
        per_run = st.max_seconds / max(1, len(plan))
        shift_stop = False
        for i, (label, lev, recipe, fraction) in enumerate(plan):
            tail = i >= len(plan) - len(memorisation)
            if tail and probes and _shifted(probes[0], st.plan_shift_gap):
                shift_stop = True  # a train/val difference: less capacity or data cannot say more
                continue
            r = train_probe(
                ctx,
                recipe,  # type: ignore[arg-type]
                data,
                ctx.options.seed,
                progress.span(i / len(plan), (i + 1) / len(plan)),
                fraction=fraction,
                max_seconds=per_run,
                min_steps=st.min_steps,
            )
            probes.append(
                Probe(label, lev, r.parameters, fraction, r.train_acc, r.heldout_acc, r.val_acc,
                      round(r.seconds, 3), r.stopped_early)
            )
        progress.update(1.0)
        return CapacityMeasurement(
            fit.train_acc,
            fit.val_acc,
            len(data.y_fit),
            len(data.y_held),
            len(data.y_val),
            lever if plan else "",
            base_label,
            tuple(probes),
            budget.describe() if plan else "",
            shift_stop,
        )

    def judge(self, m: CapacityMeasurement) -> Finding:
        from detective.workflows.experiments import binomial_noise

        th = self.thresholds
        metrics = [
            Metric("model train accuracy", m.model_train_acc),
            Metric("model val accuracy", m.model_val_acc),
            Metric("train/val gap", m.model_train_acc - m.model_val_acc),
        ]
        if not m.probes and m.model_train_acc < th.low_train_acc:
            gap = m.model_train_acc - m.model_val_acc
            return Finding(
                self.id,
                Verdict.WARN,
                f"train accuracy is low ({m.model_train_acc:.1%}); the model hook has no "
                "width-like keyword, so capacity was not probed.",
                metrics=tuple(metrics),
                effects=(
                    supports("underfitting", Strength.MODERATE,
                             f"train accuracy {m.model_train_acc:.1%} (no width keyword to "
                             "probe capacity)"),
                    refutes("overfitting", Strength.MODERATE, f"train/val gap {gap:+.1%}"),
                ),
            )
        if not m.probes:
            return Finding(
                self.id,
                Verdict.PASS,
                f"No capacity symptom: train accuracy {m.model_train_acc:.1%}, val "
                f"{m.model_val_acc:.1%} (gap {m.model_train_acc - m.model_val_acc:+.1%}); no "
                "probe needed.",
                metrics=tuple(metrics),
                effects=(
                    refutes(
                        "underfitting",
                        Strength.MODERATE,
                        f"train accuracy {m.model_train_acc:.1%}",
                    ),
                    refutes(
                        "overfitting",
                        Strength.MODERATE,
                        f"train/val gap {m.model_train_acc - m.model_val_acc:+.1%}",
                    ),
                ),
            )
        base = m.probes[0]
        table = Table(
            "short runs from scratch (same seed and step budget)",
            ("run", "lever", "parameters", "train share", "train acc", "held-out train acc",
             "val acc", "seconds"),
            tuple(
                (p.label, p.lever, p.parameters, p.train_fraction, round(p.train_acc, 4),
                 None if math.isnan(p.heldout_acc) else round(p.heldout_acc, 4),
                 round(p.val_acc, 4), p.seconds)
                for p in m.probes
            ),
        )
        noise = 2 * binomial_noise(base.val_acc, m.val_n)
        need = max(th.min_gain, noise)
        effects = []
        lines = []
        fail = False
        # Underfitting: does a wider model fit the training images clearly better?
        wider = [p for p in m.probes[1:] if p.lever == "capacity" and p.parameters >
                 base.parameters]
        if m.model_train_acc < th.low_train_acc:
            if wider:
                w = wider[0]
                gain = w.train_acc - base.train_acc
                metrics.append(Metric("train accuracy gained by more capacity", gain))
                if gain > need and w.val_acc >= base.val_acc - noise:
                    fail = True
                    effects.append(supports(
                        "underfitting", Strength.STRONG,
                        f"train accuracy {m.model_train_acc:.1%}; a {w.label} run reaches "
                        f"{w.train_acc:.1%} train / {w.val_acc:.1%} val vs {base.train_acc:.1%} / "
                        f"{base.val_acc:.1%} at {base.label}",
                    ))
                    lines.append(f"more parameters help: {base.label} → {w.label} raises train "
                                 f"accuracy {base.train_acc:.1%} → {w.train_acc:.1%}")
                else:
                    effects.append(supports(
                        "underfitting", Strength.MODERATE,
                        f"train accuracy {m.model_train_acc:.1%}, but {w.label} does not fit "
                        f"better ({w.train_acc:.1%} vs {base.train_acc:.1%})",
                    ))
                    lines.append(f"train accuracy is low ({m.model_train_acc:.1%}) but more "
                                 f"parameters do not help ({w.label}: {w.train_acc:.1%} vs "
                                 f"{base.train_acc:.1%}): look at optimisation")
            else:
                effects.append(supports(
                    "underfitting", Strength.MODERATE,
                    f"train accuracy {m.model_train_acc:.1%} (no width keyword to probe capacity)",
                ))
                lines.append(f"train accuracy is low ({m.model_train_acc:.1%}); the model hook "
                             "has no width-like keyword, so capacity was not probed")
        else:
            effects.append(refutes("underfitting", Strength.MODERATE,
                                   f"train accuracy {m.model_train_acc:.1%}"))
        # Overfitting: does more data close the gap, and is val from the train distribution?
        curve = {p.train_fraction: p for p in m.probes if p.lever == "data"}
        gap = m.model_train_acc - m.model_val_acc
        if gap > th.max_gap and (curve or m.shift_stop):
            quarter = curve.get(0.25)
            half = curve.get(0.5)
            data_gain = base.val_acc - (half.val_acc if half else base.val_acc)
            data_gain4 = base.val_acc - (quarter.val_acc if quarter else base.val_acc)
            if curve:
                metrics += [Metric("val accuracy gained from 50% → 100% of the train sample",
                                   data_gain),
                            Metric("val accuracy gained from 25% → 100% of the train sample",
                                   data_gain4)]
            shifted = _shifted(base, th.shift_gap)
            probe_gap = base.train_acc - base.val_acc
            helps = data_gain > noise and data_gain4 > need
            if shifted:
                effects.append(refutes(
                    "overfitting", Strength.MODERATE,
                    f"unseen images of the train split score {base.heldout_acc:.1%}, val "
                    f"{base.val_acc:.1%}: the gap is a train/val difference, not memorisation",
                ))
                lines.append(f"the train/val gap ({gap:+.1%}) is not overfitting: held-out train "
                             f"images score {base.heldout_acc:.1%} vs val {base.val_acc:.1%}")
                if m.shift_stop:
                    lines.append("so less capacity and less data were not probed")
            elif not curve:  # a judge's shift_gap above the plan's: the probes were not run
                effects.append(supports(
                    "overfitting", Strength.WEAK,
                    f"train/val gap {gap:+.1%}; held-out train images score "
                    f"{base.heldout_acc:.1%} vs val {base.val_acc:.1%}, so the learning curve "
                    "was not measured",
                ))
                lines.append(f"train/val gap {gap:+.1%}; the learning curve was not measured "
                             f"(held-out train images {base.heldout_acc:.1%} vs val "
                             f"{base.val_acc:.1%} looked like a shift to the plan)")
            elif helps and probe_gap > th.max_gap:
                fail = True
                effects.append(supports(
                    "overfitting", Strength.STRONG,
                    f"train/val gap {gap:+.1%}; val accuracy grows with data "
                    f"({quarter.val_acc if quarter else math.nan:.1%} → "
                    f"{half.val_acc if half else math.nan:.1%} → {base.val_acc:.1%} on "
                    "25/50/100 %) while train stays high",
                ))
                lines.append(f"more data helps: val accuracy "
                             f"{quarter.val_acc if quarter else math.nan:.1%} → "
                             f"{half.val_acc if half else math.nan:.1%} → {base.val_acc:.1%} on "
                             f"25/50/100 % of {m.train_n} images (gap {gap:+.1%})")
            else:
                effects.append(supports(
                    "overfitting", Strength.MODERATE,
                    f"train/val gap {gap:+.1%}, but the learning curve is flat (val "
                    f"{base.val_acc - data_gain4:.1%} → {base.val_acc:.1%})",
                ))
                lines.append(f"train/val gap {gap:+.1%}, but more data barely moves val "
                             f"({data_gain4:+.1%} from 25 % to 100 %)")
            smaller = [p for p in m.probes[1:] if p.lever == "capacity" and p.parameters <
                       base.parameters]
            if smaller:
                s = smaller[0]
                lines.append(f"less capacity ({s.label}): gap {s.train_acc - s.val_acc:+.1%} vs "
                             f"{probe_gap:+.1%}, val {s.val_acc:.1%} vs {base.val_acc:.1%}")
        else:
            effects.append(refutes("overfitting", Strength.MODERATE, f"train/val gap {gap:+.1%}"))
        notes = [m.budget, "Probes train fresh models on tensors loaded once (augmentation "
                 "frozen to one draw) with the case's optimizer/loss; the user's model is not "
                 "touched."]
        if any(p.stopped for p in m.probes):  # unequal runs: no strong conclusion
            fail = False
            effects = [replace(e, strength=Strength.MODERATE) if e.strength is Strength.STRONG
                       else e for e in effects]
            notes.append("The wall-time guard cut at least one probe short; the comparison is "
                         "not conclusive.")
        verdict = Verdict.FAIL if fail else Verdict.WARN
        return Finding(
            self.id,
            verdict,
            "; ".join(lines) + ".",
            metrics=tuple(metrics),
            tables=(table,),
            effects=tuple(effects),
            notes=tuple(notes),
            next_step=(
                "Give the model more capacity (or train longer) before tuning elsewhere."
                if any(e.hypothesis == "underfitting" and e.strength is Strength.STRONG
                       for e in effects)
                else "Get more training data, or regularize (see the regularization check)."
                if fail
                else ""
            ),
        )


def _change(key: str, value: object):  # noqa: ANN202
    from detective.workflows.experiments import Change, Target

    return Change(Target.MODEL, key, value)


def _shifted(base: Probe, shift_gap: float) -> bool:
    """The base run scores train images it never saw above val by more than `shift_gap`: the
    gap is a train/val difference (a shift, a shortcut), not memorisation. False without
    held-out items."""
    return not math.isnan(base.heldout_acc) and base.heldout_acc - base.val_acc > shift_gap
