"""Intake: does the case keep its contract? Splits, item shapes and dtypes, labels, model output.

This check gates the playbook: when it fails, later checks would only produce noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from detective.core.engine import MODEL_OUTPUT_ONLY
from detective.core.findings import Finding, Metric, Table, Verdict
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register

PROBE_ITEMS = 8


@dataclass(frozen=True)
class SplitSummary:
    name: str
    size: int
    item_shape: tuple[int, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ContractMeasurement:
    splits: tuple[SplitSummary, ...]
    num_classes: int
    output_shape: tuple[int, ...]
    model_problem: str
    parameters: int
    trainable_parameters: int
    model_nonfinite: bool = False  # the model's only problem: NaN/Inf logits on valid inputs


@register
class CaseContract(Check[ContractMeasurement]):
    id = "case_contract"
    title = "Case contract"
    stage = Stage.INTAKE
    description = (
        "Loads every split, checks that items are (float tensor [C,H,W], int label in range) and "
        "that the model maps a batch to [batch, len(CLASSES)] finite logits."
    )
    needs = ("model", "datasets")
    hypotheses = ()
    measurement_type = ContractMeasurement

    def measure(self, ctx, progress) -> ContractMeasurement:
        import torch

        splits = []
        datasets = ctx.case.datasets()
        for i, (name, dataset) in enumerate(sorted(datasets.items())):
            progress.update(i, len(datasets) + 1, f"probing split {name}")
            try:
                size = len(dataset)
            except Exception as e:
                splits.append(SplitSummary(name, 0, (), (f"len() raised {type(e).__name__}: {e}",)))
                continue
            probe = list(range(min(PROBE_ITEMS, size)))
            shape: tuple[int, ...] = ()
            for batch in ctx.batches(name, probe, batch_size=len(probe) or 1, to_device=False):
                shape = tuple(batch.x.shape[1:])
            problems = tuple(
                f"item {idx}: {why}"
                for idx, why in sorted(ctx.item_problems.get(name, {}).items())
                if idx in probe
            )
            if size == 0:
                problems += ("the split is empty",)
            splits.append(SplitSummary(name, size, shape, problems))

        progress.update(len(datasets), len(datasets) + 1, "running the model on a batch")
        model_problem, out_shape, nonfinite = "", (), False
        model = ctx.model()
        params = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        val_shape = next((s.item_shape for s in splits if s.name == "val" and s.item_shape), ())
        if val_shape:
            x = next(ctx.batches("val", list(range(min(2, len(ctx.dataset("val"))))))).x
            try:
                with torch.no_grad():
                    out = model(x)
                out_shape = tuple(out.shape)
                if out.ndim != 2 or out.shape[1] != ctx.case.num_classes:
                    model_problem = (
                        f"the model returns shape {out_shape}; expected [batch, "
                        f"{ctx.case.num_classes}]"
                        " (one logit per class in CLASSES)"
                    )
                elif not torch.isfinite(out).all():
                    model_problem = "the model returns NaN/Inf on valid inputs"
                    nonfinite = True
            except Exception as e:
                from detective.core.case import user_frame, where

                at = where(user_frame(e, ctx.case.path), ctx.case.path)
                model_problem = f"your model's forward() raised {type(e).__name__}: {e} {at}"
        else:
            model_problem = "no valid val item to run the model on"
        progress.update(1.0)
        return ContractMeasurement(
            tuple(splits),
            ctx.case.num_classes,
            out_shape,
            model_problem,
            params,
            trainable,
            nonfinite,
        )

    def judge(self, m: ContractMeasurement) -> Finding:
        # Blocking: nothing later can measure anything. A few bad items, or splits whose items
        # differ in shape, are findings for data_health / preprocessing_parity, not a gate.
        unusable = [s for s in m.splits if not s.item_shape or s.size == 0]
        problems = [f"{s.name}: {p}" for s in unusable for p in s.problems]
        problems += [
            f"{s.name}: no usable item among the first probed" for s in unusable if not s.problems
        ]
        if m.model_problem:
            problems.append(m.model_problem)
        warnings = [f"{s.name}: {p}" for s in m.splits if s not in unusable for p in s.problems]
        shapes = {s.item_shape for s in m.splits if s.item_shape}
        if len(shapes) > 1:
            warnings.append(
                "splits give different item shapes ("
                + ", ".join(f"{s.name} {list(s.item_shape)}" for s in m.splits)
                + "): train and eval preprocessing differ (see preprocessing_parity)"
            )
        table = Table(
            "splits",
            ("split", "items", "item shape", "problems"),
            tuple((s.name, s.size, str(list(s.item_shape)), len(s.problems)) for s in m.splits),
        )
        metrics = (
            Metric("classes", m.num_classes, key="classes"),
            Metric("parameters", m.parameters, key="parameters"),
            Metric("trainable parameters", m.trainable_parameters, key="trainable_parameters"),
            *(Metric(f"{s.name} items", s.size, key=f"items.{s.name}") for s in m.splits),
        )
        if problems:
            # NaN logits from the trained weights (a diverged run) leave the recipe measurable:
            # the learning checks train fresh copies and can show the divergence.
            model_only = m.model_nonfinite and problems == [m.model_problem]
            if model_only:
                metrics += (Metric("only the model's output fails", 1, key=MODEL_OUTPUT_ONLY),)
            return Finding(
                self.id,
                Verdict.FAIL,
                "The case breaks its contract: " + "; ".join(problems[:3]),
                metrics=metrics,
                tables=(table,),
                notes=tuple(problems),
                next_step=(
                    "Checks that need only your recipe (fresh model, data, training settings) "
                    "still run and show whether training diverges; fix the training, then run "
                    "again."
                    if model_only
                    else "Fix the case so items are (float tensor [C,H,W], int label) and the "
                    "model returns one logit per class; then run again."
                ),
            )
        sizes = ", ".join(f"{s.name} {s.size}" for s in m.splits)
        summary = (
            f"{m.num_classes} classes; {sizes}; items "
            f"{' / '.join(str(list(s)) for s in sorted(shapes))}; "
            f"model output {list(m.output_shape)}."
        )
        if warnings:
            return Finding(
                self.id,
                Verdict.WARN,
                summary + " " + "; ".join(warnings[:2]),
                metrics=metrics,
                tables=(table,),
                notes=tuple(warnings),
                next_step="The run goes on; the pipeline checks measure these problems.",
            )
        return Finding(self.id, Verdict.PASS, summary, metrics=metrics, tables=(table,))
