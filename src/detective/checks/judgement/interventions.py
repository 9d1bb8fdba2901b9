"""Judgement by intervention: for every cause the other checks found evidence for, remove it the
cheapest way and re-measure the metric the symptom is about.

Evaluation-side interventions (seconds, no retraining) run first, then training-side ones (short
paired re-training over seeds) while the budget lasts. The ledger supports a hypothesis only
through an outcome here that RECOVERS: significant after Holm's correction over the run's tests,
in the predicted direction, and at least `min_effect` large. Hypotheses that are descriptions
(slice_failure, overfitting, distribution_shift) have no intervention and are never tested.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from detective.core.budget import Knob
from detective.core.findings import (
    Direction,
    Finding,
    InterventionOutcome,
    Metric,
    Moved,
    Side,
    Strength,
    Table,
    refutes,
    supports,
)
from detective.core.hypotheses import VOCABULARY, Stage
from detective.core.registry import Check, register
from detective.workflows.interventions import MIN_EFFECT

if TYPE_CHECKING:
    from detective.core.budget import CaseSize, Cost
    from detective.core.context import RunContext
    from detective.core.progress import Progress
    from detective.workflows.interventions import Intervention

CHECK_ID = "interventions"


@dataclass(frozen=True)
class InterventionSettings:
    sample: int = 2000  # val items per evaluation-side intervention, at most
    max_seconds: float = 300.0  # training-side interventions stop starting after this
    seeds: int = 3  # paired short runs per training-side intervention
    # Stop retraining once proven causes recover this share of the gap together.
    explained_share: float = 0.9
    # Training-side interventions the plan reserves room for (paired short runs over `seeds`);
    # --budget lowers it to 0 when they cannot fit, and the training side then gets what is left.
    train_reserve: int = 1
    # The level (Bonferroni over the run's plan) at which a proven cause makes retraining for a
    # symptom it produces moot. A setting, not a threshold: it decides what is measured.
    moot_alpha: float = 0.05


# Val passes the evaluation side is planned for: the predictions before (one pass, shared by
# every intervention) and after each of the ~3 interventions a run's evidence typically calls
# for (the scale case's and the diagnosis benchmark's runs measure 1-4).
EVAL_PASSES = 4


@dataclass(frozen=True)
class InterventionThresholds:
    alpha: float = 0.05  # family-wise, Holm-corrected over the run's interventions
    min_effect: float = MIN_EFFECT  # the smallest change in accuracy an engineer acts on
    # A recovering change removes a consequence when the consequence's marker was present in
    # the baseline runs (the activations check's moderate share of dead units) and the change
    # at least halves it.
    marker_present: float = 0.25
    marker_removed: float = 0.5


@dataclass(frozen=True)
class Candidate:
    hypothesis: str
    support: float  # summed evidence weight for, minus against
    checks: tuple[str, ...]  # the checks whose evidence made it a candidate


@dataclass(frozen=True)
class Skipped:
    label: str
    hypothesis: str
    reason: str


@dataclass(frozen=True)
class InterventionsMeasurement:
    candidates: tuple[Candidate, ...]
    outcomes: tuple[InterventionOutcome, ...]
    skipped: tuple[Skipped, ...]
    descriptions: tuple[str, ...]  # hypotheses with evidence but no intervention
    reference: float | None  # the user's model's train accuracy: the top of the gap
    chance: float  # majority-class share of val: the bottom of what accuracy means
    seconds: float = 0.0


def candidates(findings: tuple[Finding, ...]) -> tuple[list[Candidate], list[str]]:
    """Hypotheses whose evidence supports them more than it refutes them, strongest first;
    and the descriptions among them (no intervention exists)."""
    support: dict[str, float] = {}
    checks: dict[str, list[str]] = {}
    for f in findings:
        if f.check_id == CHECK_ID or f.verdict.value in ("error", "not_applicable"):
            continue
        for e in f.effects:
            sign = 1.0 if e.direction is Direction.SUPPORTS else -1.0
            support[e.hypothesis] = support.get(e.hypothesis, 0.0) + sign * e.strength.weight
            if e.direction is Direction.SUPPORTS:
                checks.setdefault(e.hypothesis, []).append(f.check_id)
    found = [
        Candidate(h, s, tuple(dict.fromkeys(checks[h])))
        for h, s in support.items()
        if s > 0 and h in checks
    ]
    found.sort(key=lambda c: -c.support)
    descriptions = [c.hypothesis for c in found if _is_description(c.hypothesis)]
    return [c for c in found if not _is_description(c.hypothesis)], descriptions


def _is_description(hypothesis: str) -> bool:
    info = VOCABULARY.get(hypothesis)
    return info is None or info.description  # user hypotheses have no intervention either


def catalogue() -> tuple[Intervention, ...]:
    """Every intervention the judgement may run, cheapest side first."""
    from detective.workflows.interventions import INTERVENTIONS

    found = [i for i in INTERVENTIONS if i.auto]
    try:
        from detective.workflows.training_interventions import TRAIN_INTERVENTIONS
    except ImportError:  # pragma: no cover - the training side is optional in a stripped build
        TRAIN_INTERVENTIONS = ()  # noqa: N806
    return (*found, *TRAIN_INTERVENTIONS)


def gap_share(o: InterventionOutcome, reference: float | None, chance: float) -> float | None:
    """The share of the symptom's gap the change recovers. Rising metric: of the way from the
    metric to the model's train accuracy, when train is above it by at least MIN_EFFECT (a
    train–val gap an engineer would act on), else to 100 %. Falling metric (leakage, a
    shortcut): of the accuracy above chance that depended on the cause."""
    if o.effect is not Moved.RECOVERS:
        return None
    if o.predicted > 0:
        # A train accuracy a hair above the metric is no gap: taking it as the top would make
        # any change that passes it "recover 100 %" on noise between seeds.
        top = reference if reference is not None and reference >= o.before + MIN_EFFECT else 1.0
        gap = max(top, o.after) - o.before
    else:
        gap = o.before - chance
    return None if gap <= 1e-9 else max(0.0, min(1.0, abs(o.delta) / gap))


def _group(it: Intervention) -> int:
    if it.side is not Side.TRAIN:
        return 0
    return 2 if getattr(it, "generic", False) else 1


def _explained(
    outcomes: list[InterventionOutcome], reference: float | None, chance: float
) -> float:
    """The share of the gap the recovering outcomes so far explain (the best per hypothesis,
    summed, at most 1): the same share the ledger ranks by."""
    best: dict[str, float] = {}
    for o in outcomes:
        share = gap_share(o, reference, chance)
        if share is not None:
            best[o.hypothesis] = max(best.get(o.hypothesis, 0.0), share)
    return min(1.0, sum(best.values()))


def _proven_cause_of(
    hypothesis: str, outcomes: list[InterventionOutcome], reference: float | None, chance: float,
    alpha: float,
) -> str:
    """Why retraining for `hypothesis` is moot ("" when it is not): a cause known to produce it
    (hypotheses.CAUSED_BY) is already proven and explains at least EXPLAINS_SHARE of the gap.
    Proven at `alpha` (Bonferroni over the plan: stricter than the Holm correction the judgement
    applies later, so the cause stays supported)."""
    from detective.core.hypotheses import CAUSED_BY
    from detective.core.ledger import EXPLAINS_SHARE

    causes = CAUSED_BY.get(hypothesis, frozenset())
    for o in outcomes:
        share = gap_share(o, reference, chance)
        if (o.hypothesis in causes and share is not None and share >= EXPLAINS_SHARE
                and o.p_value < alpha):
            return (f"{o.hypothesis}, which produces {hypothesis}, is proven and recovers "
                    f"{share:.0%} of the gap: it ranks first whatever retraining finds")
    return ""


def holm(outcomes: list[InterventionOutcome], alpha: float) -> list[bool]:
    """Holm's step-down: which outcomes stay significant with the family-wise error at alpha."""
    order = sorted(range(len(outcomes)), key=lambda i: outcomes[i].p_value)
    keep = [False] * len(outcomes)
    m = len(outcomes)
    for rank, i in enumerate(order):
        if outcomes[i].p_value > alpha / (m - rank):
            break
        keep[i] = True
    return keep


@register
class Interventions(Check[InterventionsMeasurement]):
    id = CHECK_ID
    title = "Interventions on the suspected causes"
    stage = Stage.JUDGEMENT
    description = (
        "For each cause with evidence: remove it (evaluation side first, then short paired "
        "re-training) and re-measure val accuracy; a cause is supported only when this moves it."
    )
    needs = ("model", "datasets", "split:val")
    hypotheses = tuple(h for h, info in VOCABULARY.items() if not info.description)
    measurement_type = InterventionsMeasurement
    thresholds_type = InterventionThresholds
    settings_type = InterventionSettings
    reads_findings = True  # the engine hands it the findings of this run so far
    # A diverged checkpoint (NaN logits) leaves the recipe to judge: the training side runs
    # (the user's model predicts nothing, so the short runs decide), the evaluation side is
    # skipped with a reason.
    needs_trained_model = False

    # The evaluation side's val sample (the paired tests keep their power well below 2,000:
    # a planted cause moves hundreds of the 500 items), and the training side's reservation.
    shrinkable = (Knob("sample", 500), Knob("train_reserve", 0))

    def cost(self, size: CaseSize) -> Cost:
        """The judgement's reserved share of the budget, planned up front so that the checks
        before it leave it room: the evaluation side (the train accuracy at the top of the gap
        and EVAL_PASSES val passes over the sample) and `train_reserve` training-side
        interventions (`seeds` paired short runs each). It is never skipped to fit
        (budget.KEEP); its training side stops when the budget is spent."""
        from detective.core.budget import Cost, probe_run
        from detective.workflows.training_interventions import (
            MAX_EPOCHS,
            MIN_STEPS,
            TRAIN_SAMPLES,
            VAL_SAMPLES,
        )

        st = self.settings
        val, train = min(st.sample, size.val_n), min(st.sample, size.train_n)
        fwd, steps = probe_run(size, TRAIN_SAMPLES, VAL_SAMPLES, MAX_EPOCHS, MIN_STEPS)
        runs = 2 * st.seeds * st.train_reserve
        return Cost(forward_items=train + EVAL_PASSES * val + runs * fwd,
                    train_steps=runs * steps)  # fmt: skip

    def measure(self, ctx: RunContext, progress: Progress) -> InterventionsMeasurement:
        from detective.workflows.interventions import InterventionError, run_intervention

        st = self.settings
        if ctx.budget is not None:  # --budget: the training side gets what the checks left
            st = replace(st, max_seconds=min(st.max_seconds, ctx.budget.seconds_remaining()))
        start = time.monotonic()
        found, descriptions = candidates(ctx.prior_findings)
        # Cheapest first: evaluation side, then specific training-side changes, then the
        # generic ones (more capacity/training), each group by the strength of the evidence.
        plan = [
            (c, i) for group in (0, 1, 2) for c in found for i in catalogue()
            if i.hypothesis == c.hypothesis and _group(i) == group
        ]
        outcomes: list[InterventionOutcome] = []
        skipped: list[Skipped] = []
        proven: set[str] = set()
        reference, chance = _reference(ctx, st.sample) if plan else (None, 0.0)
        unusable = _model_unusable(ctx.prior_findings)
        for n, (c, it) in enumerate(plan):
            progress.check_cancelled()
            progress.update(n / len(plan), message=f"{it.label} ({c.hypothesis})")
            if c.hypothesis in proven:
                continue  # one recovering intervention proves a cause; save the budget
            if it.side is Side.EVAL and unusable:
                skipped.append(Skipped(it.label, c.hypothesis, unusable))
                continue
            if it.side is Side.TRAIN and time.monotonic() - start > st.max_seconds:
                skipped.append(Skipped(
                    it.label, c.hypothesis,
                    f"the training side's {st.max_seconds:.0f} s were spent; {_how_to_run(it)}"))
                continue
            spent = _over_budget(ctx, it, st, first=not any(o.side is it.side for o in outcomes))
            if spent:
                skipped.append(Skipped(it.label, c.hypothesis, spent))
                continue
            cause = _proven_cause_of(
                c.hypothesis, outcomes, reference, chance, st.moot_alpha / len(plan)
            ) if it.side is Side.TRAIN else ""
            if cause:
                # The ledger ranks the proven cause above this symptom of it whatever a retraining
                # finds, so the retraining could only confirm a consequence.
                skipped.append(Skipped(it.label, c.hypothesis, cause))
                continue
            explained = _explained(outcomes, reference, chance)
            if it.side is Side.TRAIN and explained >= st.explained_share:
                # Proven causes already recover the gap: retraining for another would only
                # find what they produce (an underfit, a slow loss), at the budget's expense.
                skipped.append(Skipped(it.label, c.hypothesis,
                                       f"the gap is already explained ({explained:.0%} "
                                       "recovered by the causes above)"))
                continue
            t0 = time.monotonic()
            try:
                if it.side is Side.EVAL:
                    result = run_intervention(ctx, it, sample=st.sample)
                else:
                    from detective.workflows.training_interventions import (
                        TrainingIntervention,
                        run_training_intervention,
                    )

                    assert isinstance(it, TrainingIntervention)

                    left = st.max_seconds - (time.monotonic() - start)
                    result = run_training_intervention(
                        ctx, it, seeds=st.seeds, budget_s=left,
                        progress=progress.span(n / len(plan), (n + 1) / len(plan)),
                    )
            except InterventionError as e:
                skipped.append(Skipped(it.label, c.hypothesis, str(e)))
                continue
            outcome = result.to_outcome(cost_s=time.monotonic() - t0)
            progress.log(f"{it.label}: {outcome.sentence}")
            outcomes.append(outcome)
            if outcome.effect is Moved.RECOVERS:
                proven.add(c.hypothesis)
        progress.update(1.0)
        return InterventionsMeasurement(
            tuple(found), tuple(outcomes), tuple(skipped), tuple(descriptions), reference, chance,
            round(time.monotonic() - start, 3),
        )

    def judge(self, m: InterventionsMeasurement) -> Finding:
        th = self.thresholds
        judged = self.judged(m)
        effects = []
        for o in judged:
            if o.effect is Moved.RECOVERS:
                effects.append(supports(o.hypothesis, Strength.STRONG, o.sentence))
            elif _rules_out(o, th.min_effect):
                effects.append(refutes(o.hypothesis, Strength.MODERATE, o.sentence))
        metrics = (
            Metric("candidate causes", len(m.candidates)),
            Metric("interventions measured", len(judged)),
            Metric("interventions that recover the metric",
                   sum(o.effect is Moved.RECOVERS for o in judged)),
            *((Metric("train accuracy (top of the gap)", m.reference, "share"),)
              if m.reference is not None else ()),
            Metric("seconds", m.seconds, "s"),
        )
        rows = tuple(
            (o.hypothesis, o.label, round(o.before, 4), round(o.after, 4),
             f"{o.ci_low * 100:+.1f} … {o.ci_high * 100:+.1f}", float(f"{o.p_value:.3g}"),
             o.effect.value, None if o.gap_share is None else round(o.gap_share, 3),
             round(o.cost_s, 1))
            for o in judged
        ) + tuple((s.hypothesis, s.label, None, None, "", None, "not run: " + s.reason, None, 0.0)
                  for s in m.skipped)
        table = Table(
            "interventions",
            ("hypothesis", "change", "before", "after", "95 % CI of Δ (points)", "p",
             "effect", "gap share", "seconds"),
            rows,
            key="interventions",
        )
        proofs = [o for o in judged if o.effect is Moved.RECOVERS]
        proofs.sort(key=lambda o: -(o.gap_share or 0.0))
        if not m.candidates:
            summary = "No cause had evidence to test by intervention."
        elif proofs:
            summary = "Proven by intervention: " + "; ".join(
                f"{o.hypothesis} — {o.sentence}" for o in proofs[:3]
            ) + "."
        else:
            summary = (
                f"No intervention moved the metric ({len(judged)} measured on "
                f"{len(m.candidates)} suspected cause(s)): nothing is proven."
            )
        if m.descriptions:
            summary += " Descriptions, not causes: " + ", ".join(m.descriptions) + "."
        return self.finding(
            summary,
            effects,
            metrics=metrics,
            tables=(table,),
            interventions=tuple(judged),
            next_step=(
                f"Fix {proofs[0].hypothesis} as the intervention did, retrain and re-measure; "
                f"replay it with `detective experiment CASE --set {proofs[0].label}`."
                if proofs else ""
            ),
        )

    def judged(self, m: InterventionsMeasurement) -> list[InterventionOutcome]:
        """The measured outcomes under this check's thresholds: Holm-corrected significance,
        the smallest effect that counts, and each one's share of the gap."""
        th = self.thresholds
        outs = list(m.outcomes)
        keep = holm(outs, th.alpha)
        judged = []
        for o, significant in zip(outs, keep, strict=True):
            effect = o.effect
            if effect is Moved.RECOVERS and (not significant or abs(o.delta) < th.min_effect):
                effect = Moved.NO_EFFECT
            if effect is Moved.NO_EFFECT and o.side is Side.EVAL and _underpowered(o, th):
                # Absence of evidence: the CI still holds a recovery an engineer would act on.
                effect = Moved.INCONCLUSIVE
                o = replace(o, notes=(*o.notes, (
                    f"underpowered: the 95 % CI ({o.ci_low * 100:+.1f} … {o.ci_high * 100:+.1f} "
                    f"points) still includes a {th.min_effect * 100:.0f}-point effect in the "
                    "predicted direction, so it neither proves nor refutes the cause"
                )))
            removes = tuple(
                mk.hypothesis for mk in o.markers
                if effect is Moved.RECOVERS and mk.before >= th.marker_present
                and mk.after <= th.marker_removed * mk.before
            )
            notes = o.notes + tuple(
                f"removes {mk.hypothesis}: the {mk.measure} falls {mk.before:.0%} → "
                f"{mk.after:.0%}"
                for mk in o.markers if mk.hypothesis in removes
            )
            o = replace(o, effect=effect, removes=removes, notes=notes)
            judged.append(replace(o, gap_share=gap_share(o, m.reference, m.chance)))
        return judged


def _underpowered(o: InterventionOutcome, th: InterventionThresholds) -> bool:
    """The outcome's CI includes an effect of at least `min_effect` in the predicted
    direction: too few items to tell "no effect" from a real one."""
    if o.predicted > 0:
        return o.ci_high >= th.min_effect
    return o.ci_low <= -th.min_effect


def _over_budget(
    ctx: RunContext, it: Intervention, st: InterventionSettings, first: bool
) -> str:
    """Why an intervention does not fit what the budget has left ("" when it does), from its
    planned cost at the run's measured speed: an evaluation-side one is a val pass over the
    sample (two for the first: the predictions before); a training-side one the short runs of
    the two seeds a recovery needs, the baseline's and the change's (the first seed's change
    alone once its baseline is cached), at the seconds a short run measured once one has run:
    a run the budget cuts short is not comparable (inconclusive), and one seed alone cannot
    prove anything, so a change that cannot finish two is not started. (Inside the
    intervention, `_ProofClock` holds each run to what the rest of the proof needs.)"""
    if ctx.budget is None or ctx.plan is None:
        return ""
    units, size = ctx.plan.units, ctx.plan.size
    if it.side is Side.EVAL:
        need = units.seconds((2 if first else 1) * min(st.sample, size.val_n), 0.0)
        what = ""
    else:
        from detective.core.budget import probe_run
        from detective.workflows.training_interventions import (
            MAX_EPOCHS,
            MIN_STEPS,
            TRAIN_SAMPLES,
            VAL_SAMPLES,
            TrainingIntervention,
            measured_run_s,
        )

        assert isinstance(it, TrainingIntervention)  # every training-side one is
        # Two seeds at least: one has no spread to exceed, so a single seed can never prove a
        # recovery (a resnet seed once spent half the minute to end inconclusive).
        two = st.seeds >= 2
        runs = (it.proof_runs if two else it.first_seed_runs)(baseline_cached=not first)
        what = (f" for {runs:g} short run{'s' if runs != 1 else ''} of its "
                f"{'first two seeds' if two else 'seed'}")
        run_s = measured_run_s(ctx)
        if run_s is not None:  # measured beats planned (a ResNet's plan is 2× low)
            need = runs * run_s
            what += f" at the {run_s:.1f} s a short run measured"
        else:
            fwd, steps = probe_run(size, TRAIN_SAMPLES, VAL_SAMPLES, MAX_EPOCHS, MIN_STEPS)
            need = units.seconds(runs * fwd, runs * steps)
    left = ctx.budget.seconds_remaining()
    if need <= left:
        return ""
    return (f"does not fit what the budget has left ({left:.0f} s left, ≈ {need:.0f} s "
            f"needed{what}); {_how_to_run(it)}")  # fmt: skip


def _how_to_run(it: Intervention) -> str:
    """What runs an intervention the budget left out."""
    return f"a larger `--budget MIN` or `detective experiment CASE --set {it.label}` runs it"


def _model_unusable(findings: tuple[Finding, ...]) -> str:
    """Why the trained model's output cannot be evaluated (case_contract says so), or ""."""
    from detective.core.engine import model_output_only

    for f in findings:
        if model_output_only(f):
            return ("the trained model's output is unusable (NaN/Inf): an evaluation-side "
                    "change needs its predictions")
    return ""


def _rules_out(o: InterventionOutcome, min_effect: float) -> bool:
    """No effect, and the CI excludes an effect of `min_effect` in the predicted direction."""
    if o.effect is not Moved.NO_EFFECT:
        return False
    bound = o.ci_high if o.predicted > 0 else -o.ci_low
    return bound < min_effect


def _reference(ctx: RunContext, sample: int) -> tuple[float | None, float]:
    """The user's model's accuracy on a train sample (the top of the gap) and the val
    majority-class share."""
    import numpy as np

    from detective.workflows.interventions import _predict

    chance = 0.0
    if ctx.has_split("val"):
        _, y, _ = ctx.tensors("val", ctx.sample_indices("val", sample))
        counts = np.bincount(y.cpu().numpy(), minlength=1)
        chance = float(counts.max() / max(counts.sum(), 1))
    if not ctx.has_split("train"):
        return None, chance
    x, y, _ = ctx.tensors("train", ctx.sample_indices("train", sample))
    pred = _predict(ctx.model(), x, ctx.case.eval_settings.batch_size)
    return float((pred == y.cpu()).float().mean()), chance
