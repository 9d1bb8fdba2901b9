"""The report's failure-cluster section (reviewed ranking, summaries with checked claims)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from detective.llm.summary import SummarySource
from detective.llm.verify import ClaimStatus
from detective.workflows.review import ClusterReview

_MARK = {
    ClaimStatus.SUPPORTED: "✓ supported",
    ClaimStatus.UNSUPPORTED: "✗ UNSUPPORTED",
    ClaimStatus.UNCHECKED: "? unchecked",
}


def _review(c: ClusterReview) -> str:
    rate = c.agreement_rate
    text = f"{c.agree} agree / {c.disagree} disagree" + (
        f" ({rate:.0%})" if rate is not None else ""
    )
    if c.rejected:
        text = "REJECTED by review; " + text
    if c.note:
        text += f"; note: {c.note}"
    return text


def _source(c: ClusterReview) -> str:
    if c.summary is None:
        return ""
    if c.summary.source is SummarySource.LLM:
        return f"{c.summary.model} (a model's hypothesis; claims verified below)"
    return "the measurements (deterministic)" + (f"; {c.summary.note}" if c.summary.note else "")


def cluster_lines(
    clusters: Sequence[ClusterReview], esc: Callable[[object], str]
) -> list[tuple[str, list[str]]]:
    """Per cluster: a heading and its lines, already escaped with `esc`."""
    out = []
    for c in clusters:
        f = c.cluster
        head = (
            f"Cluster {c.rank} ({esc(f.id)}): {f.size} failures, {f.share_of_errors:.0%} of errors"
            + (" — rejected by review" if c.rejected else "")
        )
        lines = []
        if c.summary is not None:
            s = c.summary.summary
            lines += [
                f"Summary from {esc(_source(c))}: {esc(s.title)}",
                f"Cause (hypothesis): {esc(s.cause)}",
                f"Suggested fix ({esc(s.fix_kind.value)}): {esc(s.fix)}",
            ]
        pairs = ", ".join(f"{p.true}→{p.pred} {p.share:.0%}" for p in f.pairs)
        props = ", ".join(f"{p.name} d={p.effect_size:+.2f}" for p in f.properties[:3])
        lines.append(
            f"Measured: cohesion {f.cohesion:.2f}; pairs {esc(pairs)}; properties {esc(props)}"
        )
        lines += [f"{_MARK[k.status]}: {esc(k.claim)} ({esc(k.evidence)})" for k in c.checks]
        lines.append(f"Review: {esc(_review(c))}")
        out.append((head, lines))
    return out


def clusters_markdown(
    clusters: Sequence[ClusterReview], md_escape: Callable[[object], str]
) -> list[str]:
    if not clusters:
        return []
    out = [
        "## Failure clusters",
        "",
        "Ranked after review: clusters reviewers rejected come last.",
        "",
    ]
    for head, lines in cluster_lines(clusters, md_escape):
        out += [f"### {head}", ""] + [f"- {line}" for line in lines] + [""]
    return out


def clusters_html(clusters: Sequence[ClusterReview], e: Callable[[object], str]) -> list[str]:
    if not clusters:
        return []
    parts = [
        "<h2>Failure clusters</h2><p class='muted'>Ranked after review: clusters "
        "reviewers rejected come last.</p>"
    ]
    for head, lines in cluster_lines(clusters, e):
        parts.append(
            f"<h3>{head}</h3><ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"
        )
    return parts
