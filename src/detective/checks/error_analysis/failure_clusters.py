"""Failure clusters: do the model's errors form coherent patterns, and what do the numbers say
about each? Optional local-LLM summaries (--llm), every checkable claim verified."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detective.analysis.clusters import ClusterFacts, Clustering
from detective.core.findings import (
    Artifact,
    ArtifactKind,
    Finding,
    Metric,
    Strength,
    Table,
    Verdict,
    supports,
)
from detective.core.hypotheses import Stage
from detective.core.registry import Check, register
from detective.llm.summary import SummaryLimits, SummaryRecord, SummarySource
from detective.llm.verify import CheckedClaim, ClaimStatus, verify


@dataclass(frozen=True)
class FailureClustersThresholds:
    # A cluster is a coherent pattern when it is this large, this tight, and explained by a
    # dominant class pair or a property difference of this size.
    pattern_min_share: float = 0.2
    pattern_min_size: int = 20
    pattern_min_cohesion: float = 0.25
    pattern_min_pair_share: float = 0.5
    pattern_min_effect: float = 0.8
    # ...and it points at a slice whose error rate is this many times the overall rate.
    moderate_min_lift: float = 2.0
    strong_min_lift: float = 3.0
    # Above this overall error rate errors are everywhere; no slice is strong evidence.
    strong_max_error_rate: float = 0.3


@dataclass(frozen=True)
class FailureClustersSettings:
    """How much failure_clusters measures (read by measure only)."""

    split: str = "val"
    k_min: int = 2
    k_max: int = 8
    min_size: int = 5  # clusters smaller than this are dropped
    use_properties: bool = True
    use_pairs: bool = True
    llm_clusters: int = 6  # model summaries for at most the largest N clusters
    llm_limits: SummaryLimits = SummaryLimits()  # bounds on what (and how long) it writes
    thumbnails: int = 16


@dataclass(frozen=True)
class FailureClustersMeasurement:
    split: str
    examples: int
    failures: int
    error_rate: float
    classes: tuple[str, ...]
    clustering: Clustering
    summaries: tuple[SummaryRecord, ...]
    llm_configured: str  # the --llm path, "" when none
    llm_note: str  # why the model was not used, when it was configured but not used
    thumbnails: tuple[tuple[str, str], ...]  # (cluster id, artifact path)
    features_used: bool


def pattern_strength(
    facts: ClusterFacts, error_rate: float, th: FailureClustersThresholds
) -> tuple[Strength | None, str]:
    """How much one cluster supports `slice_failure`, and why (None: it does not)."""
    top = facts.top_pair
    effects = [e for e in facts.properties if math.isfinite(e.effect_size)]
    biggest = max(effects, key=lambda e: abs(e.effect_size), default=None)
    explained = (top is not None and top.share >= th.pattern_min_pair_share) or (
        biggest is not None and abs(biggest.effect_size) >= th.pattern_min_effect
    )
    coherent = (
        facts.share_of_errors >= th.pattern_min_share
        and facts.size >= th.pattern_min_size
        and math.isfinite(facts.cohesion)
        and facts.cohesion >= th.pattern_min_cohesion
        and explained
    )
    if not coherent:
        return None, ""
    best = max(facts.slices, key=lambda s: s.lift, default=None)
    if best is None or best.lift < th.moderate_min_lift:
        return None, ""
    reason = (
        f"cluster {facts.rank} ({facts.size} failures, {facts.share_of_errors:.0%} of errors, "
        f"cohesion {facts.cohesion:.2f}) points at {best.description}: error rate "
        f"{best.error_rate:.0%}, {best.lift:.1f}× the overall {error_rate:.0%}"
    )
    if (
        best.lift >= th.strong_min_lift
        and error_rate <= th.strong_max_error_rate
        and best.size >= th.pattern_min_size
    ):
        return Strength.STRONG, reason
    return Strength.MODERATE, reason


def _describe_pair(facts: ClusterFacts) -> str:
    top = facts.top_pair
    return f"{top.true}→{top.pred} ({top.share:.0%})" if top else ""


def _describe_effect(facts: ClusterFacts) -> str:
    e = facts.properties[0] if facts.properties else None
    return f"{e.name} d={e.effect_size:+.2f}" if e else ""


def _claims_text(checks: tuple[CheckedClaim, ...]) -> str:
    mark = {
        ClaimStatus.SUPPORTED: "✓",
        ClaimStatus.UNSUPPORTED: "✗ unsupported:",
        ClaimStatus.UNCHECKED: "?",
    }
    return "; ".join(f"{mark[c.status]} {c.claim} ({c.evidence})" for c in checks) or "none"


@register
class FailureClusters(Check[FailureClustersMeasurement]):
    id = "failure_clusters"
    title = "Failure clusters"
    stage = Stage.ERROR_ANALYSIS
    description = (
        "Groups the model's validation failures by their penultimate features, image properties "
        "and true→predicted pair (k-means, k by silhouette) and describes each group by the "
        "numbers; with --llm a local model summarizes each, every checkable claim verified."
    )
    needs = ("model", "datasets")
    hypotheses = ("slice_failure",)
    measurement_type = FailureClustersMeasurement
    thresholds_type = FailureClustersThresholds
    settings_type = FailureClustersSettings

    def measure(self, ctx, progress) -> FailureClustersMeasurement:

        from detective.analysis.clusters import ClusterSettings, cluster_collection
        from detective.analysis.collect import collect
        from detective.core.case import CaseError
        from detective.llm.summary import summarize_clusters

        split = self.settings.split if ctx.has_split(self.settings.split) else "val"
        col = collect(ctx, split, progress.span(0.0, 0.6))
        if not col.n:
            raise CaseError(f"no usable example in the {split!r} split")
        classes = tuple(str(c) for c in col.classes)
        failed = ~col.correct
        features_used = bool(col.features.size)
        settings = ClusterSettings(
            k_min=self.settings.k_min,
            k_max=self.settings.k_max,
            min_size=self.settings.min_size,
            use_properties=self.settings.use_properties,
            use_pairs=self.settings.use_pairs,
            examples=self.settings.thumbnails,
            seed=ctx.options.seed,
        )
        progress.update(0.6, None, "clustering failures")
        clustering = cluster_collection(col, settings)  # gradcam's clusters are these
        progress.update(0.7, None, "thumbnails")
        thumbs = self._thumbnails(ctx, split, clustering, progress)
        backend, note = None, ""
        if ctx.options.llm:
            from detective.llm.backend import LlmUnavailable
            from detective.llm.llamacpp import LlamaCppBackend, gpu_layers_default

            try:
                layers = gpu_layers_default(ctx.device.type, ctx.options.llm_gpu_layers)
                backend = LlamaCppBackend(ctx.options.llm, n_gpu_layers=layers)
            except LlmUnavailable as e:
                note = str(e)
        chosen = clustering.clusters[: self.settings.llm_clusters]
        try:
            summaries = summarize_clusters(
                chosen,
                backend,
                classes,
                cache=ctx.kv if backend is not None else None,  # the session's, from the engine
                progress=progress.span(0.8, 1.0),
                limits=self.settings.llm_limits,
            ) + summarize_clusters(clustering.clusters[self.settings.llm_clusters :], None, classes)
        finally:
            if backend is not None:
                backend.close()  # the model's worker process ends with the check
        progress.update(1.0)
        return FailureClustersMeasurement(
            split=split,
            examples=col.n,
            failures=int(failed.sum()),
            error_rate=float(failed.mean()),
            classes=classes,
            clustering=clustering,
            summaries=summaries,
            llm_configured=ctx.options.llm or "",
            llm_note=note,
            thumbnails=thumbs,
            features_used=features_used,
        )

    def _thumbnails(self, ctx, split, clustering, progress) -> tuple[tuple[str, str], ...]:
        import numpy as np

        from detective.analysis.imageprops import denormalize
        from detective.analysis.pngplots import image_grid

        dataset = ctx.dataset(split)
        out = []
        for facts in clustering.clusters:
            progress.check_cancelled()
            images = []
            for i in facts.examples:
                try:
                    x = dataset[i][0]
                    px = denormalize(x.float().unsqueeze(0), ctx.case.normalization)[0]
                except Exception:  # an unreadable item costs one thumbnail, not the check
                    continue
                images.append(np.moveaxis(px.cpu().numpy(), 0, -1))
            if not images:
                continue
            path, rel = ctx.artifact(self.id, f"cluster-{facts.rank}-{facts.id}.png")
            image_grid(images, cell=48).save(path)
            out.append((facts.id, rel))
        return tuple(out)

    def judge(self, m: FailureClustersMeasurement) -> Finding:
        th = self.thresholds
        c = m.clustering
        metrics = [
            Metric("examples", m.examples),
            Metric("failures", m.failures),
            Metric("error rate", m.error_rate),
            Metric("clusters", len(c.clusters)),
            Metric("failures in clusters", c.clustered),
            Metric("silhouette of chosen k", c.silhouette),
        ]
        if not c.clusters:
            return Finding(
                self.id,
                Verdict.PASS,
                f"No failure clusters on {m.split}: "
                f"{c.reason or 'no cluster reached the minimum size'}.",
                metrics=tuple(metrics),
            )
        rows = []
        for f in c.clusters:
            best = max(f.slices, key=lambda s: s.lift, default=None)
            rows.append(
                (
                    f.rank,
                    f.id,
                    f.size,
                    round(f.share_of_errors, 3),
                    round(f.cohesion, 3),
                    _describe_pair(f),
                    _describe_effect(f),
                    f"{best.description}: {best.error_rate:.0%} ({best.lift:.1f}×)" if best else "",
                )
            )
        table = Table(
            "failure clusters (largest first)",
            (
                "cluster",
                "id",
                "failures",
                "share of errors",
                "cohesion",
                "top true→pred",
                "most distinct property",
                "slice error rate",
            ),
            tuple(rows),
        )
        by_id = {f.id: f for f in c.clusters}
        srows = []
        supported = contradicted = 0
        for s in m.summaries:
            facts = by_id.get(s.cluster_id)
            if facts is None:
                continue
            checks = verify(s.summary, facts, m.classes)
            supported += sum(x.status is ClaimStatus.SUPPORTED for x in checks)
            contradicted += sum(x.status is ClaimStatus.UNSUPPORTED for x in checks)
            source = s.model if s.source is SummarySource.LLM else "numbers"
            srows.append(
                (
                    facts.rank,
                    source + (" (cached)" if s.cached else ""),
                    s.summary.title,
                    s.summary.cause,
                    f"{s.summary.fix_kind.value}: {s.summary.fix}",
                    _claims_text(checks),
                )
            )
        summaries = Table(
            "cluster summaries (claims checked against the measurements)",
            ("cluster", "source", "title", "cause (hypothesis)", "suggested fix", "claims"),
            tuple(srows),
        )
        notes = list(c.notes)
        llm_used = [s for s in m.summaries if s.source is SummarySource.LLM]
        if llm_used:
            notes.append(
                f"Summaries by {llm_used[0].model} for {len(llm_used)} cluster(s): a local model's "
                f"hypotheses, not findings. Every checkable claim was verified against the "
                f"measurements: {supported} supported, {contradicted} contradicted (marked ✗ "
                "unsupported). Only the numbers move the hypothesis ledger."
            )
        elif m.llm_configured:
            notes.append(
                f"Summaries from the numbers: the model {m.llm_configured} was not used "
                f"({m.llm_note or 'see below'})."
            )
        else:
            notes.append("Summaries from the numbers (no --llm model configured).")
        notes += sorted({s.note for s in m.summaries if s.note})
        if not m.features_used:
            notes.append(
                "No penultimate features were recorded; clusters use properties and pairs."
            )
        effects = []
        strongest: tuple[Strength, str] | None = None
        for f in c.clusters:
            strength, reason = pattern_strength(f, m.error_rate, th)
            if strength is None:
                continue
            if strongest is None or strength.weight > strongest[0].weight:
                strongest = (strength, reason)
        if strongest is not None:
            effects.append(supports("slice_failure", strongest[0], strongest[1]))
        artifacts = tuple(
            Artifact(
                f"cluster {by_id[cid].rank}",
                rel,
                f"cluster {by_id[cid].rank} ({cid}): its {len(by_id[cid].examples)} most central "
                "failures",
                kind=ArtifactKind.GALLERY,
            )
            for cid, rel in m.thumbnails
            if cid in by_id
        )
        top = c.clusters[0]
        summary = (
            f"{m.failures} failures on {m.split} ({m.error_rate:.1%}) form {len(c.clusters)} "
            f"cluster(s) (k={c.k}, silhouette {c.silhouette:.2f}); the largest holds "
            f"{top.share_of_errors:.0%} of errors"
            + (f", mostly {_describe_pair(top)}" if top.top_pair else "")
            + "."
        )
        return Finding(
            self.id,
            Verdict.WARN if strongest is not None else Verdict.PASS,
            summary,
            metrics=tuple(metrics),
            tables=(table, summaries),
            artifacts=artifacts,
            effects=tuple(effects),
            notes=tuple(notes),
            next_step=(
                "Look at the thumbnails of the flagged cluster, then review each cluster "
                "(agree/disagree) so rejected patterns drop in the report."
                if strongest is not None
                else ""
            ),
        )
